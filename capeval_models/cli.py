"""capeval-models: train the caption decoders, caption, score with capeval, publish a leaderboard.

    capeval-models run [--out runs/default] [--quick] [--data PATH] [--no-meteor] [--fresh]
    capeval-models train --model lstm [--seed 1]      one model (resumes from its checkpoint)
    capeval-models predict [--system S] [--split val]  caption with trained models (and the baseline)
    capeval-models attention [--images 3]              per-word attention figures of the Transformer
    capeval-models score                               report.html, leaderboard.*, summary.* from the saved files

Every step works on one output folder (--out); its config.json fixes the configuration, so the step
commands take only --out (and their own options) once the folder exists. Exit codes: 0 success, 1 error,
2 bad usage, 130 interrupted (the checkpoints are kept: run the same command again to resume).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from . import pipeline as P
from .models import get_model

_TUNABLE = {  # flag -> config field, for the settings worth changing from the command line
    "seed": "seed", "data_seed": "data_seed", "rnn_iterations": "rnn_iterations",
    "lstm_iterations": "lstm_iterations", "tf_steps": "tf_steps", "drophead": "drophead",
    "drophead_seeds": "drophead_seeds", "beam_size": "beam_size", "n_resamples": "n_resamples",
    "val_every": "val_every", "attention_images": "attention_images",
}


def _config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (new output folders; an existing folder keeps its config.json)")
    g.add_argument("--quick", action="store_true", help="tiny sizes (a few hundred images, no METEOR): tests")
    g.add_argument("--data", default=None, help="a CS231n coco_captioning directory or a JSON data spec "
                   "(see docs/walkthrough.md); default: the embedded shapes dataset")
    g.add_argument("--sizes", type=int, nargs=3, metavar=("TRAIN", "VAL", "NICE"), default=None,
                   help="embedded dataset sizes in images (default 8000 1000 1000)")
    g.add_argument("--models", nargs="+", choices=P.MODELS, default=None)
    for flag in _TUNABLE:
        kind = float if flag == "drophead" else int
        g.add_argument("--" + flag.replace("_", "-"), type=kind, default=None)
    g.add_argument("--no-meteor", action="store_true", help="skip METEOR (it needs Java; ~1 JVM start)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/default", help="output folder (default runs/default)")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1: fastest on "
                   "a shared 2-core machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capeval-models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="the whole job: train, caption, score, report")
    _common(p)
    _config_args(p)
    p.add_argument("--fresh", action="store_true", help="delete the output folder first (no resume)")
    p = sub.add_parser("train", help="train one model")
    _common(p)
    _config_args(p)
    p.add_argument("--model", required=True, choices=P.MODELS)
    p = sub.add_parser("predict", help="caption splits with trained models and the baseline")
    _common(p)
    p.add_argument("--system", nargs="+", default=None, help="systems (default: all whose model is trained)")
    p.add_argument("--split", nargs="+", default=None, help="splits (default: all)")
    p = sub.add_parser("attention", help="per-word cross-attention figures")
    _common(p)
    p.add_argument("--model", default="transformer", choices=["transformer", "transformer-drophead"])
    p.add_argument("--images", type=int, default=None, help="images per split (default from the config)")
    p.add_argument("--split", nargs="+", default=["val", "nice"])
    p = sub.add_parser("score", help="score saved predictions, write leaderboard.* and summary.*")
    _common(p)
    return parser


def _config(args) -> P.RunConfig:
    over = {"out": args.out, "threads": args.threads, "progress": not args.no_progress}
    if args.data is not None:
        over["data"] = args.data
    if args.sizes is not None:
        over["sizes"] = tuple(args.sizes)
    if args.models is not None:
        over["models"] = tuple(args.models)
    if args.no_meteor:
        over["meteor"] = False
    for flag, name in _TUNABLE.items():
        if getattr(args, flag) is not None:
            over[name] = getattr(args, flag)
    return P.RunConfig.quick_config(**over) if args.quick else P.RunConfig(**over)


def _existing(args) -> P.RunConfig:
    config = P.load_config(args.out)
    return replace(config, threads=args.threads, progress=not args.no_progress)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            summary = P.run(_config(args), fresh=args.fresh)
            P.print_summary(summary)
            print(f"\nReport: {args.out}/report/report.html (one file, images embedded), {args.out}/report/summary.md "
                  "(run.json: status complete)")
        elif args.command == "train":
            config = _config(args)
            if (config.out_dir / "config.json").exists():  # the folder's configuration wins
                config = _existing(args)
            else:
                config.out_dir.mkdir(parents=True, exist_ok=True)
                P.check_config(config)
            data = P.load_data(config)
            P.write_references(config, data)
            seed = args.seed if args.seed is not None else config.seed
            history = P.train_model(config, data, args.model, seed)
            last = history["val"][-1]["CIDEr-D"] if history["val"] else float("nan")
            print(f"{args.model} (seed {seed}): {history['iterations']} iterations, final val CIDEr-D {last:.3f}"
                  f" -> {P.model_dir(config, args.model, seed)}")
        else:
            config = _existing(args)
            if args.command == "score":
                data = P.load_data(config)
                summary = P.score(config, data)
                P.print_summary(summary)
            else:
                data = P.load_data(config)
                P.write_references(config, data)
                if args.command == "predict":
                    names = args.system
                    if names is None:
                        names = [s for s, m, _ in P.systems(config)
                                 if not get_model(m).trained_by_run or P.is_trained(config, m)]
                    written = P.predict(config, data, names, args.split)
                    print(f"{len(written)} prediction files written under {config.out_dir / 'predictions'}")
                else:
                    paths = P.attention(config, data, args.model, args.images, tuple(args.split))
                    for path in paths:
                        print(path)
        return 0
    except KeyboardInterrupt:
        print("interrupted: checkpoints and finished files are kept; run the same command to resume",
              file=sys.stderr)
        return 130
    except (P.ConfigMismatch, FileNotFoundError, ValueError) as exc:
        print(f"capeval-models: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
