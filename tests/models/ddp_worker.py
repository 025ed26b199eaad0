"""The torchrun example: train the CaptioningTransformer on the synthetic task under DistributedDataParallel.

    torchrun --standalone --nproc_per_node 2 tests/models/ddp_worker.py --steps 200 --summary s.json

Rank 0 prints (and with --summary writes) a JSON summary: steps, losses, whether the replicas stayed in sync.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))  # toy_split, when torchrun runs this file

from toy_split import ToySplit  # noqa: E402

from capeval._io import atomic_write_text  # noqa: E402
from capeval_models.torch_training import TrainConfig, setup_distributed, train_transformer  # noqa: E402
from capeval_models.transformer import CaptioningTransformer, greedy_decode  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ddp_worker.py",
        description="Train the CaptioningTransformer on the synthetic task of toy_split.py, in one process or under torchrun "
                    "(torchrun --standalone --nproc_per_node 2 tests/models/ddp_worker.py).")
    p.add_argument("--num-images", type=int, default=64)
    p.add_argument("--memory", choices=["global", "regions"], default="global")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--drophead", type=float, default=None, help="use DropHead at this rate instead of "
                                                                  "attention dropout")
    p.add_argument("--drophead-schedule", choices=["constant", "v"], default="constant")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--summary", default=None, help="rank 0 writes a JSON summary here")
    p.add_argument("--progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    info = setup_distributed()
    split = ToySplit(num_images=args.num_images, captions_per_image=1, seed=12345)
    torch.manual_seed(args.seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    model = CaptioningTransformer(
        len(split.vocab.idx_to_word),
        split.features.shape[1] if args.memory == "global" else split.regions.shape[2],
        memory=args.memory, grid_shape=split.grid_shape, d_model=args.d_model, n_heads=args.heads,
        n_layers=args.layers, dropout=args.dropout, attn_dropout=args.dropout,
        use_drophead=args.drophead is not None, drophead=args.drophead or 0.0)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup,
                         label_smoothing=args.label_smoothing, grad_clip=args.grad_clip, seed=args.seed,
                         drophead_schedule=args.drophead_schedule, checkpoint=args.checkpoint,
                         checkpoint_every=args.checkpoint_every, resume=not args.no_resume,
                         progress=args.progress)
    steps_run = []
    t0 = time.perf_counter()
    history = train_transformer(model, split, config, callback=lambda step, loss: steps_run.append(step))
    seconds = time.perf_counter() - t0
    checksum = float(sum(p.detach().double().sum().item() for p in model.parameters()))
    checksums = [checksum]
    if info.world_size > 1:
        checksums = [None] * info.world_size
        dist.all_gather_object(checksums, checksum)
    if info.rank == 0:
        model.cpu()
        image = model.image_input(split)[:8]
        decoded = greedy_decode(model, image, vocab=split.vocab)
        truth = [split.texts[i] for i in range(8)]
        last = history["loss"][-10:]
        summary = {
            "world_size": info.world_size, "backend": info.backend, "steps": len(history["loss"]),
            "final_loss": float(np.mean(last)) if last else None, "first_loss": history["loss"][0] if last else None,
            "steps_this_run": len(steps_run), "seconds": seconds,
            "captions_per_second": args.batch_size * info.world_size * len(steps_run) / seconds,
            "param_checksums": checksums, "in_sync": all(abs(c - checksums[0]) < 1e-9 for c in checksums),
            "greedy_exact": float(np.mean([d == t for d, t in zip(decoded.texts, truth)])),
            "samples": [{"truth": t, "greedy": d} for t, d in zip(truth[:3], decoded.texts[:3])],
        }
        text = json.dumps(summary, indent=2)
        print(text)
        if args.summary:
            atomic_write_text(args.summary, text + "\n")
    if info.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
