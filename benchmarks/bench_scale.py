"""Scale benchmark: images/s and peak RSS of every process for the memory, stream and Dask engines.

Data: :mod:`benchmarks.captiongen` (seeded bigram captions fitted on the shared COCO and NICE
captions, distinct images), JSONL shards. Metrics: BLEU, ROUGE-L, CIDEr-D (corpus document
frequencies, so the stream and Dask engines make both passes). Every run is a fresh subprocess;
each writes one JSON line to the results file as soon as it ends, so a long campaign can be read
while it runs::

    python -m benchmarks.bench_scale campaign --root /tmp/scale-bench --sizes 40000 400000 4000000 \\
        --results docs/figures/scale_results.jsonl
    python -m benchmarks.bench_scale report --results docs/figures/scale_results.jsonl [--since 2026-12-02T09:00]

``report`` draws ``docs/figures/scale_time.png`` and ``scale_memory.png`` (log-log) and prints the
markdown table of docs/benchmarks.md. Engines: ``memory`` (read whole files, ``capeval.evaluate``),
``stream`` (``--chunk-size``), ``dask1`` / ``dask2`` (a local cluster of 1 or 2 worker processes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

METRICS = ["bleu", "rouge_l", "cider_d"]
ENGINES = ("memory", "stream", "dask1", "dask2")
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _cpu_seconds() -> float:
    """CPU time of this process: unlike wall time, not stretched by other processes' load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _paths(data: Path) -> tuple[list[str], list[str]]:
    refs = sorted(str(p) for p in data.glob("refs-*.jsonl"))
    preds = sorted(str(p) for p in data.glob("preds-*.jsonl"))
    if not refs or len(refs) != len(preds):
        raise SystemExit(f"{data}: expected refs-*.jsonl and preds-*.jsonl shards (benchmarks.captiongen)")
    return refs, preds


def _commit() -> str:
    """The checkout's commit (with '+' when it has uncommitted changes), so every result names its code."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "capeval", "benchmarks"], cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def run_one(engine: str, data: Path, chunk_size: int, out_dir: Path) -> dict:
    """One measured run in this process (call it in a fresh subprocess)."""
    commit = _commit()  # the code this process imports (a later commit may land while it runs)
    refs, preds = _paths(data)
    per_item = out_dir / f"per-item-{engine}-{os.getpid()}.csv"
    started = time.perf_counter()
    rss: dict[str, object] = {}
    cpu: dict[str, object] = {}
    if engine == "memory":
        import capeval
        from capeval.formats import read_predictions, read_references

        ref_map, pred_map = {}, {}
        for path in refs:
            ref_map.update(read_references(path).captions)
        for path in preds:
            pred_map.update(read_predictions(path).captions)
        result = capeval.evaluate(ref_map, pred_map, METRICS)
        result.per_item.reset_index().to_csv(per_item, index=False, lineterminator="\n", float_format="%.17g")
        scores, n_items, seconds = result.scores, len(result.per_item), time.perf_counter() - started
    elif engine == "stream":
        from capeval.engines import stream_evaluate

        result = stream_evaluate(refs, preds, METRICS, chunk_size=chunk_size, per_item=per_item)
        scores, n_items, seconds = result.scores, result.n_items, time.perf_counter() - started
    else:
        from distributed import Client, LocalCluster

        from capeval.engines import dask_evaluate

        workers = int(engine[len("dask") :])
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
            started = time.perf_counter()  # the cluster's start-up (seconds) is not the job's
            result = dask_evaluate(refs, preds, METRICS, partition_size=chunk_size, client=client, per_item=per_item)
            seconds = time.perf_counter() - started
            peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # noqa: E731
            rss["workers"] = sorted(client.run(peak).values())
            cpu["workers"] = sorted(client.run(_cpu_seconds).values())
        scores, n_items = result.scores, result.n_items
    rss["driver"] = _peak_rss_mb()
    cpu["driver"] = round(_cpu_seconds(), 2)
    per_item.unlink(missing_ok=True)
    return {
        "engine": engine,
        "n_images": n_items,
        "seconds": round(seconds, 3),
        "images_per_s": round(n_items / seconds, 1),
        "peak_rss_mb": rss,
        # a local cluster's scheduler and nannies live in the driver process: driver + workers is all
        "total_peak_rss_mb": round(rss["driver"] + sum(rss.get("workers", [])), 1),
        "cpu_seconds": cpu,  # includes imports and, for dask, the workers' start-up
        "chunk_size": chunk_size,
        "scores": scores,
        "load_average": os.getloadavg(),
        "commit": commit,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def campaign(root: Path, sizes: list[int], engines: list[str], results: Path, chunk_size: int, memory_limit: int, timeout: float) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        data = root / f"n{size}"
        for engine in engines:
            if engine == "memory" and size > memory_limit:
                continue  # about 10 KB per image: 4M images need ~40 GB, beyond the 24 GB machine
            cmd = [sys.executable, "-m", "benchmarks.bench_scale", "one", "--engine", engine, "--data", str(data), "--chunk-size", str(chunk_size)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
                line = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else None
                record = json.loads(line) if line else {"engine": engine, "n_images": size, "error": done.stderr[-2000:]}
            except subprocess.TimeoutExpired:
                record = {"engine": engine, "n_images": size, "error": f"timed out after {timeout:.0f} s"}
            record.setdefault("when", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            with open(results, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


def report(results: Path, since: str = "", until: str = "", figures: bool = True) -> str:
    """The markdown table of the runs that ended in [since, until); with ``figures``, also the figures."""
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [r for r in records if since <= r.get("when", "") and (not until or r.get("when", "") < until)]  # ISO times compare as strings
    ok = [r for r in records if "error" not in r]
    lines = [
        "| engine | images | wall s | images/s (wall) | CPU s, all processes | images per CPU s | peak RSS driver (MB) | peak RSS workers (MB) | total peak RSS (MB) | load avg (1 min) | code |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(ok, key=lambda r: (r["n_images"], ENGINES.index(r["engine"]), r["when"])):
        workers = ", ".join(f"{w:.0f}" for w in r["peak_rss_mb"].get("workers", [])) or "-"
        cpu = r.get("cpu_seconds")
        cpu_total = cpu["driver"] + sum(cpu.get("workers", [])) if cpu else None
        lines.append(
            f"| {r['engine']} | {r['n_images']:,} | {r['seconds']:.1f} | {r['images_per_s']:,.0f} | "
            + (f"{cpu_total:.0f} | {r['n_images'] / cpu_total:,.0f} | " if cpu_total else "- | - | ")
            + f"{r['peak_rss_mb']['driver']:.0f} | {workers} | {r['total_peak_rss_mb']:.0f} | {r['load_average'][0]:.1f} | {r.get('commit', 'before 5a9e43f')} |"
        )
    for r in records:
        if "error" in r:
            why = r["error"].strip().splitlines()[-1][:80] if r["error"].strip() else "?"
            lines.append(f"| {r['engine']} | {r['n_images']:,} | did not finish: {why} | | | | | | | | |")
    if figures:
        _figures(ok)
    return "\n".join(lines)


def _figures(ok: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    latest = {}  # the figures show the last run of each engine and size (the code of the table's last rows)
    for r in sorted(ok, key=lambda r: r["when"]):
        latest[r["engine"], r["n_images"]] = r
    for r in latest.values():
        cpu = r.get("cpu_seconds")
        r["cpu_total"] = cpu["driver"] + sum(cpu.get("workers", [])) if cpu else None
    for what, key, label in (("time", "cpu_total", "CPU seconds, all processes"), ("memory", "total_peak_rss_mb", "peak RSS, all processes (MB)")):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for engine in ENGINES:
            points = sorted((r["n_images"], r[key]) for (e, _), r in latest.items() if e == engine and r[key] is not None)
            if points:
                ax.plot(*zip(*points), marker="o", label=engine)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("images")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(FIGURES / f"scale_{what}.png", dpi=110)
        plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("one", help="one measured run in this process; prints a JSON line")
    one.add_argument("--engine", choices=ENGINES, required=True)
    one.add_argument("--data", type=Path, required=True)
    one.add_argument("--chunk-size", type=int, default=20_000)
    camp = sub.add_parser("campaign", help="every engine at every size, one subprocess each")
    camp.add_argument("--root", type=Path, required=True, help="holds n<size>/ directories from benchmarks.captiongen")
    camp.add_argument("--sizes", type=int, nargs="+", default=[40_000, 400_000, 4_000_000])
    camp.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    camp.add_argument("--results", type=Path, default=FIGURES / "scale_results.jsonl")
    camp.add_argument("--chunk-size", type=int, default=20_000)
    camp.add_argument("--memory-limit", type=int, default=1_000_000, help="largest size the memory engine is run at")
    camp.add_argument("--timeout", type=float, default=4 * 3600)
    rep = sub.add_parser("report", help="figures and the markdown table")
    rep.add_argument("--results", type=Path, default=FIGURES / "scale_results.jsonl")
    rep.add_argument("--since", default="", help="only runs that ended at or after this UTC time (ISO, e.g. 2026-12-02T09:00)")
    rep.add_argument("--until", default="", help="only runs that ended before this UTC time")
    rep.add_argument("--no-figures", dest="figures", action="store_false", help="the table only (the figures are left as they are)")
    args = parser.parse_args(argv)
    if args.command == "one":
        print(json.dumps(run_one(args.engine, args.data, args.chunk_size, Path(os.environ.get("TMPDIR", "/tmp")))))
    elif args.command == "campaign":
        campaign(args.root, args.sizes, args.engines, args.results, args.chunk_size, args.memory_limit, args.timeout)
    else:
        print(report(args.results, args.since, args.until, args.figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
