"""Caption tokenization: `ptb` (pure Python), `corenlp` (the Stanford jar in pycocoevalcap), `none`.

INTERIM: until the pure-Python PTB tokenizer lands, `ptb` falls back to `corenlp`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import TokenizerError

# pycocoevalcap drops these tokens after PTB tokenization (lowercasing happens first, so -lrb- survives).
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
TOKENIZERS = ("ptb", "corenlp", "none")
CORENLP_JAR_NAME = "stanford-corenlp-3.4.1.jar"


def find_corenlp_jar() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("the corenlp tokenizer needs pycocoevalcap (pip install pycocoevalcap==1.2)")
    jar = Path(list(spec.submodule_search_locations)[0]) / "tokenizer" / CORENLP_JAR_NAME
    if not jar.is_file():
        raise TokenizerError(f"{CORENLP_JAR_NAME} not found at {jar}")
    return jar


def corenlp_tokenize(texts: Sequence[str], java: str | None = None) -> list[str]:
    """Tokenize with the CoreNLP 3.4.1 jar exactly as pycocoevalcap's PTBTokenizer does."""
    java = java or shutil.which("java")
    if not java:
        raise TokenizerError("the corenlp tokenizer needs a Java runtime on PATH")
    jar = find_corenlp_jar()
    texts = [t.replace("\n", " ") for t in texts]
    with tempfile.TemporaryDirectory(prefix="capeval-corenlp-") as tmp:
        src = os.path.join(tmp, "captions.txt")
        with open(src, "w", encoding="utf-8") as fh:
            fh.write("\n".join(texts))
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", src]
        proc = subprocess.run(cmd, capture_output=True, cwd=tmp)
    if proc.returncode != 0:
        raise TokenizerError(f"CoreNLP PTBTokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
    lines = proc.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(texts):
        raise TokenizerError(f"CoreNLP returned {len(lines)} lines for {len(texts)} captions")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in lines]


def tokenize(texts: Sequence[str], tokenizer: str = "ptb") -> list[str]:
    """Tokenize captions; returns one space-joined token string per input, in order."""
    if tokenizer == "none":
        return list(texts)
    if tokenizer in ("ptb", "corenlp"):
        return corenlp_tokenize(texts)
    raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {TOKENIZERS}")
