"""Caption tokenization: ``ptb`` (pure Python), ``corenlp`` (the Stanford jar in pycocoevalcap), ``none``.

``ptb`` reproduces, token for token and without Java, what pycocoevalcap's ``PTBTokenizer`` produces:
Stanford CoreNLP 3.4.1 ``PTBTokenizer -preserveLines -lowerCase``, then the punctuation tokens in
:data:`PUNCTUATIONS` are dropped (lower-casing happens first, so ``-lrb-`` and friends survive).

One call is one "document", exactly as pycocoevalcap hands the jar one file: caption ``i`` is followed by
a line break and caption ``i + 1``, and the last caption ends the file.  The jar's lexer can look a few
characters past a line break (a caption ending in a one-letter abbreviation such as ``"grade A."`` keeps
``a.`` unless the next caption starts with ``The``, ``It``, ...), so to get pycocoevalcap's tokens
byte for byte pass the captions in the order pycocoevalcap joins them (``refs`` and ``preds`` in separate
calls, each in dict order).  See ``docs/tokenizer.md`` for the few documented divergences (line
separators other than ``\\n`` inside a caption: the jar splits the caption and misaligns every later
caption; capeval keeps each caption whole).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._inputs import check_choice, check_texts
from .errors import TokenizerError

# pycocoevalcap drops these tokens after PTB tokenization (lowercasing happens first, so -lrb- survives).
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
TOKENIZERS = ("ptb", "corenlp", "none")
CORENLP_JAR_NAME = "stanford-corenlp-3.4.1.jar"

# Characters the jar treats as line breaks (with -preserveLines each one ends an output line).
# pycocoevalcap only replaces "\n" inside captions; the others split a caption in two ("\r" at the very
# end of a caption merges with the "\n" that follows it).  U+0085 is *not* one of them in 3.4.1: its
# ellipsis rule wins, so it becomes "...".
LINE_SEPARATORS = "\r\x0b\x0c\u2028\u2029"
_SEPARATOR_RE = re.compile("[\r\x0b\x0c\u2028\u2029]")


# --------------------------------------------------------------------------------------------------
# Post-processing shared by both backends: pycocoevalcap's punctuation removal on one output line
# --------------------------------------------------------------------------------------------------


def _clean_line(line: str) -> str:
    """What pycocoevalcap does with one line of jar output."""
    return " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)


# --------------------------------------------------------------------------------------------------
# ptb: the pure-Python lexer
# --------------------------------------------------------------------------------------------------

# Words the jar splits (pushing back the last two or three letters).
_ASSIMILATIONS = {"cannot": "can not", "gonna": "gon na", "gotta": "got ta", "lemme": "lem me",
                  "gimme": "gim me", "wanna": "wan na"}
# A caption made of ASCII letters and spaces, optionally ending in a period: its tokens are its words
# (lower-cased), except the assimilations above and the last word before the period (an abbreviation
# keeps it), which the lexer decides (once per distinct word).
_SIMPLE = re.compile(r" *([A-Za-z]+(?: +[A-Za-z]+)*)( *\.)? *\Z")
# Spaces and line breaks the lexer's trailing context may skip to reach the next caption.
_SPACE_NL = " \t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u3000\x85" + LINE_SEPARATORS


_ASSIM_RE = re.compile(r"\b(?:cannot|gonna|gotta|lemme|gimme|wanna)\b")


class _PTB:
    """Pure-Python PTB tokenization with a per-caption cache (captions repeat a lot in caption data)."""

    def __init__(self):
        from . import _ptb_lexer

        self.lexer = _ptb_lexer
        self.cache: dict[str, str] = {}
        self.final_word: dict[str, str] = {}

    # ---- one caption -----------------------------------------------------------------------------
    def caption(self, text: str, follow: str | None) -> str:
        """Tokens of ``text`` (already free of "\\n") followed by ``"\\n" + follow``, or by the end of the
        file when ``follow`` is None, as one space-joined string (punctuation removed)."""
        return self._caption(text, follow)[0]

    def _caption(self, text: str, follow: str | None) -> tuple[str, bool]:
        """``caption()`` plus whether, with ``follow == ""``, the tokens may depend on the next caption."""
        L = self.lexer
        buf = text if follow is None else text + "\n" + follow
        u = L.to_utf16_units(buf)
        stop = len(u) if follow is None else len(L.to_utf16_units(text))
        flag = [False]
        tokens = L.lex(u, L.class_string(u), stop, flag if follow == "" else None)
        lines: list[list[str]] = [[]]
        for tok in tokens:
            if tok == L.NL_TOKEN:
                lines.append([])
            else:
                lines[-1].append(_lower(tok))
        parts = []
        for toks in lines:
            if toks and toks[-1][-1].isspace():
                cleaned = _clean_line(" ".join(toks))  # pycocoevalcap's rstrip() eats the trailing space
            else:
                cleaned = " ".join([t for t in toks if t not in PUNCTUATIONS])
            if cleaned:
                parts.append(cleaned)
        return " ".join(parts), flag[0]

    # ---- a document ------------------------------------------------------------------------------
    def __call__(self, texts: list[str]) -> list[str]:
        if not texts:
            return []
        cache = self.cache
        res: dict[str, str | None] = {}
        needs_context = False
        for t in dict.fromkeys(texts):  # distinct captions, in order
            r = cache.get(t)
            if r is None:
                u = t.replace("\n", " ") if "\n" in t else t
                r = self._simple(u)
                if r is None:
                    r, depends = self._caption(u, "")
                    if depends:  # its tokens depend on the next caption: decided per occurrence below
                        needs_context = True
                        r = None
                if r is not None:
                    cache[t] = r
            res[t] = r
        out = [res[t] for t in texts]
        if needs_context:
            for i, r in enumerate(out):
                if r is None:
                    u = texts[i].replace("\n", " ")
                    out[i] = self.caption(u, _following(texts, i))
        # The last caption ends the file: no line break after it for the lexer to see.
        out[-1] = self.caption(texts[-1].replace("\n", " "), None)
        return out

    def _simple(self, t: str) -> str | None:
        m = _SIMPLE.match(t)
        if m is None:
            return None
        core = m.group(1)
        low = core.lower()
        if "  " in low:
            low = " ".join(low.split())
        tail = None
        if m.group(2) == ".":  # "word." : an abbreviation keeps its period, the lexer decides (once per word)
            k = core.rfind(" ")
            w = core[k + 1 :]
            tail = self.final_word.get(w)
            if tail is None:
                tail, depends = self._caption(w + ".", "")
                if depends:
                    tail = ""  # e.g. a one-letter word: the lexer must see the next caption
                self.final_word[w] = tail
            if not tail:
                return None
            k = low.rfind(" ")
            low = low[:k] if k >= 0 else ""
        if _ASSIM_RE.search(low):
            low = " ".join(_ASSIMILATIONS.get(w, w) for w in low.split(" "))
        if tail is not None:
            low = low + " " + tail if low else tail
        return low


def _following(texts: list[str], i: int) -> str:
    """The text after caption ``i``'s line break, as far as the lexer can look: up to and including the
    first caption with a non-blank character, plus its line break unless that caption ends the file."""
    parts = []
    j = i + 1
    n = len(texts)
    while j < n:
        t = texts[j].replace("\n", " ")
        parts.append(t)
        if t.strip(_SPACE_NL):
            break
        j += 1
    text = "\n".join(parts)
    if j < n - 1:
        text += "\n"
    return text


_SIGMA = "\u03a3"


def _lower(tok: str) -> str:
    """Java's ``String.toLowerCase(Locale.ENGLISH)``."""
    if tok.isascii():
        return tok.lower()
    from ._ptb_lexer import from_utf16_units

    tok = from_utf16_units(tok)
    if _SIGMA in tok:
        from ._java_case import java_lower

        return java_lower(tok)
    return tok.lower()


_PTB_INSTANCE: _PTB | None = None


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """The pure-Python tokenizer (see module docstring)."""
    global _PTB_INSTANCE
    texts = check_texts(texts)
    if _PTB_INSTANCE is None:
        _PTB_INSTANCE = _PTB()
    try:
        return _PTB_INSTANCE(texts)
    finally:
        if len(_PTB_INSTANCE.cache) > 1_000_000:
            _PTB_INSTANCE.cache.clear()


def ptb_line_counts(texts: Sequence[str]) -> list[int]:
    """How many output lines the jar writes for each caption of a document (1 unless the caption holds a
    line separator)."""
    from . import _ptb_lexer as L

    texts = check_texts(texts)
    counts = []
    last = len(texts) - 1
    for i, t in enumerate(texts):
        t = t.replace("\n", " ")
        if not _SEPARATOR_RE.search(t):
            counts.append(1)
            continue
        # Lex the caption with the line break that ends it (none after the last caption): each newline
        # token is one line break; "\r" + "\n" is a single one.
        buf = t if i == last else t + "\n"
        u = L.to_utf16_units(buf)
        breaks = L.lex(u, L.class_string(u), len(u)).count(L.NL_TOKEN)
        counts.append(breaks + 1 if i == last else breaks)
    return counts


# --------------------------------------------------------------------------------------------------
# corenlp: drive the jar shipped with pycocoevalcap
# --------------------------------------------------------------------------------------------------


def find_corenlp_jar() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("the corenlp tokenizer needs pycocoevalcap (pip install pycocoevalcap==1.2)")
    jar = Path(list(spec.submodule_search_locations)[0]) / "tokenizer" / CORENLP_JAR_NAME
    if not jar.is_file():
        raise TokenizerError(f"{CORENLP_JAR_NAME} not found at {jar}")
    return jar


def corenlp_raw_lines(texts: Sequence[str], java: str | None = None) -> list[str]:
    """Run the jar exactly as pycocoevalcap does (same command, same input bytes, but in a private temp
    directory) and return its raw output lines (lower-cased tokens, punctuation kept)."""
    java = java or shutil.which("java")
    if not java:
        raise TokenizerError("the corenlp tokenizer needs a Java runtime on PATH")
    jar = find_corenlp_jar()
    text = "\n".join(t.replace("\n", " ") for t in texts)
    with tempfile.TemporaryDirectory(prefix="capeval-corenlp-") as tmp:
        src = os.path.join(tmp, "captions.txt")
        with open(src, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogatepass"))
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", src]
        proc = subprocess.run(cmd, capture_output=True, cwd=tmp)
    if proc.returncode != 0:
        raise TokenizerError(f"CoreNLP PTBTokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout.decode("utf-8", errors="replace").split("\n")


def corenlp_tokenize(texts: Sequence[str], java: str | None = None) -> list[str]:
    """Tokenize with the CoreNLP 3.4.1 jar as pycocoevalcap's PTBTokenizer does, keeping every caption
    aligned: a caption holding a line separator other than "\\n" (which the jar turns into extra output
    lines) gets all of its lines back, joined."""
    texts = check_texts(texts)
    if not texts:
        return []
    lines = corenlp_raw_lines(texts, java)
    counts = ptb_line_counts(texts)
    if len(lines) != sum(counts):
        bad = _first_misaligned(texts, lines, counts)
        raise TokenizerError(
            f"CoreNLP returned {len(lines)} lines for {len(texts)} captions (expected {sum(counts)}); "
            f"output first goes out of step at caption {bad}: {texts[bad]!r}"
        )
    out = []
    pos = 0
    for c in counts:
        parts = [p for p in (_clean_line(line) for line in lines[pos : pos + c]) if p]
        out.append(" ".join(parts))
        pos += c
    return out


def _first_misaligned(texts: list[str], lines: list[str], counts: list[int]) -> int:
    """Index of the first caption whose jar output does not match the pure-Python prediction."""
    expected = ptb_tokenize(texts)
    pos = 0
    for i, c in enumerate(counts):
        got = " ".join(p for p in (_clean_line(line) for line in lines[pos : pos + c]) if p)
        if got != expected[i]:
            return i
        pos += c
    return len(texts) - 1


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def tokenize(texts: Sequence[str], tokenizer: str = "ptb") -> list[str]:
    """Tokenize captions; returns one space-joined token string per input, in order.

    ``ptb`` (default): pure Python, identical to pycocoevalcap's tokens.  ``corenlp``: the Stanford jar
    of an installed pycocoevalcap (needs Java).  ``none``: the captions are already tokenized (tokens
    separated by spaces); they are returned unchanged.
    """
    if tokenizer == "ptb":
        return ptb_tokenize(texts)
    if tokenizer == "corenlp":
        return corenlp_tokenize(texts)
    check_choice(tokenizer, TOKENIZERS, "tokenizer")
    return check_texts(texts)  # "none": already tokenized


def tokenize_lists(texts: Sequence[str], tokenizer: str = "ptb") -> list[list[str]]:
    """Like :func:`tokenize`, but one list of tokens per caption."""
    return [s.split(" ") if s else [] for s in tokenize(texts, tokenizer)]
