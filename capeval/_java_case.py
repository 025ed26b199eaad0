"""Java's ``String.toLowerCase(Locale.ENGLISH)`` where it differs from Python's ``str.lower``.

The only context-dependent lower-casing in the English locale is GREEK CAPITAL LETTER SIGMA: it becomes
final sigma (``ς``) at the end of a word, ``σ`` elsewhere.  Python and Java agree on that rule but not on
what a "word" is: Java asks its legacy word ``BreakIterator`` for the word around the sigma and looks for
any cased letter in it, Python skips "case-ignorable" characters.  So ``"ΑΣ-B"`` is ``ασ-b`` in Java and
``ας-b`` in Python.  This module re-implements the part of Java's legacy word-break rules that decides it.
"""

from __future__ import annotations

import unicodedata

_SIGMA = "\u03a3"

_KANJI = lambda c: c == "\u3005" or "\u4e00" <= c <= "\u9fa5" or "\uf900" <= c <= "\ufa2d"  # noqa: E731
_KATA = lambda c: "\u30a1" <= c <= "\u30fa" or c in "\u30fd\u30fe"  # noqa: E731
_HIRA = lambda c: "\u3041" <= c <= "\u3094" or c in "\u309d\u309e"  # noqa: E731
_CJK_DIACRIT = lambda c: "\u3099" <= c <= "\u309c" or c in "\u30fb\u30fc"  # noqa: E731


def _ignorable(c: str) -> bool:
    # U+00AD SOFT HYPHEN is a format character but also listed as mid-word punctuation: not ignored.
    return c != "\u00ad" and unicodedata.category(c) in ("Mn", "Me", "Cf")


def _is_let(c: str) -> bool:
    cat = unicodedata.category(c)
    if not (cat[0] == "L" or cat == "Mc"):
        return False
    return not (_KANJI(c) or _KATA(c) or _HIRA(c) or _CJK_DIACRIT(c) or c in "\u0964\u0965")


def _is_dgt(c: str) -> bool:
    return unicodedata.category(c)[0] == "N"


def _is_mid_word(c: str) -> bool:
    return unicodedata.category(c) in ("Pd", "Pc") or c in "\u00ad\u2027\"'."


_MID_NUM = "\"',\u066b."
_POST_NUM = "%&\u00a2\u066a\u2030\u2031"


def _is_pre_num(c: str) -> bool:
    return unicodedata.category(c) == "Sc" or c in "#."


def _is_ws(c: str) -> bool:
    return unicodedata.category(c) == "Zs" or c == "\t"


def _skip_ign(s: str, k: int) -> int:
    while k < len(s) and _ignorable(s[k]):
        k += 1
    return k


def _run(s: str, k: int, unit, mid) -> int:
    """``unit+(mid unit+)*`` from k: ignorable characters attach to a preceding unit character but end the
    match after a mid character.  Returns k if nothing matches."""
    n = len(s)
    if k >= n or not unit(s[k]):
        return k
    while k < n and unit(s[k]):
        k = _skip_ign(s, k + 1)
    while k + 1 < n and mid(s[k]) and unit(s[k + 1]):
        k += 1
        while k < n and unit(s[k]):
            k = _skip_ign(s, k + 1)
    return k


def _word(s: str, k: int) -> int:
    j = _run(s, k, _is_let, _is_mid_word)
    if j > k and j < len(s) and s[j] in "\u0964\u0965":  # an optional trailing danda
        j = _skip_ign(s, j + 1)
    return j


def _number(s: str, k: int) -> int:
    return _run(s, k, _is_dgt, lambda c: c in _MID_NUM)


def _chain(s: str, k: int) -> int:
    """``($number$word)*{$number{$post_num}}`` from k."""
    n = len(s)
    while True:
        j = _number(s, k)
        if j == k:
            return k
        w = _word(s, j)
        if w == j:  # a number not followed by a word: optional post_num, then stop
            if j < n and s[j] in _POST_NUM:
                j = _skip_ign(s, j + 1)
            return j
        k = w


def _unit(s: str, k: int) -> int:
    n = len(s)
    c = s[k]
    best = _skip_ign(s, k + 1)  # any character (with the ignorable characters that follow it)
    best = max(best, _chain(s, _word(s, k)))
    if _is_pre_num(c):
        best = max(best, _chain(s, _skip_ign(s, k + 1)))
    j = k
    while j < n and _is_ws(s[j]):
        j += 1
    if j < n and s[j] == "\r":
        j += 1
    if j < n and s[j] in "\n\x0c\u2028\u2029":
        j += 1
    best = max(best, j)
    for pred in (lambda x: _KATA(x) or _CJK_DIACRIT(x), lambda x: _HIRA(x) or _CJK_DIACRIT(x), _KANJI):
        j = k
        while j < n and pred(s[j]):
            j += 1
        best = max(best, j)
    return best


def word_boundaries(s: str) -> set[int]:
    """Positions where Java's legacy word BreakIterator reports a boundary."""
    bounds = {0, len(s)}
    k = 0
    while k < len(s):
        k = _unit(s, k)
        bounds.add(k)
    return bounds


def _cased(c: str) -> bool:
    return c.islower() or c.isupper() or c.istitle()


def _final_cased(s: str, index: int, bounds: set[int]) -> bool:
    i = index
    while i >= 0 and i not in bounds:
        if _cased(s[i - 1]):
            j = index + 1
            while j < len(s) and j not in bounds:
                if _cased(s[j]):
                    return False
                j += 1
            return True
        i -= 1
    return False


def java_lower(s: str) -> str:
    """``s.toLowerCase(Locale.ENGLISH)`` as Java 17 computes it."""
    if _SIGMA not in s:
        return s.lower()
    bounds = word_boundaries(s)
    out = []
    for i, c in enumerate(s):
        if c == _SIGMA:
            out.append("\u03c2" if _final_cased(s, i, bounds) else "\u03c3")
        else:
            out.append(c.lower())
    return "".join(out)
