"""``crossfuse register``: warp each IR image onto its visible partner and write the registered pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "register", help="warp IR onto visible (similarity warp, estimated as by check-align); write registered pairs",
        description="For each pair (two files, or two folders matched by stem) estimate the IR misregistration and "
                    "write OUT/ir/<stem>.png (IR resampled onto the visible frame, bilinear, border replicated), "
                    "OUT/vi/<stem>.png (the visible image, unchanged pixels) and OUT/alignment.csv.")
    p.add_argument("--ir", required=True, type=Path, help="infrared file or folder")
    p.add_argument("--vi", required=True, type=Path, help="visible file or folder (matched by stem)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run, command="register")


def run(args: argparse.Namespace) -> int:
    from crossfuse.io import write_bytes_atomic, write_image
    from crossfuse.registration import CSV_HEADER, DEFAULT_THRESHOLD, check_pair, csv_row, list_pairs
    from crossfuse.registration import register as warp_onto_visible

    pairs, problems = list_pairs(args.ir, args.vi)
    lines = [",".join(CSV_HEADER)]
    for stem, ir_p, vi_p in pairs:
        try:
            a, ir, vi = check_pair(ir_p, vi_p)
            write_image(args.out / "ir" / f"{stem}.png", warp_onto_visible(ir, a.matrix), overwrite=args.overwrite)
            write_image(args.out / "vi" / f"{stem}.png", vi, overwrite=args.overwrite)
            lines.append(",".join(csv_row(stem, a, DEFAULT_THRESHOLD)))
        except (ValueError, OSError) as exc:
            problems.append(f"{stem}: {exc}")
    write_bytes_atomic(args.out / "alignment.csv", "\n".join(lines) + "\n", overwrite=True)
    print(f"register: {len(lines) - 1} pairs written to {args.out}")
    for prob in problems:
        print(f"  FAILED {prob}", file=sys.stderr)
    return 1 if problems else 0
