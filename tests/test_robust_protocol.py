"""The validation protocol of docs/protocol.md (benchmarks/robust_protocol.py): dark-pixel statistic, deterministic
corrupted validation, and the hold-outs the shipped model's card names."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from conftest import require_data

from crossfuse.metrics.core import crushed_dark_percent

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import robust_protocol as rp  # noqa: E402


def test_dark_percent_counts_pixels_more_than_10_levels_below_both():
    ir = np.full((4, 5), 100, np.uint8)
    vis = np.full((4, 5), 60, np.uint8)
    fused = np.full((4, 5), 60, np.uint8)
    fused[0] = 49  # 11 below both: counted
    fused[1] = 50  # exactly 10 below: not counted
    assert crushed_dark_percent(fused, ir, vis) == 25.0
    assert crushed_dark_percent(np.maximum(ir, vis), ir, vis) == 0.0
    # on the [0, 1] scale the margin is given in those units (as the loss tests use it)
    assert crushed_dark_percent(fused / 255.0, ir / 255.0, vis / 255.0, margin=10 / 255) == 25.0


def test_corrupted_validation_is_deterministic_and_changes_only_its_modality():
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, (32, 40), dtype=np.uint8)
    vi = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    for cond in rp.CONDITIONS:
        a = rp.corrupt_pair(ir, vi, cond, seed=7)
        b = rp.corrupt_pair(ir, vi, cond, seed=7)
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), cond
        assert a[0].shape == ir.shape and a[1].shape == vi.shape and a[0].dtype == np.uint8
        assert np.array_equal(a[0], ir) == (cond[1] == "vis"), cond  # IR untouched only by visible-only conditions
        assert np.array_equal(a[1], vi) == (cond[1] == "ir"), cond


def test_holdouts_are_the_card_s_and_outside_the_training_split():
    root = require_data()
    stems = rp.validation_stems(root)
    assert [len(stems[k]) for k in ("RoadScene", "LLVIP", "MSRS")] == [10, 6, 3]
    card = (REPO / "src" / "crossfuse" / "weights" / "crossfuse-robust.md").read_text()
    line = next(x for x in card.splitlines() if x.startswith("| external data"))
    named = set(re.findall(r"\b(0\d{5}|\d{5}[DN])\b", line))
    assert named == set(stems["LLVIP"]) | set(stems["MSRS"])
    split = rp.roadscene_split(root)
    assert not set(split.val) & set(split.train) and not set(split.test) & set(split.train)
