"""Reading and writing the run folder's files: JSON, and the report files written as one set.

Every file is written atomically (temp file + rename) with capeval's helpers; :func:`write_report_files`
writes the report's files as one set (a directory swapped in whole).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from capeval._io import atomic_directory, atomic_write_text


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


def write_report_files(out_dir, files: Mapping[str, str | bytes], names=()) -> list[Path]:
    """Write {name: text or bytes} as one set: into a temporary directory beside ``out_dir`` that then
    replaces ``out_dir`` whole (:func:`capeval._io.atomic_directory`), so an interrupted run leaves the
    previous report or none, never a mix. ``names``: every file such a set may hold (a directory with
    other files is refused rather than replaced). Returns the final paths in order."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, names=sorted(set(names) | set(files))) as tmp:
        for name, content in files.items():
            if isinstance(content, bytes):
                (tmp / name).write_bytes(content)
            else:
                (tmp / name).write_text(content, encoding="utf-8", newline="")
    return [out_dir / name for name in files]
