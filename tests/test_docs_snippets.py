"""Every ```python snippet of README.md and docs/*.md runs.

The snippets of one file run in order in one namespace (like a console session), in a temporary
working directory. The namespace starts with small example inputs under the names the docs use
(``refs``, ``preds``, ``train_refs``...), see ``NAMESPACE``. A marker comment on the line right
before a fence says what a snippet needs (documented in docs/architecture.md, "Docs snippets"):

    <!-- snippet: needs java -->          a Java runtime and pycocoevalcap's jars (METEOR)
    <!-- snippet: needs shared -->        ../shared/data (NICE val, COCO subset); its files are linked
                                          into the working directory under their own names
    <!-- snippet: needs torch -->         PyTorch
    <!-- snippet: skip REASON -->         never run (say why: e.g. the output of a ten-minute run)

Several needs are separated by commas. A snippet whose needs are missing is skipped with the reason,
and so are the later snippets of its file (they may use its names).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import datasets

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!--\s*snippet:\s*(needs|skip)\s*(.*?)\s*-->\s*$")

REFS = {
    1: ["A dog runs on the grass.", "The dog is running."],
    2: ["A cat sleeps on a bed.", "A cat is sleeping."],
    3: ["Two people ride bikes down a street.", "People riding bicycles."],
}
PREDS = {1: "a dog running on grass", 2: "a cat sleeping", 3: "two people on bikes"}
TRAIN_REFS = {10 + k: [f"a {a} {verb} on the {b}" for verb in ("sits", "runs")] for k, (a, b) in enumerate(
    [("dog", "grass"), ("cat", "bed"), ("man", "street"), ("bird", "tree"), ("child", "beach")])}


def namespace(cwd: Path) -> dict:
    """The docs' example names; also writes coco-train-df.npz (built from ``TRAIN_REFS``) in ``cwd``."""
    import capeval
    from capeval.tokenize import tokenize

    df = capeval.DocumentFrequencies.from_references(TRAIN_REFS)
    df.save(cwd / "coco-train-df.npz")

    tok_train = {i: tokenize(c, "ptb") for i, c in TRAIN_REFS.items()}
    words = sorted({w for caps in tok_train.values() for c in caps for w in c.split()})
    idx_to_word = ["<NULL>", "<START>", "<END>", *words]
    index = {w: k for k, w in enumerate(idx_to_word)}
    sampled = np.zeros((4, 8), dtype=np.int64)
    for row, key in enumerate(list(tok_train)[:4]):
        ids = [index[w] for w in tok_train[key][0].split()]
        sampled[row, : len(ids)] = ids
        sampled[row, len(ids)] = 2
    return {
        "np": np,
        "rng": np.random.default_rng(0),
        "refs": dict(REFS),
        "preds": dict(PREDS),
        "refs_a": dict(REFS),
        "preds_a": dict(PREDS),
        "refs_val": dict(REFS),
        "refs_test": dict(REFS),
        "preds_a_val": dict(PREDS),
        "preds_b_val": {1: "a dog", 2: "a cat", 3: "people"},
        "preds_a_test": dict(PREDS),
        "n": len(REFS),
        "train_refs": dict(TRAIN_REFS),
        "train_refs_tokenized": tok_train,
        "idx_to_word": idx_to_word,
        "sampled_ids": sampled,
        "image_keys": list(tok_train)[:4],
        "result_b": capeval.evaluate(REFS, {1: "a dog", 2: "a cat", 3: "people"}, ["bleu", "rouge_l", "cider_d"], df=df),
    }


def snippets():
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        for k, match in enumerate(FENCE.finditer(text)):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = MARKER.search(before)
            yield path, k, match.group(1), (marker.group(1), marker.group(2)) if marker else None


def missing(needs: str) -> list[str]:
    out = []
    for need in (n.strip() for n in needs.split(",") if n.strip()):
        if need == "java":
            if shutil.which("java") is None or importlib.util.find_spec("pycocoevalcap") is None:
                out.append("Java and pycocoevalcap's jars")
        elif need == "shared":
            if not datasets.available():
                out.append("../shared/data")
        elif need == "torch":
            if importlib.util.find_spec("torch") is None:
                out.append("PyTorch")
        else:
            out.append(f"unknown need {need!r} (a typo in the marker?)")
    return out


SHARED_ROWS = 300  # the NICE file is cut to its first rows: the same format, a fraction of the time


def link_shared(cwd: Path) -> None:
    """The shared files under their own names (NICE val cut to ``SHARED_ROWS`` images), and two NICE
    submissions for them (docs/report.md's ``retrieval.csv`` and ``oracle.csv``)."""
    from capeval.formats import write_nice_submission

    lines = datasets.NICE_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    (cwd / datasets.NICE_CSV.name).write_text("".join(lines[: SHARED_ROWS + 1]), encoding="utf-8")
    for source in (datasets.NICE_HINTS, datasets.COCO_SUBSET):
        if not (cwd / source.name).exists():
            os.symlink(source, cwd / source.name)
    refs, preds = datasets.nice_retrieval()
    ids = list(refs)[:SHARED_ROWS]
    write_nice_submission(cwd / "retrieval.csv", {i: preds[i] for i in ids})
    write_nice_submission(cwd / "oracle.csv", {i: (refs[i][0] if k % 3 == 0 else preds[i]) for k, i in enumerate(ids)})


BY_FILE: dict[Path, list] = {}
for _path, _k, _code, _marker in snippets():
    BY_FILE.setdefault(_path, []).append((_k, _code, _marker))


@pytest.mark.parametrize("path", sorted(BY_FILE), ids=lambda p: str(p.relative_to(ROOT)))
def test_snippets_run(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = namespace(tmp_path)
    for k, code, marker in BY_FILE[path]:
        if marker and marker[0] == "skip":
            assert marker[1], f"{path.name} snippet {k}: a skip marker needs a reason"
            continue
        if marker and marker[0] == "needs":
            lacking = missing(marker[1])
            assert not any(m.startswith("unknown need") for m in lacking), lacking
            if lacking:
                pytest.skip(f"{path.name} snippet {k} (and later ones) need {', '.join(lacking)}")
            if "shared" in marker[1]:
                link_shared(tmp_path)
        try:
            exec(compile(code, f"{path.name}[snippet {k}]", "exec"), ns)
        except Exception as exc:  # the file and snippet at fault, then the traceback
            raise AssertionError(f"{path.relative_to(ROOT)} snippet {k} failed: {type(exc).__name__}: {exc}") from exc


def test_markers_are_parsed():
    text = "x\n<!-- snippet: needs java, shared -->\n```python\nprint(1)\n```\n"
    match = next(FENCE.finditer(text))
    before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
    assert MARKER.search(before).groups() == ("needs", "java, shared")
    assert missing("java, typo") == [m for m in missing("java")] + ["unknown need 'typo' (a typo in the marker?)"]


DOTTED = re.compile(r"`(capeval(?:\.[A-Za-z_]\w*)+)")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dotted_paths_resolve(path):
    """Every `capeval.x.y` the docs name is reachable as written: ``import capeval`` then attributes
    (importing ``capeval.x`` first where ``x`` is a submodule, as a reader would)."""
    import importlib

    import capeval

    for dotted in sorted(set(DOTTED.findall(path.read_text(encoding="utf-8")))):
        parts = dotted.split(".")
        for k in range(len(parts), 1, -1):  # import the longest module prefix, as `import a.b` would
            try:
                importlib.import_module(".".join(parts[:k]))
                break
            except ImportError:
                continue
        obj = capeval
        for name in parts[1:]:
            assert hasattr(obj, name), f"{path.name}: `{dotted}` does not resolve (no {name!r} on {obj!r})"
            obj = getattr(obj, name)
