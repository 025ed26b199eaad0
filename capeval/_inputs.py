"""The one input layer: align ids, validate captions, reference lists and option values.

Every entry point (``evaluate``, the functional metrics, ``compat``, ``tokenize``, ``CiderDReward``,
``DocumentFrequencies.from_references``) validates through these functions, so a given mistake gives
the same typed error and the same message wherever it is made. Nothing here imports another capeval
module but :mod:`capeval.errors`: this is the bottom layer.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from itertools import chain

import numpy as np

from .errors import (
    CapevalError,
    EmptyReferencesError,
    InvalidCaptionError,
    MissingIdError,
    OptionError,
    format_ids,
)


# -- captions -------------------------------------------------------------------------------------
def check_caption(caption, what: str) -> str:
    """``caption`` as a string (coco annotation dicts give their ``"caption"``), or a typed error naming ``what``."""
    if isinstance(caption, str):
        return caption
    if isinstance(caption, Mapping) and isinstance(caption.get("caption"), str):  # coco annotation dicts
        return caption["caption"]
    if isinstance(caption, float) and math.isnan(caption):
        raise InvalidCaptionError(f"{what}: caption is NaN (a missing value), not a string")
    raise InvalidCaptionError(f"{what}: caption must be a string, got {type(caption).__name__} {caption!r:.60}")


def check_texts(texts: Sequence[str], what: str = "caption") -> list[str]:
    """A flat sequence of captions as a list of strings (``tokenize``'s input)."""
    if isinstance(texts, (str, bytes)):
        raise InvalidCaptionError("expected a sequence of captions, not a single string")
    out = list(texts)
    if not set(map(type, out)) <= {str}:  # format messages only on the slow path
        for i, t in enumerate(out):
            if not isinstance(t, str):
                raise InvalidCaptionError(f"{what} {i}: caption must be a string, got {type(t).__name__} {t!r:.60}")
    return out


def reference_lists(refs: Mapping, ids: Sequence) -> list[list[str]]:
    """``[refs[i] for i in ids]`` as lists of strings, validated; C-level checks on the common path."""
    values = [refs[i] for i in ids]
    if set(map(type, values)) <= {list, tuple}:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        flat = list(chain.from_iterable(values))
        if lengths.all() and set(map(type, flat)) <= {str}:
            nonblank = np.fromiter(map(bool, map(str.strip, flat)), dtype=bool, count=len(flat))
            starts = np.cumsum(lengths) - lengths
            if not len(values) or np.logical_or.reduceat(nonblank, starts).all():
                return [v if type(v) is list else list(v) for v in values]
    return _checked_reference_lists(refs, ids)  # something is off: find it and name it


def _checked_reference_lists(refs: Mapping, ids: Sequence) -> list[list[str]]:
    out = []
    for i in ids:
        value = refs[i]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, Sequence):
            raise InvalidCaptionError(f"id {i!r}: references must be a list of strings, got {type(value).__name__}")
        if len(value) == 0:
            raise EmptyReferencesError(f"id {i!r}: empty reference list")
        caps = list(value)
        if not all(type(c) is str for c in caps):
            caps = [check_caption(c, f"id {i!r}, reference {j}") for j, c in enumerate(caps)]
        if not any(map(str.strip, caps)):
            raise EmptyReferencesError(f"id {i!r}: all {len(caps)} references are empty")
        out.append(caps)
    return out


def prediction(value, i) -> str:
    """One predicted caption: a string, or pycocoevalcap's ``[caption]``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidCaptionError(f"id {i!r}: expected exactly one predicted caption, got {len(value)}")
        value = value[0]
    return check_caption(value, f"id {i!r}, prediction")


def predictions(preds: Mapping, ids: Sequence) -> list[str]:
    """``[preds[i] for i in ids]`` as strings, validated."""
    values = [preds[i] for i in ids]
    if set(map(type, values)) <= {str}:
        return values
    return [prediction(preds[i], i) for i in ids]


# -- ids ------------------------------------------------------------------------------------------
def _id_hint(missing, other) -> str:
    other_str = {str(o) for o in other}
    if any(str(m) in other_str for m in missing):
        return " (the same ids exist with another type: int vs str; convert them consistently)"
    return ""


def check_mappings(refs, preds) -> None:
    if not isinstance(refs, Mapping) or not isinstance(preds, Mapping):
        raise CapevalError("refs and preds must be mappings: {id: [reference captions]} and {id: caption}")


def align_ids(refs: Mapping, preds: Mapping, strict: bool = True) -> list:
    """The ids to score, in ``refs``' order. ``strict``: ids on one side only are an error naming them;
    otherwise the intersection is scored with a warning naming what was left out."""
    check_mappings(refs, preds)
    if refs.keys() == preds.keys():  # the common case, one C-level set comparison
        if not refs:
            raise MissingIdError("no id is shared by refs and preds")
        return list(refs)
    pred_keys = set(preds)
    missing_preds = [i for i in refs if i not in pred_keys]
    extra_preds = [i for i in preds if i not in refs]
    if strict:
        parts = []
        if extra_preds:
            parts.append(f"{len(extra_preds)} predicted ids have no references: {format_ids(extra_preds)}{_id_hint(extra_preds, refs)}")
        if missing_preds:
            parts.append(f"{len(missing_preds)} ids have references but no prediction: {format_ids(missing_preds)}{_id_hint(missing_preds, preds)}")
        raise MissingIdError("; ".join(parts) + " (strict=False scores the intersection)")
    warnings.warn(
        f"scoring the {len(refs) - len(missing_preds)} common ids; left out {len(missing_preds)} ids without prediction "
        f"{format_ids(missing_preds)} and {len(extra_preds)} predictions without references {format_ids(extra_preds)}",
        stacklevel=4,
    )
    ids = [i for i in refs if i in pred_keys]
    if not ids:
        raise MissingIdError("no id is shared by refs and preds")
    return ids


# -- option values --------------------------------------------------------------------------------
def check_n(n) -> int:
    """The n-gram order: an integer >= 1."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise OptionError(f"n must be an integer >= 1 (the largest n-gram order), got {n!r}")
    return int(n)


def check_sigma(sigma) -> float:
    """CIDEr-D's length-penalty width: a finite number > 0 whose square is finite and non-zero (the
    penalty divides by 2 sigma^2: 1e200 or 1e-200 would give NaN scores)."""
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not math.isfinite(sigma) or sigma <= 0:
        raise OptionError(f"sigma must be a finite number > 0 (CIDEr-D's length penalty width), got {sigma!r}")
    if not 0 < float(sigma) * float(sigma) < math.inf:
        raise OptionError(f"sigma must be a number whose square is finite and above 0 (about 1e-154 to 1e154), got {sigma!r}")
    return float(sigma)


def check_choice(value, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise OptionError(f"unknown {what} {value!r}; expected one of {tuple(allowed)}")
    return value
