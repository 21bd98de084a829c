"""The ``cddfuse`` profile against golden values of the CDDFuse evaluator (5 VIFB pairs x 25 methods).

Golden numbers: ``../shared/data/metric_reference/cddfuse_vifb_calib.csv`` (MMIF-CDDFuse ``utils/Evaluator.py``,
see that folder's README). Images go through the same path users take: :func:`crossfuse.io.read_image` and the
profile's ``prepare`` (cv2 -> BGR2GRAY -> round).
"""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest

from crossfuse.io import read_image
from crossfuse.metrics import compute_metrics, get_profile
from tests.conftest import require_data

# per-metric tolerance on the relative error (the evaluator works on float32 images; float64 here)
TOLERANCE = {m: 1e-4 for m in ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "CC", "PSNR", "MSE")}


def _golden() -> dict[tuple[str, str], dict[str, float]]:
    path = require_data("metric_reference", "cddfuse_vifb_calib.csv")
    gold: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            gold[(row["image"], row["method"])][row["metric"]] = float(row["value"])
    return gold


@pytest.mark.slow
def test_cddfuse_profile_reproduces_the_cddfuse_evaluator():
    gold = _golden()
    root = require_data("VIFB_calib")
    assert len(gold) == 125
    prof = get_profile("cddfuse")
    assert set(TOLERANCE) <= set(prof.metrics)
    sources = {}
    errors: dict[str, list[float]] = defaultdict(list)
    for (image, method), values in sorted(gold.items()):
        if image not in sources:
            sources[image] = (read_image(root / "ir" / f"{image}.jpg"), read_image(root / "vi" / f"{image}.jpg"))
        ir, vi = sources[image]
        fused = read_image(root / "fused" / method / f"{image}.jpg")
        got = compute_metrics(ir, vi, fused, "cddfuse", list(TOLERANCE))
        for m, v in got.items():
            errors[m].append(abs(v - values[m]) / abs(values[m]))
    for m, tol in TOLERANCE.items():
        assert len(errors[m]) == 125
        assert max(errors[m]) <= tol, f"{m}: max relative error {max(errors[m]):.2e} > {tol:g}"


def test_canonical_shares_the_cddfuse_definitions_where_they_agree():
    """Canonical EN/SD/SF/AG/SCD/VIF/Qabf/CC/MSE are the CDDFuse definitions; canonical MI is the same in bits."""
    gold = _golden()
    root = require_data("VIFB_calib")
    for image, method in (("fight", "CNN"), ("snow", "ADF"), ("kettle", "U2Fusion")):
        ir, vi = read_image(root / "ir" / f"{image}.jpg"), read_image(root / "vi" / f"{image}.jpg")
        fused = read_image(root / "fused" / method / f"{image}.jpg")
        same = ["EN", "SD", "SF", "AG", "SCD", "VIF", "Qabf", "CC", "MSE", "MI"]
        got = compute_metrics(ir, vi, fused, "canonical", same)
        ref = gold[(image, method)]
        got["MI"] *= np.log(2.0)  # bits -> nats
        for m in same:
            assert got[m] == pytest.approx(ref[m], rel=1e-4), m
        # the canonical PSNR uses peak 255, CDDFuse max(F): they differ by 20 log10(255 / max F)
        psnr = compute_metrics(ir, vi, fused, "canonical", ["PSNR"])["PSNR"]
        (f, _, _), = get_profile("cddfuse").prepare(ir, vi, fused)
        assert psnr - ref["PSNR"] == pytest.approx(20 * np.log10(255.0 / f.max()), abs=1e-4)
