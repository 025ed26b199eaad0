"""Meteor 1.5's ``-norm`` text normalization (``edu.cmu.meteor.util.Normalizer``, English, punctuation kept)
followed by Java's ``toLowerCase``.

Java's regular expressions are translated character class by character class: ``\\s`` is
``[ \\t\\n\\x0B\\f\\r]`` and ``\\p{Digit}``/``\\p{Lower}`` are ASCII-only in Java, so they are spelled out
here (Python's ``\\s``/``\\d`` are Unicode-wide).
"""

from __future__ import annotations

import re

from ._java import java_lower, java_tokens, java_trim

# Meteor's "alphabetic" characters: ASCII, Western European and Cyrillic ranges.
_ALPHA = "A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f"
_ALNUM = "0-9" + _ALPHA
_JAVA_SPACE = " \t\n\x0b\f\r"

_SEPARATE_OTHER = re.compile(f"([^{_ALNUM}{_JAVA_SPACE}.'`,\\-\u2018\u2019])")
_MULTI_DOT = re.compile(r"\.([.]+)")
_MULTI_DOT_NEXT = re.compile(r"DOTMULTI\.([^.])")
_COMMA_SPLITS = (
    re.compile(r"([^0-9])[,]([^0-9])"),
    re.compile(r"([0-9])[,]([^0-9])"),
    re.compile(r"([^0-9])[,]([0-9])"),
)
_SINGLE_QUOTES = re.compile("([`\u2018\u2019])")
_DOUBLE_QUOTES = re.compile("([\u201c\u201d]|'')")
_DASH_BETWEEN_WORDS = re.compile(f"([{_ALNUM}.])[-]([{_ALNUM}])")
_CONTRACTIONS = (  # English splits contractions to the right: "don't" -> "don 't"
    (re.compile(f"([^{_ALPHA}])[']([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([^{_ALPHA}0-9])[']([{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])[']([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])[']([{_ALPHA}])"), r"\1 '\2"),
    (re.compile(r"([0-9])[']([s])"), r"\1 '\2"),
)
_HAS_ALPHA = re.compile(f"[{_ALPHA}]")
_STARTS_LOWER = re.compile("[a-z]")  # Java's \p{Lower} is ASCII
_STARTS_DIGIT = re.compile("[0-9]+")
# The Unicode spaces Meteor folds to " " (no tab: StringTokenizer already removed those).
_WHITE = re.compile("[ \u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\u00a0]+")

NONBREAKING_ANY = 1
NONBREAKING_NUMERIC_ONLY = 2


def parse_nonbreaking_prefixes(text: str) -> dict[str, int]:
    """``english.prefixes`` as ``Normalizer.nbpList`` reads it: first token per line, ``#`` lines skipped,
    ``#NUMERIC_ONLY#`` as the second token marks a prefix that stays attached only before a number."""
    prefixes: dict[str, int] = {}
    for line in text.splitlines():
        tokens = java_tokens(line)
        if not tokens or tokens[0].startswith("#"):
            continue
        numeric = len(tokens) > 1 and tokens[1] == "#NUMERIC_ONLY#"
        prefixes[tokens[0]] = NONBREAKING_NUMERIC_ONLY if numeric else NONBREAKING_ANY
    return prefixes


def normalize_line(line: str, prefixes: dict[str, int]) -> str:
    """``Normalizer.normalizeLine(line, LANG_EN, keepPunctuation=true)``."""
    s = _SEPARATE_OTHER.sub(r" \1 ", " " + line + " ")
    s = _MULTI_DOT.sub(r" DOTMULTI\1", s)
    while "DOTMULTI." in s:
        s = _MULTI_DOT_NEXT.sub(r"DOTDOTMULTI \1", s)
        s = s.replace("DOTMULTI.", "DOTDOTMULTI")
    for pattern in _COMMA_SPLITS:
        s = pattern.sub(r"\1 , \2", s)
    s = _SINGLE_QUOTES.sub("'", s)
    s = _DOUBLE_QUOTES.sub(' " ', s)
    s = s.replace("\u2013", "-").replace("--", "-")
    s = _DASH_BETWEEN_WORDS.sub(r"\1 \2", s)
    for pattern, replacement in _CONTRACTIONS:
        s = pattern.sub(replacement, s)

    words = java_tokens(s)
    out = []
    last = len(words) - 1
    for i, word in enumerate(words):
        if len(word) > 1 and word.endswith("."):
            prefix = word[:-1]
            kind = prefixes.get(prefix)
            if "." in prefix and _HAS_ALPHA.search(prefix):  # "U.S." -> "US"
                out.append(word.replace(".", ""))
            elif kind == NONBREAKING_ANY or (i < last and _STARTS_LOWER.match(words[i + 1])):
                out.append(word)
            elif kind == NONBREAKING_NUMERIC_ONLY and i < last and _STARTS_DIGIT.match(words[i + 1]):
                out.append(word)
            else:
                out.append(prefix + " .")
        else:
            out.append(word)
        out.append(" ")
    s = "".join(out)

    while "DOTDOTMULTI" in s:
        s = s.replace("DOTDOTMULTI", "DOTMULTI.")
    s = s.replace("DOTMULTI", ".")
    return java_trim(_WHITE.sub(" ", s))


def meteor_words(text: str, prefixes: dict[str, int]) -> list[str]:
    """The words Meteor aligns for one (already ``|||``-split and trimmed) segment side: normalized,
    lower-cased as Java does, split as ``StringTokenizer`` does."""
    return java_tokens(java_lower(normalize_line(text, prefixes)))
