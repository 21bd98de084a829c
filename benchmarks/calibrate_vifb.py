"""Calibrate the ``vifb`` metric profile against the VIFB MATLAB toolkit's published values.

Reads ``VIFB_calib/vifb_matlab_metrics.csv`` (image, method, metric, value: 5 pairs x 25 methods x 13 metrics),
scores every triplet with :func:`crossfuse.metrics.vifb.score_methods` (= ``score``, sharing the source-side work
between the 25 methods of a pair) on the images as ``crossfuse.io.read_image`` decodes
them, and prints, per metric, the median / 95th percentile / maximum relative error and the count.

    PYTHONPATH=src .venv/bin/python benchmarks/calibrate_vifb.py [--data ../shared/data/VIFB_calib] [--worst 5]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from crossfuse.io import read_image
from crossfuse.metrics.vifb import METRIC_NAMES, score_methods

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "VIFB_calib"


def load_golden(csv_path: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``{(image, method): {metric: value}}`` from the toolkit's CSV."""
    golden: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            golden[(row["image"], row["method"])][row["metric"]] = float(row["value"])
    return dict(golden)


def relative_errors(data: Path) -> tuple[dict[str, list[float]], list[tuple[float, str, str, str, float, float]]]:
    """Per-metric relative errors |ours - MATLAB| / |MATLAB| over all rows, and the rows themselves."""
    golden = load_golden(data / "vifb_matlab_metrics.csv")
    errs: dict[str, list[float]] = defaultdict(list)
    rows = []
    for image in sorted({img for img, _ in golden}):
        methods = sorted(m for img, m in golden if img == image)
        ir = read_image(data / "ir" / f"{image}.jpg", keep_channels=True)
        vi = read_image(data / "vi" / f"{image}.jpg", keep_channels=True)
        fused = {m: read_image(data / "fused" / m / f"{image}.jpg", keep_channels=True) for m in methods}
        got = score_methods(ir, vi, fused, list(METRIC_NAMES))  # the sources' maps are computed once per pair
        for method in methods:
            for metric, ref in golden[(image, method)].items():
                e = abs(got[method][metric] - ref) / abs(ref)
                errs[metric].append(e)
                rows.append((e, metric, image, method, got[method][metric], ref))
    return dict(errs), rows


def table(errs: dict[str, list[float]]) -> str:
    lines = ["| metric | median rel. err | p95 rel. err | max rel. err | n |", "|---|---|---|---|---|"]
    for m in METRIC_NAMES:
        e = np.asarray(errs.get(m, []))
        if e.size:
            lines.append(f"| {m} | {np.median(e):.2e} | {np.percentile(e, 95):.2e} | {e.max():.2e} | {e.size} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the VIFB_calib folder")
    ap.add_argument("--worst", type=int, default=5, help="also list the N worst rows (0: none)")
    args = ap.parse_args(argv)
    if not (args.data / "vifb_matlab_metrics.csv").is_file():
        print(f"error: {args.data / 'vifb_matlab_metrics.csv'} not found (use --data)", file=sys.stderr)
        return 2
    t0, c0 = time.perf_counter(), time.process_time()
    errs, rows = relative_errors(args.data)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = max(1, len(rows) // len(METRIC_NAMES))
    print(table(errs))
    print(f"\n{len(rows)} values, {n} triplets: {dt:.1f} s wall, {cpu:.1f} s CPU "
          f"({cpu / n * 1000:.0f} ms CPU per triplet, all 13 metrics, JPEG decoding included)")
    if args.worst:
        print(f"\nworst {args.worst} rows (rel. err, metric, image, method, ours, MATLAB):")
        for e, metric, image, method, got, ref in sorted(rows, reverse=True)[: args.worst]:
            print(f"  {e:.2e}  {metric:18s} {image:9s} {method:11s} {got:.6g}  {ref:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
