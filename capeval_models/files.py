"""Reading and writing the run folder's files: JSON, and the report files written as one set.

Every file is written atomically (temp file + rename) with capeval's helpers. :func:`write_report_files` is the
one place the report's files are written, so that they can be swapped in together (a report directory
written as a set) without touching the rest of the pipeline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from capeval._io import atomic_write_bytes, atomic_write_text


def jsonable(obj):
    """numpy scalars to Python, non-finite floats to None, keys to str: what json.dumps(allow_nan=False) takes."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def json_text(obj) -> str:
    return json.dumps(jsonable(obj), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path, obj) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json_text(obj))
    return path


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_report_files(out_dir, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write {relative name: text or bytes} under out_dir, each atomically; returns the paths in order."""
    out_dir = Path(out_dir)
    written = []
    for name, content in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            atomic_write_bytes(path, content)
        else:
            atomic_write_text(path, content)
        written.append(path)
    return written
