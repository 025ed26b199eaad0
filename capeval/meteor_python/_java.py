"""The few Java library behaviours Meteor 1.5's results depend on, reproduced in Python."""

from __future__ import annotations

import re

from capeval._java_case import java_lower

__all__ = ["java_hash", "java_lower", "java_tokens", "java_trim"]

# java.util.StringTokenizer's default delimiters (no vertical tab, no Unicode spaces).
_TOKENIZER_DELIMITERS = re.compile("[ \t\n\r\f]+")
# String.trim() removes every code unit <= U+0020 at both ends.
_TRIM_CHARS = "".join(chr(c) for c in range(0x21))


def java_tokens(text: str) -> list[str]:
    """``new StringTokenizer(text)`` drained: split on space, tab, newline, CR and form feed only."""
    return [t for t in _TOKENIZER_DELIMITERS.split(text) if t]


def java_trim(text: str) -> str:
    """``String.trim()``: strips control characters as well as spaces (unlike ``str.strip``)."""
    return text.strip(_TRIM_CHARS)


def java_hash(word: str) -> int:
    """``String.hashCode()``: 31-polynomial over UTF-16 code units, as a signed 32-bit int.

    Meteor's exact, stem and synonym matchers compare these hashes, not the strings, so two distinct
    words with equal hashes ("Aa" and "BB") match exactly in the jar; reproducing the hash keeps that.
    """
    h = 0
    if word.isascii():
        for c in word.encode("ascii"):
            h = (31 * h + c) & 0xFFFFFFFF
    else:
        data = word.encode("utf-16-be", "surrogatepass")
        for i in range(0, len(data), 2):
            h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - 0x100000000 if h >= 0x80000000 else h
