"""Results of the scale engines, and per-item scores written chunk by chunk, committed atomically.

The per-item file has exactly the layout ``capeval score --per-item`` writes for the memory engine
(``.csv``, ``.jsonl``/``.ndjson``, ``.json``); rows go to a temporary file beside the target as they
are produced and are renamed over it only when the whole job succeeded, so an interrupted or failed
job leaves no partial output (and an older file at that path untouched).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluate import ScoresMapping


@dataclass
class ScaleResult(ScoresMapping):
    """Corpus scores (pycocoevalcap's keys and scale) of a streaming or Dask job.

    ``per_item`` is a DataFrame indexed by id only with ``collect_per_item=True`` (it holds every item:
    memory then grows with the corpus); ``per_item_path`` is the file written with ``per_item=``."""

    scores: dict[str, float]
    signature: str
    signatures: dict[str, str]
    n_items: int
    engine: str
    skipped: dict[str, str] = field(default_factory=dict)
    per_item: object = None
    per_item_path: Path | None = None
    details: dict = field(default_factory=dict)  # engine facts: chunks, partitions, workers, seconds

    def __repr__(self) -> str:
        return self._repr(f"ScaleResult[{self.engine}, {self.n_items} items]")


def _frame(ids: list, columns: dict[str, np.ndarray]):
    import pandas as pd

    return pd.DataFrame(columns, index=pd.Index(ids, name="image_id")).reset_index()


def per_item_kind(path) -> str:
    """The per-item file layout a path asks for: ``json``, ``jsonl`` or ``csv``."""
    return {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(Path(path).suffix.lower(), "csv")


def format_rows(kind: str, ids: list, columns: dict[str, np.ndarray], first: bool) -> str:
    """One chunk's rows as text of a per-item file of ``kind``; ``first``: the file's first chunk (the
    CSV header, no separator before the first ``.json`` record)."""
    frame = _frame(ids, columns)
    if kind == "csv":
        return frame.to_csv(index=False, header=first, lineterminator="\n", float_format="%.17g")
    if kind == "jsonl":
        return frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    # .json: records now, the enclosing object (with the signature) at commit
    records = json.loads(frame.to_json(orient="records", force_ascii=False, double_precision=15))
    return "".join(("" if first and k == 0 else ", ") + json.dumps(r, ensure_ascii=False) for k, r in enumerate(records))


class PerItemSink:
    """Collects per-item scores chunk by chunk: into a file (``path``), into memory, or both."""

    def __init__(self, path=None, collect: bool = False):
        self.path = Path(path) if path is not None else None
        self.collect = collect
        self._frames: list = []
        self._stack = contextlib.ExitStack()
        self._fh = None
        self._first = True
        self.kind = None  # the file's layout (format_rows), with a path
        if self.path is not None:
            self.kind = per_item_kind(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # rows first go to a temporary file beside the target (same file system: the rename is atomic)
            self._fh = self._stack.enter_context(
                tempfile.NamedTemporaryFile("w+", encoding="utf-8", newline="", dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".rows")
            )

    def __enter__(self) -> PerItemSink:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()  # removes the temporary rows; commit() has renamed a copy if all went well

    def write(self, ids: list, columns: dict[str, np.ndarray], text: str | None = None) -> None:
        """One chunk's rows, in input order; ``text``: the rows already formatted by :func:`format_rows`
        for this file (a Dask worker formats its own partition's rows)."""
        if self.collect:
            self._frames.append(_frame(ids, columns))
        if self._fh is None:
            return
        self._fh.write(text if text is not None else format_rows(self.kind, ids, columns, self._first))
        self._first = False

    def frame(self):
        """All collected rows as one DataFrame indexed by id (``collect=True``)."""
        import pandas as pd

        if not self._frames:
            return None
        return pd.concat(self._frames, ignore_index=True).set_index("image_id")

    def commit(self, signature: str) -> Path | None:
        """Rename the rows into place (atomically); for ``.json``, wrapped as ``{"signature", "items"}``."""
        if self._fh is None:
            return None
        from .._io import atomic_write

        self._fh.flush()
        self._fh.seek(0)
        with atomic_write(self.path, "w", newline="") as out:
            if self.kind == "json":
                out.write('{"signature": ' + json.dumps(signature, ensure_ascii=False) + ', "items": [')
            while True:
                block = self._fh.read(1 << 20)
                if not block:
                    break
                out.write(block)
            if self.kind == "json":
                out.write("]}")
        return self.path
