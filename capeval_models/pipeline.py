"""The main job, orchestrated: train the decoders, caption every split, score with capeval, write the report.

    from capeval_models.pipeline import RunConfig, run
    summary = run(RunConfig(out="runs/default"))          # what `capeval-models run` does

Stages (each a function the CLI subcommands reuse; each skips work whose outputs already exist, so an
interrupted run resumes where it stopped, training included, from its checkpoints):

    load_data -> train_model (every registered model, then the extra seeds of the DropHead study)
              -> predict (baseline, greedy, beam) -> figures (curves, attention) -> score -> report -> run.json

The models are registry entries (capeval_models.models); the DropHead study is capeval_models.study, the
summary and findings capeval_models.findings, the HTML/Markdown rendering capeval_models.render. The output
folder (layout in docs/walkthrough.md):

    config.json                     the configuration the folder was started with (a resume must agree)
    references/<split>.json         what every prediction is scored against ({id: [captions]})
    models/<model>[-seed<k>]/       checkpoints, model file, history.json (one schema for every model)
    predictions/<system>/<split>.json   COCO results; predictions/<system>/nice.csv NICE submission
    seeds/<model>-seed<k>/<split>.json  greedy predictions of the extra seeds (DropHead study)
    figures/loss.png, figures/val_cider.png, attention/<split>-<id>.png
    report/report.html              the whole report in one file (images embedded): mail it
    report/leaderboard.{md,html,csv,json}  capeval's leaderboard: every metric, every split, 95% bootstrap CIs
    report/summary.{md,csv,json}    models x splits (CIDEr-D, ranked by nice), findings, DropHead, quality
    run.json                        configuration, seeds, versions, timings, capeval signatures;
                                    "status": "complete" only once everything above is written

Every file is written atomically (temp file + rename), and report/ as one set (a directory swapped in
whole); the report is removed before scoring starts and run.json says "running" until the end, so a
crash never leaves a report that looks complete or mixes two runs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .config import MODELS, SPLITS, ConfigMismatch, RunConfig, check_config, load_config
from .data_spec import load_data
from .files import read_json, write_json, write_report_files
from .findings import BASELINE, findings_text, summarize, summary_table
from .models import get_model

REPORT_FILES = ("report.html", "leaderboard.md", "leaderboard.html", "leaderboard.csv",
                "leaderboard_categories.csv", "leaderboard.json", "summary.md", "summary.csv", "summary.json")


# ----------------------------------------------------------------------------------------------------------
# small helpers


def _log(config: RunConfig, msg: str) -> None:
    if config.progress:
        print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _threads(n: int):
    """Limit torch (if imported) and numpy's BLAS to n threads; on a busy 2-core machine one thread per
    process is several times faster than two (oversubscription)."""
    from .training import blas_threads

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(int(n))
    try:
        with blas_threads(n):
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)


class Timer:
    """Stage timings, in the order the stages ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------------------
# data


def scored_splits(config: RunConfig, data: dict) -> list[str]:
    """The splits to caption and score: asked for, present and with references; nice first (the ranking)."""
    order = [s for s in ("nice", "val", "train") if s in config.splits]
    order += [s for s in config.splits if s not in order]
    return [s for s in order if s in data and data[s].references]


def write_references(config: RunConfig, data: dict) -> None:
    for name in scored_splits(config, data):
        path = config.out_dir / "references" / f"{name}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            data[name].write_references(path, format="json")


# ----------------------------------------------------------------------------------------------------------
# models


def run_label(name: str, seed: int) -> str:
    """What progress bars and messages call one training run: the model variant and its seed."""
    return f"{name} seed {seed}"


def model_dir(config: RunConfig, name: str, seed: int | None = None) -> Path:
    seed = config.seed if seed is None else seed
    suffix = "" if seed == config.seed else f"-seed{seed}"
    return config.out_dir / "models" / f"{name}{suffix}"


def is_trained(config: RunConfig, name: str, seed: int | None = None) -> bool:
    return (model_dir(config, name, seed) / "history.json").exists()


def train_model(config: RunConfig, data: dict, name: str, seed: int | None = None) -> dict:
    """Train one model (resuming from its checkpoint), save it and its history; returns the history."""
    seed = config.seed if seed is None else seed
    directory = model_dir(config, name, seed)
    if is_trained(config, name, seed):
        return read_json(directory / "history.json")
    directory.mkdir(parents=True, exist_ok=True)
    with _threads(config.threads):
        history = get_model(name).train(config, data, seed, directory, run_label(name, seed))
    write_json(directory / "history.json", history)
    return history


def load_trained(config: RunConfig, name: str, seed: int | None = None):
    if not is_trained(config, name, seed):
        raise FileNotFoundError(f"{name} (seed {seed if seed is not None else config.seed}) is not trained "
                                f"in {config.out_dir}: run `capeval-models train --model {name}` first")
    return get_model(name).load(model_dir(config, name, seed))


# ----------------------------------------------------------------------------------------------------------
# captioning


def systems(config: RunConfig) -> list[tuple[str, str, int]]:
    """(system name, model, beam size) of every leaderboard row, the baseline first."""
    out = [(BASELINE, BASELINE, 1)]
    for m in config.models:
        out.append((m, m, 1))
        if get_model(m).beam_search and config.beam_size > 1:
            out.append((f"{m}-beam{config.beam_size}", m, config.beam_size))
    return out


def prediction_path(config: RunConfig, system: str, split: str) -> Path:
    return config.out_dir / "predictions" / system / f"{split}.json"


def _nonempty(preds: dict) -> dict:
    """capeval scores empty captions fine, but a NICE submission needs text: an empty caption (a model
    that emitted <END> first) becomes "." there and everywhere, so the files agree."""
    return {k: (v if v.strip() else ".") for k, v in preds.items()}


def save_predictions(config: RunConfig, system: str, split: str, preds: dict) -> Path:
    from capeval.formats import write_coco_results

    from .data import write_nice_submission

    preds = _nonempty(preds)
    path = prediction_path(config, system, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    if split == "nice":
        write_nice_submission(path.with_suffix(".csv"), preds)
    write_coco_results(path, preds)  # the COCO file last: its presence marks the pair complete
    return path


def predict(config: RunConfig, data: dict, system_names=None, split_names=None) -> list[Path]:
    """Caption every (system, split) whose prediction file is missing; returns the files written."""
    wanted = [s for s in systems(config) if system_names is None or s[0] in system_names]
    splits = [s for s in scored_splits(config, data) if split_names is None or s in split_names]
    todo = [(s, sp) for s in wanted for sp in splits if not prediction_path(config, s[0], sp).exists()]
    written = []
    if not todo:
        return written
    from tqdm.auto import tqdm

    models = {}
    with _threads(config.threads), tqdm(total=len(todo), desc="captioning", disable=not config.progress,
                                         dynamic_ncols=True) as bar:
        for (system, model_name, beam), split in todo:
            bar.set_postfix_str(f"{system} / {split}")
            spec = get_model(model_name)
            if model_name not in models:
                if not spec.trained_by_run and not is_trained(config, model_name):
                    train_model(config, data, model_name)  # the baseline: a count over the references
                models[model_name] = load_trained(config, model_name)
            preds = spec.caption(models[model_name], data[split], beam_size=beam)
            written.append(save_predictions(config, system, split, preds))
            bar.update(1)
    return written


def seed_runs(config: RunConfig) -> list[tuple[str, int]]:
    """(model, seed) of the DropHead study: both transformers, seeds seed .. seed+drophead_seeds-1."""
    from .study import PAIR

    names = [m for m in PAIR if m in config.models]
    if len(names) < 2:
        return []
    return [(m, config.seed + k) for k in range(config.drophead_seeds) for m in names]


def seed_prediction_path(config: RunConfig, name: str, seed: int, split: str) -> Path:
    if seed == config.seed:
        return prediction_path(config, name, split)
    return config.out_dir / "seeds" / f"{name}-seed{seed}" / f"{split}.json"


def predict_seeds(config: RunConfig, data: dict) -> None:
    from capeval.formats import write_coco_results

    with _threads(config.threads):
        for name, seed in seed_runs(config):
            if seed == config.seed:
                continue
            model = None
            for split in ("val", "nice"):
                path = seed_prediction_path(config, name, seed, split)
                if split not in data or path.exists():
                    continue
                model = model or load_trained(config, name, seed)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_coco_results(path, _nonempty(get_model(name).caption(model, data[split])))


# ----------------------------------------------------------------------------------------------------------
# figures


def attention(config: RunConfig, data: dict, model_name: str = "transformer", n: int | None = None,
              split_names=("val", "nice")) -> list[Path]:
    """Per-word cross-attention figures of the first n images of each split (greedy captions)."""
    from .attention_maps import caption_attention_maps

    n = config.attention_images if n is None else n
    if model_name not in config.models or n <= 0:
        return []
    model = load_trained(config, model_name)
    out = []
    with _threads(config.threads):
        for split_name in split_names:
            if split_name not in data:
                continue
            split = data[split_name]
            for i in range(min(n, split.num_images)):
                path = config.out_dir / "attention" / f"{split_name}-{split.image_ids[i]}.png"
                if path.exists():
                    out.append(path)
                    continue
                x = split.regions[i] if model.config.memory == "regions" else split.features[i]
                image = split.images[i] if split.images is not None else None
                res = caption_attention_maps(model, x, None, vocab=split.vocab)
                if res["words"]:
                    cat = (split.categories or {}).get(split.image_ids[i])
                    title = (f'{split_name} {split.image_ids[i]}' + (f" ({cat})" if cat else "")
                             + f': "{res["caption"]}" ({model_name}, last layer, mean over heads)')
                    caption_attention_maps(model, x, path, vocab=split.vocab, image=image,
                                           grid_shape=split.grid_shape, title=title)
                    out.append(path)
    return out


def _histories(config: RunConfig) -> dict:
    return {m: read_json(model_dir(config, m) / "history.json") for m in config.models if is_trained(config, m)}


def training_curves(config: RunConfig, colors: dict | None = None) -> dict:
    from .plots import plot_training_curves

    histories = _histories(config)
    if not histories:
        return {}
    baseline = None
    refs = config.out_dir / "references" / "val.json"
    base_preds = prediction_path(config, BASELINE, "val")
    if refs.exists() and base_preds.exists():
        import capeval
        from capeval.formats import read_predictions, read_references

        baseline = capeval.evaluate(read_references(refs), read_predictions(base_preds),
                                    metrics=["cider_d"]).scores["CIDEr-D"]
    if colors is None:
        from capeval.report import system_colors

        colors = system_colors(s for s, _, _ in systems(config))
    return plot_training_curves(histories, config.out_dir / "figures", baseline=baseline, colors=colors)


# ----------------------------------------------------------------------------------------------------------
# scoring and the report


def _meteor_options(config: RunConfig):
    """``(meteor_options, pool, note)``: METEOR in Python where pycocoevalcap's data files are installed,
    else one jar pool for every split and system (one JVM start), or None with why it is skipped."""
    if not config.meteor:
        return None, None, "METEOR not computed (--no-meteor)"
    from capeval.meteor import Meteor, meteor_unavailable_reason, resolve_backend

    reason = meteor_unavailable_reason()
    if reason:
        return None, None, f"METEOR not computed: {reason}"
    if resolve_backend("auto") == "python":
        return {"backend": "python", "workers": config.meteor_workers, "progress": False}, None, None
    pool = Meteor(workers=config.meteor_workers, progress=False)
    return {"scorer": pool, "progress": False}, pool, None


def report_dir(config: RunConfig):
    """``RUN/report/``: the report's files, replaced as one set (readers never see a mix of two runs)."""
    return config.out_dir / "report"


def _remove_report(config: RunConfig) -> None:
    import shutil

    shutil.rmtree(report_dir(config), ignore_errors=True)


def _seed_results(config: RunConfig, refs: dict) -> dict:
    """{split: {model: {seed: EvaluationResult}}} of the DropHead study's greedy prediction files."""
    import capeval
    from capeval.formats import read_predictions

    out = {}
    for split in ("val", "nice"):
        for name, seed in seed_runs(config) if split in refs else []:
            path = seed_prediction_path(config, name, seed, split)
            if path.exists():
                out.setdefault(split, {}).setdefault(name, {})[str(seed)] = capeval.evaluate(
                    refs[split], read_predictions(path), metrics=["cider_d"])
    return out


def _caption_quality(config: RunConfig, refs: dict, preds: dict) -> dict:
    """Repeated-n-gram and wrong-shape shares per split and system (the shapes dataset only for shapes)."""
    from .analysis import caption_quality, reference_quality

    shapes = config.data is None
    return {"systems": {split: {system: caption_quality(p, refs[split], shapes) for system, p in by_system.items()}
                        for split, by_system in preds.items()},
            "references": {split: reference_quality(refs[split]) for split in preds}}


def score(config: RunConfig, data: dict | None = None) -> dict:
    """Score every saved prediction file with capeval, write the report (report/: report.html,
    leaderboard.*, summary.*, swapped in as one set); returns the summary. References come from out/references/<split>.json, predictions from
    the saved files."""
    from tqdm.auto import tqdm

    from capeval.evaluate import MetricUnavailableWarning
    from capeval.formats import read_predictions, read_references
    from capeval.report import Leaderboard

    from . import render
    from .study import seed_study

    out = config.out_dir  # an earlier report stays until the new set replaces it whole
    splits = [s for s in ("nice", "val", "train") if (out / "references" / f"{s}.json").exists()
              and s in config.splits]
    refs = {s: read_references(out / "references" / f"{s}.json") for s in splits}
    categories = {}
    if data is not None:
        categories = {s: data[s].categories for s in splits if s in data and data[s].categories}
    meteor_options, scorer, meteor_note = _meteor_options(config)
    metrics = None if meteor_options is not None else ["bleu", "rouge_l", "cider_d"]
    board = Leaderboard(title="capeval-models: caption decoders on the embedded shapes dataset"
                        if config.data is None else f"capeval-models: caption decoders on {config.data}",
                        metrics=metrics, meteor_options=meteor_options,
                        n_resamples=config.n_resamples, category_ci=False)
    rows = [(system, split) for split in splits for system, _, _ in systems(config)
            if prediction_path(config, system, split).exists()]
    preds = {}
    try:
        for split in splits:
            board.add_split(split, refs[split], categories.get(split))
        with tqdm(total=len(rows), desc="scoring", disable=not config.progress, dynamic_ncols=True) as bar:
            for system, split in rows:
                bar.set_postfix_str(f"{system} / {split}")
                preds.setdefault(split, {})[system] = read_predictions(prediction_path(config, system, split))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MetricUnavailableWarning)
                    board.add(split, system, preds[split][system])
                bar.update(1)
        report = board.report()
        if meteor_note:
            report.notes.insert(0, meteor_note)
    finally:
        if scorer is not None:
            scorer.close()
    seeds = seed_study(_seed_results(config, refs), config.n_resamples) if seed_runs(config) else None
    summary = summarize(report, seeds, _caption_quality(config, refs, preds), config.n_resamples)
    files = render.report_files(report, summary, render.ReportInputs(
        config=config, data=data, predictions=preds, histories=_histories(config),
        figures=config.out_dir / "figures", attention=sorted((out / "attention").glob("*.png"))))
    write_report_files(report_dir(config), files, names=REPORT_FILES)
    return summary


# ----------------------------------------------------------------------------------------------------------
# run.json


def versions() -> dict:
    import capeval

    v = {"python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__,
         "capeval": capeval.__version__}
    for mod in ("torch", "scipy", "pandas", "matplotlib"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    java = shutil.which("java")
    v["java"] = java
    try:
        from capeval.meteor import meteor_unavailable_reason

        v["meteor_unavailable"] = meteor_unavailable_reason()
    except ImportError:
        v["meteor_unavailable"] = "capeval.meteor missing"
    v["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return v


def write_run_json(config: RunConfig, status: str, timer: Timer, skipped: list[str], started: float,
                   summary: dict | None = None, data: dict | None = None) -> Path:
    from capeval.stats import DEFAULT_SEED

    record = {
        "status": status,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_seconds": time.time() - started,
        "config": config.to_dict(),
        "seeds": {"data": config.data_seed, "models": config.seed,
                  "drophead_comparison": sorted({s for _, s in seed_runs(config)}), "bootstrap": DEFAULT_SEED},
        "versions": versions(),
        "timings_seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
        "skipped_stages": skipped,
    }
    if data is not None:
        record["data"] = {k: {"images": v.num_images, "captions": v.num_captions, "source": v.source}
                          for k, v in data.items()}
        record["data"]["vocabulary"] = len(next(iter(data.values())).vocab)
    lb = report_dir(config) / "leaderboard.json"
    if status == "complete" and lb.exists():
        board = read_json(lb)
        record["capeval_signature"] = board["signature"]
        record["capeval_signatures"] = {f"{split}/{s['system']}": s["signatures"]
                                        for split, info in board["splits"].items() for s in info["systems"]}
    if summary is not None:
        record["findings"] = summary["findings"]
    return write_json(config.out_dir / "run.json", record)


# ----------------------------------------------------------------------------------------------------------
# the whole job


def _train_all(config: RunConfig, data: dict, runs, timer: Timer, skipped: list, started: float, why: str = ""):
    for name, seed in runs:
        stage = f"train/{name}" + ("" if seed == config.seed else f"-seed{seed}")
        if is_trained(config, name, seed):
            skipped.append(stage)
            continue
        _log(config, f"training {run_label(name, seed)}{why}")
        with timer(stage):
            train_model(config, data, name, seed)
        write_run_json(config, "running", timer, skipped, started, data=data)


def run(config: RunConfig, fresh: bool = False) -> dict:
    """Every stage, resuming whatever an earlier run of the same folder left; returns the summary."""
    out = config.out_dir
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    check_config(config)
    started, timer, skipped = time.time(), Timer(), []
    write_run_json(config, "running", timer, skipped, started)
    _remove_report(config)  # training makes any earlier report stale
    with timer("data"):
        data = load_data(config)
        write_references(config, data)
    _train_all(config, data, [(m, config.seed) for m in config.models], timer, skipped, started)
    with timer("predict"):
        predict(config, data)
    extra = [(m, s) for m, s in seed_runs(config) if s != config.seed]
    _train_all(config, data, extra, timer, skipped, started, " (DropHead seed study)")
    with timer("predict/seeds"):
        predict_seeds(config, data)
    with timer("figures"):
        training_curves(config)
        attention(config, data)
    with timer("score"):
        summary = score(config, data)
    write_run_json(config, "complete", timer, skipped, started, summary, data)
    return summary


def print_summary(summary: dict, file=None) -> None:
    file = file or sys.stdout
    print(f"\nRanked by {summary['rank_by']} (x100, 95% CI):\n", file=file)
    print(summary_table(summary), file=file)
    print("", file=file)
    for line in findings_text(summary):
        print(f"- {line}", file=file)


__all__ = [
    "BASELINE", "MODELS", "SPLITS", "ConfigMismatch", "RunConfig", "attention", "check_config", "load_config",
    "load_data", "load_trained", "predict", "print_summary", "run", "run_label", "score", "summary_table",
    "systems", "train_model", "training_curves",
]
