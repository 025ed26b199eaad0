"""The ``capeval`` command (also ``python -m capeval``).

    capeval score REFS PREDS [--metrics ...] [--tokenizer ptb|corenlp|none] [--df FILE]
                             [--format table|json|csv] [--per-item FILE] [--ci]
    capeval df build REFS -o FILE
    capeval df info FILE
    capeval compare REFS PREDS_A PREDS_B [--method both|bootstrap|ar]
    capeval leaderboard --refs REFS SUBMISSION... -o DIR

Exit codes (see docs/cli.md): 0 success, 1 unexpected internal error, 2 usage error, 3 bad input
(unreadable or malformed file, duplicate or missing ids, invalid captions, bad document
frequencies), 4 a missing or failing external dependency (Java, the METEOR or CoreNLP jar, SPICE),
5 an output file cannot be written, 130 interrupted. Errors are one line on stderr:
``capeval: error: <file>, line <n>: <what is wrong>``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

from ._inputs import check_sigma
from ._version import __version__
from .errors import (
    CapevalError,
    DocumentFrequencyError,
    InputError,
    MeteorError,
    MissingIdError,
    OptionError,
    SpiceUnavailableError,
    TokenizerError,
)
from .metrics import SIGMA
from .metrics import names as metric_names

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_DEPENDENCY = 4
EXIT_OUTPUT = 5
EXIT_INTERRUPTED = 130

FORMAT_CHOICES = ("auto", "coco", "coco-results", "nice", "nice-submission", "karpathy", "json", "jsonl", "txt")


class UsageError(Exception):
    """A command line that parses but makes no sense (exit 2)."""


class _OutputError(Exception):
    """An output file could not be written (exit 5)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- helpers --------------------------------------------------------------------------------------
def _one_line(text) -> str:
    return " ".join(str(text).split())


_warned: set[str] = set()


def _warn(text: str) -> None:
    """One ``capeval: warning:`` line on stderr, each distinct text once per run."""
    line = _one_line(text)
    if line not in _warned:
        _warned.add(line)
        print(f"capeval: warning: {line}", file=sys.stderr)


def _warn_line(message, category, filename, lineno, file=None, line=None):
    _warn(str(message))


def _metrics(value):
    if value is None:
        return None
    from .metrics import resolve

    names = [m for part in value for m in part.replace(",", " ").split() if m]
    _refuse_spice(names)
    try:
        resolve(names)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return names


def _refuse_spice(names) -> None:
    """SPICE is a known metric that capeval does not provide: exit 4 with the reason, not "unknown metric"."""
    if any(name.lower() == "spice" for name in names):
        from .compat import SPICE_MESSAGE

        raise SpiceUnavailableError(SPICE_MESSAGE)


def _read_refs(path, fmt, split=None):
    from .formats import read_references

    return read_references(path, fmt, split=split)


def _read_preds(path, fmt):
    from .formats import read_predictions

    return read_predictions(path, fmt)


def _evaluate(refs, preds, args, refs_path, preds_path, metrics):
    from .evaluate import evaluate
    from .formats import match_ids

    try:
        return evaluate(
            refs,
            match_ids(refs, preds),
            metrics,
            tokenizer=args.tokenizer,
            df=_document_frequencies(args),
            n=args.n,
            sigma=args.sigma,
            strict=not args.lenient,
            allow_df_mismatch=args.allow_df_mismatch,
        )
    except MissingIdError as exc:
        raise MissingIdError(f"{preds_path} vs {refs_path}: {_lenient_hint(exc)}") from None


def _document_frequencies(args):
    """``--df FILE`` loaded once and checked against ``--tokenizer`` / ``--n`` (``--allow-df-mismatch``)."""
    if args.df is None:
        return None
    if not hasattr(args, "_df_loaded"):
        from .df import DocumentFrequencies

        args._df_loaded = DocumentFrequencies.coerce(args.df, tokenizer=args.tokenizer, n=args.n, allow_mismatch=args.allow_df_mismatch)
    return args._df_loaded


def _lenient_hint(exc) -> str:
    return str(exc).replace("(strict=False scores the intersection)", "(--lenient scores the ids both share)")


def _write_output(path, text: str) -> None:
    """Regular files atomically (through symlinks, which stay links); ``-``, pipes and devices directly."""
    from ._io import atomic_write_text

    path = Path(path)
    try:
        if str(path) == "-":
            sys.stdout.write(text)
        elif path.exists() and not path.is_file():  # /dev/stdout, a FIFO: never replace it with a file
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        else:
            atomic_write_text(os.path.realpath(path), text)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _emit(text: str, output) -> None:
    if output:
        _write_output(output, text if text.endswith("\n") else text + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _fmt(x, scale=1.0, digits=6) -> str:
    return "-" if x is None else f"{x * scale:.{digits}f}"


def _json_safe(obj):
    """NaN and infinities become null: JSON has no such numbers (``json.dumps`` would write ``NaN``)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _json_dumps(obj) -> str:
    return json.dumps(_json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False)


def _skipped_warnings(result) -> None:
    for key, reason in result.skipped.items():
        text = f"{key} skipped: {_one_line(reason)}"
        if not any(reason in w for w in _warned):  # evaluate() may have warned already
            _warn(text)


# -- score ----------------------------------------------------------------------------------------
def _score_inputs(args):
    """References and predictions from ``REFS PREDS``, or ``REF.txt [REF.txt ...] PREDS.txt``.

    With plain-text files each file but the last is one reference set and line i of every file is
    item i; anything but two files is a usage error otherwise.
    """
    from .formats import check_same_line_count, is_plain_text, read_predictions, read_text_references

    *ref_paths, preds_path = args.inputs
    if not ref_paths:
        raise UsageError("score needs references and predictions: capeval score REFS PREDS (or REF.txt [REF.txt ...] PREDS.txt)")
    text_refs = args.refs_format == "txt" or (args.refs_format == "auto" and all(is_plain_text(p) for p in ref_paths))
    text_preds = args.preds_format == "txt" or (args.preds_format == "auto" and is_plain_text(preds_path))
    if len(ref_paths) > 1 and not text_refs:
        raise UsageError(f"several reference files are only read as plain text (.txt, one reference set per file); got {', '.join(ref_paths)}")
    if text_refs != text_preds and args.refs_format == args.preds_format == "auto":
        raise UsageError(f"mixing plain-text and other files: {', '.join(ref_paths)} and {preds_path}; give .txt files on both sides (or name the formats)")
    args.refs = ref_paths[0] if len(ref_paths) == 1 else ref_paths
    args.preds = preds_path
    if text_refs and text_preds:
        refs = read_text_references(ref_paths)
        preds = read_predictions(preds_path, "txt")
        check_same_line_count(refs, preds)
        return refs, preds
    return _read_refs(ref_paths[0], args.refs_format, args.split), _read_preds(preds_path, args.preds_format)


def _check_engine_options(args) -> None:
    """Options of another engine are an error, not silently ignored."""
    if args.engine != "dask" and (args.workers is not None or args.scheduler):
        raise UsageError("--workers and --scheduler go with --engine dask")
    if args.engine != "stream" and args.spool_dir is not None:
        raise UsageError("--spool-dir goes with --engine stream")


def _score_with_engine(args, metrics):
    """Run ``capeval score`` on the stream or dask engine; the per-item file is written by the engine."""
    if args.ci:
        raise UsageError(f"--ci needs --engine memory (the bootstrap resamples per-item statistics held in memory), not {args.engine}")
    if args.lenient:
        raise UsageError(f"--lenient needs --engine memory: the {args.engine} engine reads both sides in the same id order")
    if args.chunk_size < 1:
        raise UsageError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.spool_dir is not None and not Path(args.spool_dir).is_dir():
        raise UsageError(f"--spool-dir {args.spool_dir}: not an existing directory")
    common = dict(
        tokenizer=args.tokenizer,
        df=args.df,
        n=args.n,
        sigma=args.sigma,
        per_item=args.per_item,
        refs_format=args.refs_format,
        preds_format=args.preds_format,
        split=args.split,
        allow_df_mismatch=args.allow_df_mismatch,
    )
    if args.engine == "stream":
        from .engines.stream import stream_evaluate

        return stream_evaluate(args.refs, args.preds, metrics, chunk_size=args.chunk_size, spool_dir=args.spool_dir, **common)
    from .engines.dask_engine import dask_evaluate

    return dask_evaluate(args.refs, args.preds, metrics, partition_size=args.chunk_size, workers=args.workers, scheduler=args.scheduler, **common)


def cmd_score(args) -> int:
    metrics = _metrics(args.metrics)
    _check_engine_options(args)
    if args.engine != "memory":  # stream / dask: lazy inputs (globs of shards), per-item file written as it goes
        if len(args.inputs) != 2:
            raise UsageError(f"--engine {args.engine} takes REFS PREDS (each may be a glob of shards), got {len(args.inputs)} files")
        args.refs, args.preds = args.inputs
        result = _score_with_engine(args, metrics)
    else:
        refs, preds = _score_inputs(args)
        result = _evaluate(refs, preds, args, args.refs, args.preds, metrics)
    _skipped_warnings(result)
    ci = None
    if args.ci:
        from .stats import bootstrap_ci

        ci = bootstrap_ci(result, n_resamples=args.n_resamples, seed=args.seed, alpha=args.alpha)
        for key, reason in ci.skipped.items():
            _warn(f"no confidence interval for {key}: {reason}")
    if args.per_item and args.engine == "memory":
        _write_per_item(result, args.per_item)
    scale = args.scale
    if args.format == "json":
        out = {
            "scores": {k: v * scale for k, v in result.scores.items()},
            "scale": scale,
            "n_images": len(result.per_item) if args.engine == "memory" else result.n_items,
            "refs": args.refs if isinstance(args.refs, list) else str(args.refs),
            "preds": str(args.preds),
            "signature": result.signature,
            "signatures": result.signatures,
            "skipped": result.skipped,
        }
        if ci is not None:
            out["ci"] = {k: {"low": v.low * scale, "high": v.high * scale} for k, v in ci.intervals.items()}
            out["ci_signature"] = ci.signature
        _emit(_json_dumps(out), args.output)
    elif args.format == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["metric", "score", "ci_low", "ci_high", "signature"])
        for key, value in result.scores.items():
            interval = ci.intervals.get(key) if ci is not None else None
            family = _FAMILY.get(key, "bleu" if key.startswith("Bleu_") else None)
            writer.writerow(
                [
                    key,
                    repr(value * scale),
                    "" if interval is None else repr(interval.low * scale),
                    "" if interval is None else repr(interval.high * scale),
                    result.signatures.get(family, result.signature),
                ]
            )
        _emit(buf.getvalue(), args.output)
    else:
        lines = []
        width = max((len(k) for k in result.scores), default=6)
        if ci is not None:
            lines.append(f"{'metric':<{width}}  {'score':>10}  {1 - args.alpha:.0%} CI")
        for key, value in result.scores.items():
            line = f"{key:<{width}}  {_fmt(value, scale):>10}"
            if ci is not None and key in ci.intervals:
                interval = ci.intervals[key]
                line += f"  [{_fmt(interval.low, scale)}, {_fmt(interval.high, scale)}]"
            lines.append(line)
        lines.append(f"signature: {result.signature}")
        if ci is not None:
            lines.append(f"ci: {ci.signature}")
        _emit("\n".join(lines), args.output)
    return EXIT_OK


_FAMILY = {"METEOR": "meteor", "ROUGE_L": "rouge_l", "CIDEr-D": "cider_d", "CIDEr": "cider"}


def _write_per_item(result, path) -> None:
    frame = result.per_item.reset_index()
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        records = json.loads(frame.to_json(orient="records", force_ascii=False, double_precision=15))
        text = json.dumps({"signature": result.signature, "items": records}, ensure_ascii=False)
    elif suffix in (".jsonl", ".ndjson"):
        text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    else:
        text = frame.to_csv(index=False, lineterminator="\n", float_format="%.17g")
    _write_output(path, text)


# -- df -------------------------------------------------------------------------------------------
def cmd_df_build(args) -> int:
    from .df import DocumentFrequencies

    refs = _read_refs(args.refs, args.refs_format, args.split)
    df = DocumentFrequencies.from_references(refs, tokenizer=args.tokenizer, n=args.n, source=args.source or Path(args.refs).stem)
    try:
        df.save(args.output)
    except OSError as exc:
        raise _OutputError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    print(f"{args.output}: {df!r}")
    print(f"signature: {df.signature}")
    return EXIT_OK


def cmd_df_info(args) -> int:
    from .df import DocumentFrequencies

    df = DocumentFrequencies.load(args.file)
    meta = df.meta()
    meta["signature"] = df.signature
    if args.format == "json":
        print(_json_dumps(meta))
    else:
        width = max(len(k) for k in meta)
        for key, value in meta.items():
            print(f"{key:<{width}}  {value}")
    return EXIT_OK


# -- compare --------------------------------------------------------------------------------------
def cmd_compare(args) -> int:
    from .stats import approximate_randomization, paired_bootstrap

    metrics = _metrics(args.metrics)
    refs = _read_refs(args.refs, args.refs_format, args.split)
    preds_a = _read_preds(args.preds_a, args.preds_format)
    preds_b = _read_preds(args.preds_b, args.preds_format)
    result_a = _evaluate(refs, preds_a, args, args.refs, args.preds_a, metrics)
    result_b = _evaluate(refs, preds_b, args, args.refs, args.preds_b, metrics)
    _skipped_warnings(result_a)
    tests = {}
    if args.method in ("both", "bootstrap"):
        tests["paired_bootstrap"] = paired_bootstrap(result_a, result_b, n_resamples=args.n_resamples, seed=args.seed, alpha=args.alpha)
    if args.method in ("both", "ar"):
        tests["approximate_randomization"] = approximate_randomization(result_a, result_b, n_trials=args.trials, seed=args.seed)
    for test in tests.values():
        for key, reason in test.skipped.items():
            _warn(f"{key} not tested: {reason}")
    first = next(iter(tests.values()))
    keys = list(first.table.index)
    scale = args.scale
    if args.format == "json":
        out = {
            "refs": str(args.refs),
            "a": str(args.preds_a),
            "b": str(args.preds_b),
            "n_images": first.n_items,
            "scale": scale,
            "signature": result_a.signature,
            "scores_a": {k: v * scale for k, v in result_a.scores.items()},
            "scores_b": {k: v * scale for k, v in result_b.scores.items()},
            "tests": {name: test.to_dict() for name, test in tests.items()},
        }
        _emit(_json_dumps(out), args.output)
        return EXIT_OK
    rows = []
    for key in keys:
        row = {"metric": key, "a": first.table.loc[key, "score_a"] * scale, "b": first.table.loc[key, "score_b"] * scale}
        row["delta"] = row["a"] - row["b"]
        if "paired_bootstrap" in tests:
            t = tests["paired_bootstrap"].table.loc[key]
            row.update(p_bootstrap=t["p_value"], ci_low=t["ci_low"] * scale, ci_high=t["ci_high"] * scale)
        if "approximate_randomization" in tests:
            row["p_ar"] = tests["approximate_randomization"].table.loc[key, "p_value"]
        rows.append(row)
    if args.format == "csv":
        import pandas as pd

        _emit(pd.DataFrame(rows).to_csv(index=False, lineterminator="\n", float_format="%.17g"), args.output)
        return EXIT_OK
    width = max(len(k) for k in keys)
    header = f"{'metric':<{width}}  {'A':>10}  {'B':>10}  {'A-B':>10}"
    if "paired_bootstrap" in tests:
        header += f"  {'p(boot)':>8}  {1 - args.alpha:.0%} CI of A-B"
    if "approximate_randomization" in tests:
        header += f"  {'p(AR)':>8}"
    lines = [f"A: {args.preds_a}", f"B: {args.preds_b}", header]
    for row in rows:
        line = f"{row['metric']:<{width}}  {_fmt(row['a'], 1):>10}  {_fmt(row['b'], 1):>10}  {row['delta']:>+10.6f}"
        if "p_bootstrap" in row:
            line += f"  {row['p_bootstrap']:>8.4f}  [{row['ci_low']:+.6f}, {row['ci_high']:+.6f}]"
        if "p_ar" in row:
            line += f"  {row['p_ar']:>8.4f}"
        lines.append(line)
    lines.append(f"signature: {result_a.signature}")
    lines += [f"signature: {test.signature}" for test in tests.values()]
    _emit("\n".join(lines), args.output)
    return EXIT_OK


# -- leaderboard ----------------------------------------------------------------------------------
def _split_spec(text: str) -> tuple[str | None, str]:
    if "=" in text and not Path(text).exists():
        name, path = text.split("=", 1)
        if not name or not path:
            raise UsageError(f"expected NAME=PATH, got {text!r}")
        return name, path
    return None, text


def _check_report_directory(path) -> None:
    """Before any scoring: the report replaces its directory as a set, so it must be its own."""
    from ._io import is_replaceable_directory
    from .report import report_file_names

    if not is_replaceable_directory(path, report_file_names()):
        resolved, cwd = Path(os.path.realpath(path)), Path.cwd()
        if resolved.exists() and not resolved.is_dir():
            what = "is not a directory"
        elif resolved == cwd or resolved in cwd.parents:
            what = "is the current directory or holds it (the report replaces its directory as a whole)"
        else:
            what = "is a directory holding other files than a report's (the report replaces its directory as a whole)"
        raise _OutputError(f"{path}: {what}; choose a new or empty directory")


def cmd_leaderboard(args) -> int:
    from .report import Leaderboard

    metrics = _metrics(args.metrics)
    refs_specs = [_split_spec(s) for s in args.refs]
    if len(refs_specs) > 1 and any(name is None for name, _ in refs_specs):
        raise UsageError("with several --refs, name each split: --refs SPLIT=PATH")
    splits = {}
    for name, path in refs_specs:
        name = name or args.split_name
        if name in splits:
            raise UsageError(f"split {name!r} given twice")
        splits[name] = path
    submissions: dict[str, dict[str, str]] = {name: {} for name in splits}
    for spec in args.submissions:
        system, path = _split_spec(spec)
        split = None
        if system is not None and ":" in system:
            split, system = system.split(":", 1)
        if split is None:
            if len(splits) > 1:
                raise UsageError(f"{spec!r}: with several splits, name the split: SPLIT:SYSTEM=PATH")
            split = next(iter(splits))
        if split not in splits:
            raise UsageError(f"{spec!r}: unknown split {split!r} (have {', '.join(splits)})")
        system = system or Path(path).name.split(".")[0]
        if system in submissions[split]:
            raise UsageError(f"two submissions named {system!r} in split {split!r}; name them SYSTEM=PATH")
        submissions[split][system] = path
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in ("md", "html", "csv", "json")]
    if unknown:
        raise UsageError(f"unknown report formats {unknown}; expected md, html, csv, json")
    _check_report_directory(args.output)
    board = Leaderboard(
        title=args.title,
        metrics=metrics,
        tokenizer=args.tokenizer,
        df=_document_frequencies(args),
        n=args.n,
        sigma=args.sigma,
        strict=not args.lenient,
        ci=not args.no_ci,
        n_resamples=args.n_resamples,
        seed=args.seed,
        alpha=args.alpha,
        scale=args.scale,
        category_ci=not args.no_category_ci,
        allow_df_mismatch=args.allow_df_mismatch,
    )
    for split, path in splits.items():
        board.add_split(split, _read_refs(path, args.refs_format, args.karpathy_split))
        for system, sub_path in submissions[split].items():
            preds = _read_preds(sub_path, args.preds_format)
            try:
                board.add(split, system, preds)
            except MissingIdError as exc:
                raise MissingIdError(f"{sub_path} vs {path}: {_lenient_hint(exc)}") from None
    report = board.report()
    try:
        written = report.write(args.output, formats=formats)
    except OSError as exc:
        raise _OutputError(f"{args.output}: cannot write the report ({exc.strerror or exc})") from None
    for split in report.splits:
        table = report.table(split).reset_index()
        print(f"{split}:")
        for _, row in table.iterrows():
            print(f"  {row['rank']:>3}  {row['system']:<30}  {report.rank_by} {row[report.rank_by]:.2f}")
    for path in written.values():
        print(f"wrote {path}")
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------
# Option values are checked by argparse as they are parsed, so a bad one is a usage error (exit 2)
# naming the option, before any file is read (never a late ValueError or a NaN in the output).
def _number(text: str, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _sigma(text: str) -> float:
    """CIDEr-D's length-penalty width: the penalty divides by 2 sigma^2, which must be a finite non-zero number."""
    value = _positive_float(text)
    try:
        return check_sigma(value)
    except OptionError as exc:  # the API's one check, in argparse's words
        raise argparse.ArgumentTypeError(str(exc).removeprefix("sigma ")) from None


def _probability(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _common_scoring(p, with_formats: bool = True) -> None:
    p.add_argument("--metrics", nargs="+", metavar="M", help=f"metrics ({' '.join(metric_names())}; default: coco's set)")
    p.add_argument("--tokenizer", choices=("ptb", "corenlp", "none"), default="ptb", help="default: ptb (pycocoevalcap's tokens)")
    p.add_argument("--df", metavar="FILE", help="precomputed document frequencies for CIDEr(-D) (capeval df build)")
    p.add_argument("--n", type=_positive_int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--sigma", type=_sigma, default=SIGMA, help=argparse.SUPPRESS)
    p.add_argument(
        "--allow-df-mismatch",
        action="store_true",
        help="use a --df file built with another tokenizer or n (refused by default: the numbers change)",
    )
    p.add_argument("--lenient", action="store_true", help="score the ids both sides share instead of failing on missing ids")
    if with_formats:
        p.add_argument("--refs-format", choices=FORMAT_CHOICES, default="auto")
        p.add_argument("--preds-format", choices=FORMAT_CHOICES, default="auto")
        p.add_argument("--split", metavar="NAME", help="Karpathy files: the split to use (test, val, ...)")
    p.add_argument("--scale", type=_positive_float, default=1.0, help="multiply printed scores (100 for NICE's scale)")


def _resampling(p, trials: bool = False) -> None:
    p.add_argument("--n-resamples", type=_positive_int, default=1000, metavar="B", help="bootstrap resamples (default 1000)")
    if trials:
        p.add_argument("--trials", type=_positive_int, default=10000, help="approximate randomization trials (default 10000)")
    p.add_argument("--seed", type=_seed, default=12345, help="random seed (default 12345)")
    p.add_argument("--alpha", type=_probability, default=0.05, help="1 - confidence level (default 0.05)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="capeval", description="Image-captioning metrics with pycocoevalcap 1.2's numbers.")
    parser.add_argument("--version", action="version", version=f"capeval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("score", help="score predictions against references", description="Score PREDS against REFS; prints the scores and the signature.")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE",
        help="references (COCO annotations, NICE CSV, Karpathy json, JSON, JSONL) then predictions "
        "(COCO results, NICE submission CSV, JSON, JSONL); or REF.txt [REF.txt ...] PREDS.txt, one caption per line",
    )
    _common_scoring(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--per-item", metavar="FILE", help="write per-image scores (.csv, .json or .jsonl)")
    p.add_argument("--ci", action="store_true", help="bootstrap confidence intervals over images")
    _resampling(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write the output here instead of stdout")
    from .engines._cli import add_arguments as add_engine_arguments

    add_engine_arguments(p)  # --engine, --chunk-size, --workers, --scheduler
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("df", help="document frequencies for CIDEr: build, info")
    df_sub = p.add_subparsers(dest="df_command", metavar="ACTION", parser_class=_Parser)
    q = df_sub.add_parser("build", help="build document frequencies from a reference corpus")
    q.add_argument("refs", metavar="REFS")
    q.add_argument("-o", "--output", metavar="FILE", required=True, help="the .npz to write")
    q.add_argument("--tokenizer", choices=("ptb", "corenlp", "none"), default="ptb")
    q.add_argument("--n", type=_positive_int, default=4)
    q.add_argument("--refs-format", choices=FORMAT_CHOICES, default="auto")
    q.add_argument("--split", metavar="NAME", help="Karpathy files: the split to use (train, ...)")
    q.add_argument("--source", metavar="NAME", help="name recorded in the signature (default: the file's stem)")
    q.set_defaults(func=cmd_df_build)
    q = df_sub.add_parser("info", help="describe a document-frequency file")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--format", choices=("table", "json"), default="table")
    q.set_defaults(func=cmd_df_info)
    p.set_defaults(func=lambda args, parser=p: _missing_action(parser))

    p = sub.add_parser("compare", help="paired significance test of two systems", description="Compare two systems on the same references, per metric.")
    p.add_argument("refs", metavar="REFS")
    p.add_argument("preds_a", metavar="PREDS_A")
    p.add_argument("preds_b", metavar="PREDS_B")
    _common_scoring(p)
    p.add_argument("--method", choices=("both", "bootstrap", "ar"), default="both", help="paired bootstrap, approximate randomization, or both (default)")
    _resampling(p, trials=True)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("leaderboard", help="write a NICE-style leaderboard report", description="Rank submissions by CIDEr-D; write leaderboard.md/.html/.csv/.json.")
    p.add_argument("--refs", action="append", required=True, metavar="[SPLIT=]REFS", help="references; repeat as SPLIT=PATH for several splits")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="PATH, SYSTEM=PATH or SPLIT:SYSTEM=PATH")
    p.add_argument("-o", "--output", metavar="DIR", required=True)
    p.add_argument("--title", default="Leaderboard")
    p.add_argument("--split-name", default="val", help="name of the split when --refs has no name (default val)")
    _common_scoring(p, with_formats=False)
    p.set_defaults(scale=100.0)
    p.add_argument("--refs-format", choices=FORMAT_CHOICES, default="auto")
    p.add_argument("--preds-format", choices=FORMAT_CHOICES, default="auto")
    p.add_argument("--karpathy-split", metavar="NAME", help="Karpathy references: the split to use")
    p.add_argument("--formats", default="md,html,csv,json", help="comma-separated subset of md,html,csv,json")
    p.add_argument("--no-ci", action="store_true", help="no bootstrap confidence intervals")
    p.add_argument("--no-category-ci", action="store_true", help="no intervals in the per-category breakdown")
    _resampling(p)
    p.set_defaults(func=cmd_leaderboard)
    return parser


def _missing_action(parser) -> int:
    raise UsageError(f"{parser.prog}: choose an action: build, info")


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2), already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print("capeval: error: choose a command: score, df, compare, leaderboard", file=sys.stderr)
        return EXIT_USAGE
    debug = os.environ.get("CAPEVAL_DEBUG") == "1"
    _warned.clear()
    with warnings.catch_warnings():
        warnings.showwarning = _warn_line
        try:
            code = args.func(args)
            sys.stdout.flush()
            return code
        except UsageError as exc:
            print(f"capeval: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("capeval: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (MeteorError, TokenizerError, SpiceUnavailableError) as exc:
            _print_error(exc, debug)
            return EXIT_DEPENDENCY
        except (InputError, DocumentFrequencyError) as exc:
            _print_error(exc, debug)
            return EXIT_INPUT
        except _OutputError as exc:
            _print_error(exc, debug)
            return EXIT_OUTPUT
        except CapevalError as exc:
            _print_error(exc, debug)
            return EXIT_INPUT
        except BrokenPipeError:  # `capeval score ... | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, exit 1
            _print_error(exc, debug, internal=True)
            return EXIT_INTERNAL


def _print_error(exc, debug: bool, internal: bool = False) -> None:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if internal:
        print(f"capeval: internal error: {type(exc).__name__}: {_one_line(exc)} (CAPEVAL_DEBUG=1 prints the traceback)", file=sys.stderr)
    else:
        print(f"capeval: error: {_one_line(exc)}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
