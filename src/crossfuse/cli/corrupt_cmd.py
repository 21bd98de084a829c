"""``crossfuse corrupt``: write a fixed corrupted copy of a dataset (TNO-C layout) for ``bench robustness``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from crossfuse.degrade import TNO_C, list_degradations

    p = subparsers.add_parser(
        "corrupt", help="write corrupted copies of a dataset: TREE/<condition>@<severity>/{ir,vi}/<stem>.png",
        description="Corrupt every ir/vi pair of --data (matched by file stem) under each condition and severity; "
                    "lossless 8-bit PNG plus TREE/manifest.json. Deterministic per (condition, severity, file). "
                    f"Conditions: {', '.join(list_degradations())}. The default set is TNO-C's; with severities "
                    "1,2 on TNO it reproduces ../shared/bench/make_corrupted.py byte for byte.")
    p.add_argument("--data", required=True, type=Path, help="dataset folder with ir/ and vi/")
    p.add_argument("--out", required=True, type=Path, help="output tree")
    p.add_argument("--conditions", default=",".join(TNO_C),
                   help="comma-separated condition names, or 'all' (default: TNO-C's eight)")
    p.add_argument("--severities", default="1,2", help="comma-separated severities, 1..5 (default 1,2); "
                                                        "for the sweeps shift_px/rotate_deg: pixels/degrees")
    p.add_argument("--overwrite", action="store_true", help="rewrite existing files (default: keep them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossfuse.degrade import SWEEPS, corrupt_dataset, list_degradations, parse_severities

    conds = [c.strip() for c in args.conditions.split(",") if c.strip()]
    if conds == ["all"]:
        conds = [c for c in list_degradations() if c not in SWEEPS]
    manifest = corrupt_dataset(args.data, args.out, conds, parse_severities(args.severities),
                               overwrite=args.overwrite, progress=not args.quiet)
    print(f"corrupt: {manifest['pairs']} pairs x {len(manifest['conditions'])} condition@severity sets in "
          f"{args.out}; {len(manifest['failed'])} failed")
    for f in manifest["failed"]:
        print(f"  FAILED {f}")
    return 1 if manifest["failed"] else 0
