"""Calibration of the ``cddfuse`` and ``canonical`` metric profiles against the CDDFuse evaluator's golden values.

Golden values: ``metric_reference/cddfuse_vifb_calib.csv`` (MMIF-CDDFuse ``utils/Evaluator.py`` on the 125
VIFB_calib triplets, 5 pairs x 25 methods). Images are read with ``crossfuse.io.read_image`` and prepared by each
profile (both use BT.601 gray, rounded). Prints, per profile and metric, the median and maximum relative error.

* ``cddfuse`` is compared on all 12 metrics of the evaluator;
* ``canonical`` is compared where its definition is the evaluator's (EN SD SF AG SCD VIF Qabf CC MSE) and on MI
  after converting bits to nats; its SSIM (11x11 Gaussian, L = 255) and PSNR (peak 255) are different
  definitions and are not compared. The ``vifb`` profile has its own script, ``benchmarks/calibrate_vifb.py``.

    PYTHONPATH=src .venv/bin/python benchmarks/calibrate_metrics.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from calibrate_vifb import load_golden  # same CSV layout (image, method, metric, value)

from crossfuse.io import read_image
from crossfuse.metrics import compute_metrics

CDDFUSE = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "CC", "PSNR", "MSE")
CANONICAL_SAME = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "CC", "MSE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    gold = load_golden(args.data / "metric_reference" / "cddfuse_vifb_calib.csv")
    root = args.data / "VIFB_calib"
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for (image, method), ref in sorted(gold.items()):
        if image not in sources:
            sources[image] = (read_image(root / "ir" / f"{image}.jpg"), read_image(root / "vi" / f"{image}.jpg"))
        ir, vi = sources[image]
        fused = read_image(root / "fused" / method / f"{image}.jpg")
        for profile, names in (("cddfuse", CDDFUSE), ("canonical", CANONICAL_SAME)):
            got = compute_metrics(ir, vi, fused, profile, names)
            if profile == "canonical":
                got["MI"] *= math.log(2.0)  # bits -> nats
            for m in names:
                errors[(profile, m)].append(abs(got[m] - ref[m]) / abs(ref[m]))
    print(f"{len(gold)} triplets (VIFB_calib), golden values: CDDFuse utils/Evaluator.py\n")
    print("| profile | metric | median rel. error | max rel. error |")
    print("|---|---|---:|---:|")
    for (profile, m), errs in errors.items():
        note = " (bits -> nats)" if profile == "canonical" and m == "MI" else ""
        print(f"| {profile} | {m}{note} | {np.median(errs):.1e} | {max(errs):.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
