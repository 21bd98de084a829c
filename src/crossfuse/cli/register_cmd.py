"""``crossfuse register``: warp each IR image onto its visible partner and write the registered pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CROP_COLUMNS = ("crop_left", "crop_top", "crop_width", "crop_height")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "register", help="warp IR onto visible (similarity warp, estimated as by check-align); write registered pairs",
        description="For each pair (two files, or two folders matched by stem) estimate the IR misregistration and "
                    "write OUT/ir/<stem>.png (IR resampled onto the visible frame, bilinear, border replicated), "
                    "OUT/vi/<stem>.png (the visible image, unchanged pixels) and OUT/alignment.csv; --crop cuts "
                    "both to the box without replicated border.")
    p.add_argument("--ir", required=True, type=Path, help="infrared file or folder")
    p.add_argument("--vi", required=True, type=Path, help="visible file or folder (matched by stem)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--crop", action="store_true",
                   help="write both images cropped to the box where the registered IR has no replicated border "
                        "(its left, top, width, height are added to alignment.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run, command="register")


def run(args: argparse.Namespace) -> int:
    from crossfuse.io import csv_text, write_bytes_atomic, write_image
    from crossfuse.registration import CSV_HEADER, DEFAULT_THRESHOLD, check_pair, csv_row, list_pairs, valid_region
    from crossfuse.registration import register as warp_onto_visible

    pairs, problems = list_pairs(args.ir, args.vi)
    columns = CSV_HEADER + (CROP_COLUMNS if args.crop else ())
    table: list[dict[str, object]] = []
    for stem, ir_p, vi_p in pairs:
        try:
            a, ir, vi = check_pair(ir_p, vi_p)
            reg, row = warp_onto_visible(ir, a.matrix), csv_row(stem, a, DEFAULT_THRESHOLD)
            if args.crop:
                rows, cols = valid_region(a.matrix, ir.shape[:2])
                if rows.stop - rows.start < 2 or cols.stop - cols.start < 2:
                    raise ValueError(f"the estimated warp leaves no common region ({a.dx:+.1f}, {a.dy:+.1f} px)")
                reg, vi = reg[rows, cols], vi[rows, cols]
                box = (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
                row |= dict(zip(CROP_COLUMNS, box, strict=True))
            write_image(args.out / "ir" / f"{stem}.png", reg, overwrite=args.overwrite)
            write_image(args.out / "vi" / f"{stem}.png", vi, overwrite=args.overwrite)
            table.append(row)
        except (ValueError, OSError) as exc:
            problems.append(f"{stem}: {exc}")
    write_bytes_atomic(args.out / "alignment.csv", csv_text(table, columns), overwrite=True)
    print(f"register: {len(table)} pairs written to {args.out}")
    for prob in problems:
        print(f"  FAILED {prob}", file=sys.stderr)
    return 1 if problems else 0
