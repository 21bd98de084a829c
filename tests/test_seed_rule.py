"""benchmarks/seed_rule.py: the amended three-seed rule of docs/protocol.md as a verdict on per-seed differences, its
early stop, and the declared form (constants and gates by the H74 rule) it fuses each run in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import require_data

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import seed_rule as sr  # noqa: E402


def seed(rank, clean, corrupted, identical=False, dark=1.5, below=()):
    return {"diff": {"rank_score": rank, "clean_rank": clean, "corrupted_rank": corrupted},
            "clean_identical": identical, "dark": dark, "below_fast_on": list(below)}


def test_verdict_passes_only_when_every_clause_holds():
    # H79's three seeds (docs/protocol.md, session 18): passes
    h79 = [seed(-0.562, -0.625, -0.500), seed(-0.251, -0.042, -0.460), seed(-0.398, -0.417, -0.380)]
    v = sr.verdict(h79, 3)
    assert v["passes"] and v["lower_at"] == 3 and v["mean"]["rank_score"] == pytest.approx(-0.4037, abs=1e-4)
    # H81's (session 19): lower at 1 of 3, mean above 0
    v = sr.verdict([seed(0.242, 0.583, -0.100), seed(0.650, 0.500, 0.800), seed(-0.193, -0.125, -0.260)], 3)
    assert not v["passes"] and v["lower_at"] == 1
    assert any("lower at 1 of 3 seeds (needs 2)" in f for f in v["fails"])
    assert any("mean rank-score difference +0.233" in f for f in v["fails"])
    # lower on the whole, but the clean part is worse: fails on that clause alone
    v = sr.verdict([seed(-0.2, 0.1, -0.5), seed(-0.1, 0.05, -0.25), seed(-0.1, 0.0, -0.2)], 3)
    assert v["fails"] == ["mean clean difference +0.050 is not < 0"]
    # clean rows bit-identical at every seed: a zero clean difference is allowed
    assert sr.verdict([seed(-0.1, 0.0, -0.2, True)] * 3, 3)["passes"]
    assert not sr.verdict([seed(-0.1, 0.0, -0.2, False)] * 3, 3)["passes"]
    # darks and crossfuse-fast are hard constraints
    assert sr.verdict([seed(-0.5, -0.5, -0.5, dark=2.1)] + h79[1:], 3)["fails"] == ["darks over 2.0 %"]
    assert sr.verdict([seed(-0.5, -0.5, -0.5, below=["haze"])] + h79[1:], 3)["fails"] == [
        "below crossfuse-fast on haze"]


def test_scoring_stops_once_the_rule_cannot_be_met():
    assert sr.lower_needed(3) == 2 and sr.lower_needed(1) == 1 and sr.lower_needed(5) == 4
    assert sr.still_possible([], 3)
    assert sr.still_possible([seed(0.3, 0.3, 0.3)], 3)  # one higher: two lower are still possible
    assert not sr.still_possible([seed(0.3, 0.3, 0.3), seed(0.0, 0.0, 0.0)], 3)  # a tie is not lower
    v = sr.verdict([seed(0.820, 1.0, 0.640), seed(0.495, 0.750, 0.240)], 3)  # H80: seed 2 never scored
    assert not v["passes"] and v["fails"][0].startswith("stopped after 2 of 3 seeds")


def test_constants_parse_as_json_values():
    assert sr.parse_constants(["rule_alpha_degraded=0.4", "rule_gain_degraded=1", "denoise=true", "x=abc"]) == {
        "rule_alpha_degraded": 0.4, "rule_gain_degraded": 1, "denoise": True, "x": "abc"}
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        sr.parse_constants(["rule_alpha_degraded"])


def test_clean_identical_compares_the_clean_rows_only():
    a = [{"condition": None, "MI": 2.0}, {"condition": "haze", "MI": 1.0}]
    b = [{"condition": None, "MI": 2.0}, {"condition": "haze", "MI": 1.5}]
    assert sr.clean_identical({"base": a, "candidate": b})
    assert not sr.clean_identical({"base": a, "candidate": [{"condition": None, "MI": 2.1}, b[1]]})


def test_form_sets_the_constants_and_the_runs_own_gates_by_the_rule(monkeypatch):
    """crossfuse-robust20 in the declared form: the α / gain switch as set, and the three gates spread_gate.py's rule
    gives (here over 3 training frames, to keep the test short; over all 196 the card's 0.12 / 0.13 / 0.02)."""
    for name in ("RoadScene", "LLVIP", "MSRS"):
        require_data(name)
    import spread_gate as sg

    root = sr.rp.data_root()
    frames = sg.training_frames(root)[:3]
    monkeypatch.setattr(sg, "training_frames", lambda _root: frames)
    want, _, n = sg.gates_of("crossfuse-robust20", root)
    fuser, gates = sr.form("crossfuse-robust20", {"rule_alpha_degraded": 0.3, "rule_gain_degraded": 1.0}, None,
                           "rule")
    assert n == 3 and gates == {sg.GATE_KEYS[k]: round(v, 2) for k, v in want.items()}
    net = fuser.runner.model
    assert (net.rule_alpha_degraded, net.rule_gain_degraded) == (0.3, 1.0)
    assert fuser.spread_noise_gates == {"vis": gates["spread_noise_gate"], "ir": gates["spread_noise_gate_ir"]}
    assert fuser.spread_excess_gate == gates["spread_noise_gate_excess"]
    assert gates != {"spread_noise_gate": 0.12, "spread_noise_gate_ir": 0.13, "spread_noise_gate_excess": 0.02}
    plain, none = sr.form("crossfuse-robust20", {}, None, "none")
    assert none == {} and plain.spread_noise_gates == {"vis": 0.12, "ir": 0.13}  # as the shipped file declares
    assert plain.spread_excess_gate == 0.02 and plain.runner.model.rule_alpha_degraded == 0.4
