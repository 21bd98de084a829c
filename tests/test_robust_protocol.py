"""The validation protocol of docs/protocol.md (benchmarks/robust_protocol.py): dark-pixel statistic, deterministic
corrupted validation, and the hold-outs the shipped model's card names."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from conftest import require_data

from crossfuse import corruptions as C
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


def _rows(values: dict[str, tuple[float, float]]) -> dict[str, list[dict]]:
    """Two clean subsets and two conditions; every metric of a row = its (clean, corrupted) value."""
    rows = {}
    for k, (clean, corr) in values.items():
        rows[k] = [{**dict.fromkeys(rp.TEXTURE + rp.RANKED, clean), "subset": s, "condition": None, "dark": 0.0}
                   for s in ("A", "B")]
        rows[k] += [{**dict.fromkeys(rp.RANKED, corr), "subset": "A", "condition": c, "dark": 0.0}
                    for c in ("gaussian_noise", "haze")]
    return rows


def test_rank_table_ranks_clean_on_eight_metrics_and_corrupted_per_condition():
    rows = _rows({"max": (3.0, 1.0), "crossfuse-fast": (2.0, 2.0), "cand": (1.0, 3.0)})
    # the candidate wins every corrupted condition only on noise: make haze a tie with crossfuse-fast
    for r in rows["cand"]:
        if r["condition"] == "haze":
            r.update(dict.fromkeys(rp.RANKED, 2.0))
    t = rp.rank_table(rows)
    assert t["max"]["clean_rank"] == 1.0 and t["cand"]["clean_rank"] == 3.0
    assert t["cand"]["corrupted_rank_per_condition"] == {"gaussian_noise": 1.0, "haze": 1.5}
    assert t["cand"]["corrupted_rank"] == 1.25 and t["cand"]["rank_score"] == (3.0 + 1.25) / 2
    assert t["cand"]["best_on"] == ["gaussian_noise", "haze"] and t["cand"]["below_fast_on"] == []
    assert t["max"]["below_fast_on"] == ["gaussian_noise", "haze"] and t["max"]["best_on"] == []
    assert t["max"]["ratio_score"] == 1.0


def test_every_validation_pair_also_gets_the_every_pair_conditions():
    """On top of the two cycled conditions (unchanged), every pair gets session 15's IR misregistration, session 16's
    held-out correlated noise (both planes) and column FPN (IR), and session 18's correlated noise on the visible
    plane alone (its own label, its own seeds)."""
    root = require_data()
    cases = [(subset, stem, cond, ir, ir_in, vi, vi_in)
             for subset, stem, cond, ir, vi, ir_in, vi_in in rp.validation_cases(root)]
    conds = [c[2] for c in cases]
    assert len(cases) == 19 * 7 and conds.count(None) == 19
    assert all(conds.count(c) == 19 for c in ("misregistration", "correlated_noise", "column_fpn",
                                              "correlated_noise_vis"))
    assert sorted(conds.count(c) for c, _ in rp.CONDITIONS) == [6, 6, 6, 6, 7, 7]
    for subset, stem, cond, ir, ir_in, vi, vi_in in cases:
        if cond in ("misregistration", "column_fpn"):  # IR only
            assert not np.array_equal(ir_in, ir) and np.array_equal(vi_in, vi), stem
        if cond == "correlated_noise":  # both planes
            assert not np.array_equal(ir_in, ir) and not np.array_equal(vi_in, vi), stem
        if cond == "correlated_noise_vis":  # the visible alone, the same corruption at other seeds
            assert np.array_equal(ir_in, ir) and not np.array_equal(vi_in, vi), stem
            both = next(c for c in cases if c[:3] == (subset, stem, "correlated_noise"))
            assert not np.array_equal(vi_in, both[6]), stem
    t = rp.rank_table({k: [{**dict.fromkeys(rp.TEXTURE + rp.RANKED, v), "subset": "A", "condition": c, "dark": 0.0}
                           for c in (None, "jpeg", "misregistration")] for k, v in (("a", 1.0), ("b", 2.0))})
    assert list(t["a"]["corrupted_rank_per_condition"]) == ["jpeg", "misregistration"]
    saved = list(rp.EVERY_PAIR_CONDITIONS)
    try:
        rp.EVERY_PAIR_CONDITIONS[:] = saved[:3]  # what --every-pair 3 does: sessions 16-17's nine conditions
        assert [c[2] for c in rp.validation_cases(root)] == [c for c in conds if c != "correlated_noise_vis"]
        rp.EVERY_PAIR_CONDITIONS[:] = saved[:1]  # what --seven-conditions does: session 15's cases
        assert [c[2] for c in rp.validation_cases(root)] == [c for c in conds
                                                             if rp.corruption_of(c) not in C.HELD_OUT]
        rp.EVERY_PAIR_CONDITIONS.clear()  # what --six-conditions does: the earlier protocol's cases
        assert [c[2] for c in rp.validation_cases(root)] == [
            c for c in conds if rp.corruption_of(c) not in (*C.HELD_OUT, "misregistration")]
    finally:
        rp.EVERY_PAIR_CONDITIONS[:] = saved
