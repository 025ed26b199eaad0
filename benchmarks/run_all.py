"""Run every ``benchmarks/bench_*.py`` one after the other (what ``tox -e bench`` calls).

    python benchmarks/run_all.py            # each benchmark with its defaults (tens of minutes)
    python benchmarks/run_all.py --quick    # small repeat counts / small sets: a smoke run in minutes
    python benchmarks/run_all.py --only core reward

Each benchmark runs in its own process (a fresh interpreter: first-call costs stay visible) and its
output is passed through. A benchmark is found by its file name, so a new ``bench_x.py`` runs
without being listed here; ``QUICK`` only holds the small settings of those that have options.
Exit status: 0 if every benchmark exited 0, else 1 (the failed ones are named at the end).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --quick: arguments that make each benchmark a smoke run (benchmarks not listed run as they are)
QUICK = {
    "bootstrap": ["--resamples", "200", "--trials", "1000", "--repeat", "1"],
    "core": ["--sets", "coco,nice", "--repeat", "1"],
    "meteor": ["--set", "coco"],
    "reward": ["--repeat", "20"],
    "rnn": ["--repeat", "2"],
    "tokenize": ["--repeat", "1", "--set", "coco_loo"],
    "transformer": ["--repeat", "2", "--decode-repeat", "1", "--sizes", "default", "--memories", "global"],
}


def benchmarks() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def main(argv=None) -> int:
    found = benchmarks()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small settings: a smoke run")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(found), help="run only these benchmarks")
    args = parser.parse_args(argv)
    failed = []
    for name, path in found.items():
        if args.only and name not in args.only:
            continue
        command = [sys.executable, str(path), *(QUICK.get(name, []) if args.quick else [])]
        print(f"\n## {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=HERE.parent)
        print(f"## {name}: exit {code} after {time.perf_counter() - start:.1f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
