"""The jar's line protocol (``-stdio``), as capeval speaks it.

* ``SCORE ||| ref 1 ||| ... ||| ref n ||| hypothesis`` -> one line of 23 segment statistics;
* ``EVAL ||| stats 1 ||| ... ||| stats n`` -> n per-segment scores, then the aggregate score.

Captions are cleaned first (:func:`clean_caption`) so that no caption can desync the protocol; the Python
engine gets the very same cleaned text. Replies are parsed strictly: anything else is a :class:`JvmFailure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._inputs import check_caption
from ..errors import EmptyReferencesError, InputError, InvalidCaptionError, MeteorError
from .formula import STATS_LENGTH

SEPARATOR = " ||| "
# capeval's front end answers this (the jar's "Error: ..." form) for a line that does not fit in the heap
# even when scored alone (capeval/java/CapevalMeteor.java)
OUT_OF_MEMORY_REPLY = "Error: out of memory"


class JvmFailure(Exception):
    """A JVM died, stalled or answered nonsense (internal: the pool retries, then raises a MeteorError)."""


class SegmentOutOfMemory(Exception):
    """The JVM's heap could not hold one segment (internal: not retried, see :class:`MeteorHeapError`)."""


class MeteorHeapError(MeteorError):
    """A caption so long that scoring it overflowed the JVM's heap; ``label`` names the id (or segment)."""

    def __init__(self, message: str, *, label: str, heap: str):
        super().__init__(message)
        self.label = label
        self.heap = heap


def clean_caption(text: str) -> str:
    """What is sent to the jar: ``|||`` removed (it separates fields), then every run of whitespace
    (tabs, newlines, ``\\r``, U+2028, NBSP... anything ``str.split()`` splits on) made one space, and
    the ends stripped. A plain tokenized caption is unchanged."""
    if "|||" in text:
        text = text.replace("|||", "")
    return " ".join(text.split())


def segment_labels(n: int, ids: Sequence | None) -> list[str]:
    """How messages name segment ``i``: ``id 7`` when ids are known, else ``segment 2``."""
    if ids is None:
        return [f"segment {i}" for i in range(n)]
    return [f"id {i!r}" for i in ids]


def clean_segments(
    refs_list: Sequence, preds_list: Sequence, labels: Iterable[str]
) -> tuple[list[list[str]], list[str]]:
    """The cleaned references and hypotheses of every segment, validated (typed errors naming the
    segment's label). A prediction may be a one-element list (pycocoevalcap's ``{id: [caption]}``)."""
    if len(refs_list) != len(preds_list):
        raise InputError(f"{len(refs_list)} reference lists but {len(preds_list)} predictions")
    all_refs, hyps = [], []
    for label, refs, pred in zip(labels, refs_list, preds_list):
        if isinstance(pred, (list, tuple)) and len(pred) == 1:
            pred = pred[0]
        hyps.append(clean_caption(check_caption(pred, f"the prediction for {label}")))
        if isinstance(refs, str):
            refs = [refs]
        elif not isinstance(refs, Iterable):
            raise InvalidCaptionError(f"the references for {label} are not a list of strings: {refs!r}")
        refs = [clean_caption(check_caption(r, f"reference {k} of {label}")) for k, r in enumerate(refs)]
        if not refs:
            raise EmptyReferencesError(f"{label} has no references")
        if not any(refs):
            raise EmptyReferencesError(f"the references of {label} are all empty")
        all_refs.append(refs)
    return all_refs, hyps


def score_line(refs: Sequence[str], hyp: str) -> bytes:
    """``SCORE ||| refs... ||| hyp`` for cleaned captions."""
    return ("SCORE" + SEPARATOR + SEPARATOR.join(refs) + SEPARATOR + hyp + "\n").encode(
        "utf-8", errors="replace"
    )


def segment_words(line: bytes) -> tuple[int, int]:
    """(words in the hypothesis, words in the longest reference) of a SCORE line, for error messages."""
    fields = line.decode("utf-8", errors="replace").rstrip("\n").split(SEPARATOR)[1:]
    refs, hyp = fields[:-1], fields[-1] if fields else ""
    return len(hyp.split()), max((len(r.split()) for r in refs), default=0)


def format_stats(row) -> str:
    """One segment's statistics as the jar prints them (integers as ``7.0``)."""
    return " ".join(f"{v:.1f}" if float(v).is_integer() else repr(float(v)) for v in row)


def eval_line(rows: Iterable[str]) -> bytes:
    """``EVAL ||| stats 1 ||| ...`` for rows already formatted as the jar prints them."""
    return ("EVAL" + SEPARATOR + SEPARATOR.join(rows) + "\n").encode("ascii")


def parse_stats(line: str) -> list[float]:
    """The 23 statistics of a SCORE reply."""
    if line.startswith(OUT_OF_MEMORY_REPLY):
        raise SegmentOutOfMemory(line)
    parts = line.split()
    if len(parts) != STATS_LENGTH:
        raise JvmFailure(f"expected {STATS_LENGTH} statistics, got {line[:200]!r}")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise JvmFailure(f"unparsable statistics {line[:200]!r}") from None


def parse_score(line: str) -> float:
    """The score of an EVAL reply line."""
    try:
        return float(line)
    except ValueError:
        raise JvmFailure(f"expected a score, got {line[:200]!r}") from None
