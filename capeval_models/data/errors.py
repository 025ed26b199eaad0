"""Errors raised while reading or building captioning datasets."""

from __future__ import annotations

from capeval.errors import FormatError, format_ids

__all__ = ["DataFormatError", "format_ids"]


class DataFormatError(FormatError):
    """A dataset file with a wrong layout, shape, dtype, a missing key, or ids without features.

    The message always names the file (and the key, column or ids concerned).
    """
