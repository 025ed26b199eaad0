"""capeval vs pycocoevalcap 1.2, side by side on the same inputs in one run (text already tokenized).

    python benchmarks/bench_core.py [--sets coco,nice,coco40k] [--repeat 3] [--markdown out.md] [--first-call-only]

For each set: pycocoevalcap's Bleu(4), Rouge(), Cider() each timed alone; capeval's BLEU, ROUGE-L and
CIDEr-D each alone and the three together through ``evaluate()`` (shared n-gram encoding); plus
tokenization (pycocoevalcap's Java PTBTokenizer with its JVM start vs capeval's ``ptb``).
Python peak memory via tracemalloc (numpy allocations included). Best of ``--repeat`` runs.
Scores are checked to agree to 1e-9 before any time is reported.

First call vs warm: for each set, a fresh interpreter loads the set, imports capeval, and times its
first ``evaluate()`` (BLEU, ROUGE-L, CIDEr-D) and then ``--repeat`` more calls in the same process,
once on raw captions (``tokenizer="ptb"``; the token cache is cleared before every warm call, so
warm calls tokenize too) and once on pre-tokenized text (``tokenizer="none"``). What a user who
scores once pays is the first column.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import datasets  # noqa: E402
from capeval import evaluate  # noqa: E402
from capeval.tokenize import tokenize  # noqa: E402


def clear_tokenizer_cache():
    import importlib

    module = importlib.import_module("capeval.tokenize")
    if module._PTB_INSTANCE is not None:  # every per-caption and per-word memo: warm calls tokenize too
        module._PTB_INSTANCE.cache.clear()
        module._PTB_INSTANCE.final_word.clear()


SETS = {
    "coco": ("COCO subset leave-one-out (4,800 images)", datasets.coco_leave_one_out),
    "nice": ("NICE val, first retrieval hint (5,000 images, 1 ref)", datasets.nice_retrieval),
    "coco40k": ("COCO leave-one-out replicated to 40,504 images", datasets.coco_40504),
}


def timed(fn, repeat):
    """Best wall time of ``repeat`` plain runs, then one run under tracemalloc for the peak memory
    (tracing slows allocation-heavy code, so it never overlaps with timing)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            out = fn()
        best = min(best, time.perf_counter() - t)
    tracemalloc.start()
    with contextlib.redirect_stdout(io.StringIO()):
        fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak, out


def run_set(name, repeat, rows):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    label, loader = SETS[name]
    refs, preds = loader()
    ids = list(refs)
    n_tokens = None

    # tokenization, once each (the jar's run includes its JVM start, as users experience it)
    raw_gts = {i: [{"caption": c} for c in refs[i]] for i in ids}
    raw_res = {i: [{"caption": preds[i]}] for i in ids}

    def coco_tok():
        with contextlib.redirect_stderr(io.StringIO()):
            return PTBTokenizer().tokenize(raw_gts), PTBTokenizer().tokenize(raw_res)

    t_coco_tok, m_coco_tok, (gts, res) = timed(coco_tok, repeat)
    def ours_tok():  # cold: capeval caches tokens per distinct caption, which repeats would reuse
        clear_tokenizer_cache()
        refs_flat = [c for i in ids for c in refs[i]]
        return tokenize(refs_flat, "ptb") + tokenize([preds[i] for i in ids], "ptb")

    t_ours_tok, m_ours_tok, toks = timed(ours_tok, repeat)
    n_tokens = sum(len(t.split()) for t in toks)
    rows.append((label, f"tokenize ({n_tokens:,} tokens)", t_coco_tok, t_ours_tok, m_coco_tok, m_ours_tok))

    tok_refs = {i: gts[i] for i in ids}
    tok_preds = {i: res[i][0] for i in ids}
    scorers = {"bleu": (Bleu(4), "Bleu"), "rouge_l": (Rouge(), "ROUGE_L"), "cider_d": (Cider(), "CIDEr-D")}
    coco_total, coco_scores = 0.0, {}
    ours_total_alone = 0.0
    for metric, (scorer, label_m) in scorers.items():
        t_c, m_c, (score, _) = timed(lambda s=scorer: s.compute_score(tok_refs, res), repeat)
        t_o, m_o, result = timed(lambda m=metric: evaluate(tok_refs, tok_preds, metrics=[m], tokenizer="none"), repeat)
        coco_total += t_c
        ours_total_alone += t_o
        coco_scores[metric] = score
        ours = [result.scores[f"Bleu_{k}"] for k in range(1, 5)] if metric == "bleu" else result.scores[list(result.scores)[0]]
        assert np.allclose(ours, score, rtol=0, atol=1e-9), (metric, ours, score)
        rows.append((label, label_m, t_c, t_o, m_c, m_o))
    t_all, m_all, result = timed(lambda: evaluate(tok_refs, tok_preds, metrics=["bleu", "rouge_l", "cider_d"], tokenizer="none"), repeat)
    rows.append((label, "BLEU+ROUGE-L+CIDEr-D via evaluate()", coco_total, t_all, None, m_all))


FIRST_CALL = """
import json, sys, time
sys.path.insert(0, {root!r})
from benchmarks import datasets
refs, preds = getattr(datasets, {loader!r})()
tokenizer = {tokenizer!r}
start = time.perf_counter()
import capeval
imported = time.perf_counter() - start
from benchmarks.bench_core import clear_tokenizer_cache
if tokenizer == "none":
    from capeval.tokenize import tokenize
    ids = list(refs)
    flat = iter(tokenize([c for i in ids for c in refs[i]], "ptb"))
    refs = {{i: [next(flat) for _ in refs[i]] for i in ids}}
    preds = dict(zip(ids, tokenize([preds[i] for i in ids], "ptb")))
    clear_tokenizer_cache()
times = []
for _ in range({repeat} + 1):
    clear_tokenizer_cache()
    t = time.perf_counter()
    capeval.evaluate(refs, preds, metrics=["bleu", "rouge_l", "cider_d"], tokenizer=tokenizer)
    times.append(time.perf_counter() - t)
print(json.dumps({{"import": imported, "times": times}}))
"""


def first_call(name, tokenizer, repeat):
    """First and best warm ``evaluate()`` of a fresh process (see the module docstring)."""
    loader = SETS[name][1].__name__
    code = FIRST_CALL.format(root=str(Path(__file__).resolve().parents[1]), loader=loader, tokenizer=tokenizer, repeat=repeat)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["import"], data["times"][0], min(data["times"][1:])


def first_call_table(names, repeat) -> str:
    lines = [
        "| set | input | import capeval (s) | first evaluate() (s) | warm evaluate(), best (s) | first / warm |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in names:
        for tokenizer, label in (("ptb", "raw captions, ptb"), ("none", "pre-tokenized")):
            imported, first, warm = first_call(name, tokenizer, repeat)
            lines.append(f"| {SETS[name][0]} | {label} | {imported:.2f} | {first:.2f} | {warm:.2f} | {first / warm:.2f} |")
    return "\n".join(lines)


def fmt_mem(b):
    return "" if b is None else f"{b / 2**20:,.0f} MiB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="coco,nice,coco40k")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--first-call-only", action="store_true", help="only the first-call vs warm table")
    args = parser.parse_args(argv)
    if not datasets.available():
        sys.exit("../shared/data is not present: nothing to benchmark")
    first = first_call_table(args.sets.split(","), args.repeat)
    if args.first_call_only:
        print(first)
        return
    rows = []
    for name in args.sets.split(","):
        run_set(name, args.repeat, rows)
    lines = [
        "| set | stage | pycocoevalcap 1.2 (s) | capeval (s) | speed-up | peak mem pycocoevalcap | peak mem capeval |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, stage, t_c, t_o, m_c, m_o in rows:
        lines.append(f"| {label} | {stage} | {t_c:.3f} | {t_o:.3f} | {t_c / t_o:.1f}x | {fmt_mem(m_c)} | {fmt_mem(m_o)} |")
    text = "\n".join(lines) + "\n\nFirst call in a fresh process vs warm calls:\n\n" + first
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
