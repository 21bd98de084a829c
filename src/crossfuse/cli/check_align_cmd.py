"""``crossfuse check-align``: how far each IR image sits from its visible partner (see docs/robustness.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from crossfuse.registration import DEFAULT_THRESHOLD

    p = subparsers.add_parser(
        "check-align", help="estimate the misregistration of IR against visible for a pair or two folders",
        description="Per pair: dx, dy (how far the IR content sits from where it should be, in visible pixels; IR "
                    "moved right by 3 px -> dx = +3), rotation (deg, OpenCV sign), scale, a confidence (0..1) and "
                    "aligned: yes / no (largest corner displacement within / above --threshold), or unknown when "
                    "the confidence is below 0.05 (too little structure shared by the two images to tell).")
    p.add_argument("--ir", required=True, type=Path, help="infrared file or folder")
    p.add_argument("--vi", required=True, type=Path, help="visible file or folder (matched by stem)")
    p.add_argument("--csv", type=Path, default=None, help="write pair,dx,dy,rotation_deg,scale,confidence,aligned,"
                                                          "max_displacement here")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"largest corner displacement (px) still aligned (default {DEFAULT_THRESHOLD:g})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")
    p.set_defaults(func=run, command="check-align")


def run(args: argparse.Namespace) -> int:
    from crossfuse.io import check_overwrite, csv_text, write_bytes_atomic
    from crossfuse.registration import CSV_HEADER, check_pair, csv_row, list_pairs

    if args.csv is not None:
        check_overwrite(args.csv, args.overwrite)  # refuse before the (slow) estimates, not after
    pairs, problems = list_pairs(args.ir, args.vi)
    rows: list[dict[str, str]] = []
    for stem, ir, vi in pairs:
        try:
            a = check_pair(ir, vi)[0]
        except (ValueError, OSError) as exc:
            problems.append(f"{stem}: {exc}")
            continue
        rows.append(csv_row(stem, a, args.threshold))
    text = csv_text(rows, CSV_HEADER)
    print(text, end="")
    if args.csv is not None:
        write_bytes_atomic(args.csv, text, overwrite=args.overwrite)
    checked = len(rows)
    flagged, unknown = (sum(r["aligned"] == v for r in rows) for v in ("no", "unknown"))
    print(f"check-align: {checked} pairs checked, {flagged} above {args.threshold:g} px, {unknown} unknown (low "
          "confidence)", file=sys.stderr)
    for prob in problems:
        print(f"  skipped: {prob}", file=sys.stderr)
    return 1 if problems else 0
