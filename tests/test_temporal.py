"""``crossfuse.temporal``: flicker in static regions, on sequences whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from crossfuse.temporal import static_mask, temporal_stability


def _sequence(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:96]
    ir0, vi0 = 100 + 40 * np.sin(xx / 9.0), 120 + 30 * np.cos(yy / 7.0)
    ir, vi = [], []
    for t in range(n):
        a, b = ir0.copy(), vi0.copy()
        a[10:20, 10 + 8 * t:20 + 8 * t] = 250.0  # a warm object moving right: never in the static mask
        ir.append(a + rng.normal(0, 1.0, a.shape))
        vi.append(b + rng.normal(0, 1.0, b.shape))
    return ir, vi


def test_moving_object_is_not_static():
    ir, vi = _sequence()
    m = static_mask(ir[0], ir[1], vi[0], vi[1])
    assert not m[12:18, 12:26].any() and m[40:, :].all()


def test_flicker_of_known_sequences():
    ir, vi = _sequence()
    rng = np.random.default_rng(1)
    fused = {"mean": [(a + b) / 2 for a, b in zip(ir, vi)],
             "flicker": [(a + b) / 2 + rng.normal(0, 5.0, a.shape) for a, b in zip(ir, vi)],
             "frozen": [(ir[0] + vi[0]) / 2] * len(ir)}
    res = temporal_stability(ir, vi, fused)
    # inputs: |N(0,1) - N(0,1)| after rounding ~ 2/sqrt(pi) = 1.13 grey levels
    assert res["IR"]["mean"] == pytest.approx(1.13, abs=0.1)
    assert res["mean"]["ratio"] < 1.0 < res["flicker"]["ratio"]
    assert res["frozen"]["mean"] == 0.0 and len(res["IR"]["per_pair"]) == len(ir) - 1
    with pytest.raises(ValueError):
        temporal_stability(ir, vi[:-1], fused)
