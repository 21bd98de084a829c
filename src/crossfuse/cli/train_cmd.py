"""``crossfuse train CONFIG [--resume CKPT] [--out DIR] [--set key=value ...]`` - thin shell over
:func:`crossfuse.train.train`. Under ``torchrun`` every rank runs this command; only rank 0 writes."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a fusion network from a config file",
        description="Train a fusion network from a TOML config (a path, or a shipped config name: fast, paper, "
                    "tiny, ablation_a ... ablation_e). Writes last.pt/best.pt, config.toml, env.json, log.csv and "
                    "loss.png to the output folder. Multi-process: torchrun --nproc_per_node=N -m crossfuse.cli "
                    "train CONFIG.")
    p.add_argument("config", help="config file or shipped config name")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (last.pt) in the same --out")
    p.add_argument("--out", metavar="DIR", help="output folder (default: output.dir of the config, else runs/NAME)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set schedule.lr=5e-4 --set data.root=/data (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--max-epochs", type=int, metavar="N",
                   help="stop after N epochs of this call (the schedule is unchanged; continue with --resume)")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="stop after the first epoch that ends past M minutes of wall time (a lent GPU's window, "
                        "a time-sliced job); every epoch's checkpoint is written, so --resume continues exactly")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossfuse.config import load_config
    from crossfuse.train import train

    cfg = load_config(args.config, args.overrides)
    if args.max_epochs is not None and args.max_epochs < 1:
        raise ValueError(f"--max-epochs must be >= 1, got {args.max_epochs}")
    out = train(cfg, out_dir=args.out, resume=args.resume, progress=not args.no_progress,
                max_epochs=args.max_epochs, max_minutes=args.max_minutes)
    print(f"done: {out}")
    return 0
