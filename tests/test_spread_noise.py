"""The spread-noise gate (H74, crossfuse-robust17): the network's visible restoration share finds noise a camera
has spread over neighbouring pixels, which the denoising step's white-noise estimate cannot see; the Fuser denoises
the visible plane and fuses again. Real pairs, scored against the clean sources; both backends; tiles; video
verdicts; the level estimate; the rule that sets the gates. crossfuse-robust19's excess gate (H77): noise on the
visible plane alone, which stays under the absolute gate on dark frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import first_pair_u8
from test_denoise import _suite, _u8

from crossfuse.denoise import GATE, noise_sigma, spread_noise_level
from crossfuse.infer import Fuser


@pytest.fixture(scope="module")
def msrs():
    """The first MSRS pair, clean and with the suite's correlated (spread) noise on both planes."""
    ir, vis = first_pair_u8("MSRS")
    return ir, vis, _suite("correlated_noise", ir, 1), _suite("correlated_noise", vis, 2)


def _spread(shape: tuple[int, int], level: float, seed: int = 0) -> np.ndarray:
    """White noise blurred by a 1-px Gaussian and rescaled to ``level`` grey levels of std."""
    n = cv2.GaussianBlur(np.random.default_rng(seed).normal(size=shape).astype(np.float32), (0, 0), 1.0)
    return n / n.std() * level


def test_the_level_estimate_reads_spread_noise_that_the_white_noise_estimate_misses():
    flat = np.full((256, 320), 120.0)
    for level in (4.0, 8.0, 12.0):
        plane = np.clip(np.round(flat + _spread(flat.shape, level)), 0, 255).astype(np.uint8)
        assert noise_sigma(plane) < 0.45 * level  # the finest band hardly sees it
        assert spread_noise_level(plane) == pytest.approx(level, rel=0.35)
    assert spread_noise_level(flat.astype(np.uint8)) == 0.0
    with pytest.raises(ValueError, match=r"\(H, W\) plane"):
        spread_noise_level(np.zeros((4, 4, 3), np.uint8))
    assert spread_noise_level(np.zeros((3, 3), np.uint8)) == 0.0


def test_spread_noise_is_found_and_denoised_and_clean_frames_are_untouched(msrs):
    from crossfuse.metrics import compute_metrics

    ir, vis, noisy_ir, noisy_vis = msrs
    assert noise_sigma(noisy_vis) < GATE and noise_sigma(noisy_ir) < GATE  # the denoising step alone does not fire
    r16, r17, r18 = (Fuser(f"crossfuse-robust{k}", device="cpu") for k in (16, 17, 18))
    assert r16.spread_noise_gates == {} and r17.spread_noise_gates == {"vis": pytest.approx(0.12)}
    assert r18.spread_noise_gates == {"vis": pytest.approx(0.12), "ir": pytest.approx(0.14)}
    plain = r16.fuse_y(ir, vis)
    for f in (r17, r18):  # clean: bit for bit crossfuse-robust16, nothing fires
        np.testing.assert_array_equal(f.fuse_y(ir, vis), plain)
        assert not any(v for k, v in f.last_verdicts.items() if k.startswith("spread")) and not f.last_degraded
    assert r18.last_levels["spread_share_vis"] < 0.12 and r18.last_levels["spread_share_ir"] < 0.14

    fused = [f.fuse_y(noisy_ir, noisy_vis) for f in (r16, r17, r18)]
    assert r17.last_verdicts["spread_vis"] and "spread_ir" not in r17.last_verdicts and r17.last_degraded
    report = r18.last_report
    assert report.verdicts["spread_vis"] and report.verdicts["spread_ir"] and report.degraded
    assert report.levels["spread_share_vis"] > 0.12 and report.levels["spread_share_ir"] > 0.14
    for plane in ("ir", "vis"):  # the suite's level at severity 1.5 is ~5-12 grey levels
        assert 3.0 < report.levels[f"spread_{plane}"] < 15.0
    assert "IR denoised for spread noise" in report.summary() and report.row()["spread_ir"] == "1"
    scores = [compute_metrics(ir, vis, _u8(f), profile="cddfuse", metrics=["MI", "VIF", "SSIM"]) for f in fused]
    for m in ("MI", "VIF", "SSIM"):  # against the clean sources: each gate helps
        assert scores[0][m] < scores[1][m] < scores[2][m], (m, scores)


def test_the_gates_go_with_the_denoising_step_and_follow_a_video_verdict(msrs):
    ir, vis, noisy_ir, noisy_vis = msrs
    assert Fuser("crossfuse-robust18", device="cpu", denoise=False).spread_noise_gates == {}
    f = Fuser("crossfuse-robust18", device="cpu")
    plain = f.fuse_y(ir, vis)
    forced = f.fuse_y(ir, vis, verdicts={"spread_ir": True, "spread_vis": False})  # a clip decided on frame one
    assert f.last_verdicts["spread_ir"] and not f.last_verdicts["spread_vis"] and f.last_degraded
    assert not any(k.startswith("spread_share") for k in f.last_levels)  # nothing left to read: one pass
    assert np.abs(forced - plain).max() > 0
    skipped = f.fuse_y(noisy_ir, noisy_vis, verdicts={"spread_ir": False, "spread_vis": False})
    np.testing.assert_array_equal(skipped, Fuser("crossfuse-robust16", device="cpu").fuse_y(noisy_ir, noisy_vis))


def test_onnx_and_tiles_read_the_same_shares_and_fuse_alike(msrs):
    _, _, noisy_ir, noisy_vis = msrs
    ref = Fuser("crossfuse-robust18", device="cpu")
    want = ref.fuse_y(noisy_ir, noisy_vis)
    for other in (Fuser("crossfuse-robust18", device="cpu", backend="onnx"),
                  Fuser("crossfuse-robust18", device="cpu", tile=256, overlap=64)):
        got = other.fuse_y(noisy_ir, noisy_vis)
        assert (other.last_tiles > 1) == (other.backend == "torch")
        for plane in ("ir", "vis"):
            assert other.last_verdicts[f"spread_{plane}"]
            assert other.last_levels[f"spread_share_{plane}"] == pytest.approx(  # tiles see less context
                ref.last_levels[f"spread_share_{plane}"], abs=1e-4 if other.backend == "onnx" else 0.02)
        assert np.abs(got - want).max() < (1e-3 if other.backend == "onnx" else 0.1)
        assert np.abs(got - want).mean() < 2e-3


def test_the_onnx_export_carries_the_shares_and_the_gates(tmp_path):
    import onnx
    import onnxruntime as ort

    from crossfuse.backends import OnnxBackend
    from crossfuse.errors import CheckpointError
    from crossfuse.export import export_onnx
    from crossfuse.models import load_model

    path = export_onnx(load_model("crossfuse-robust18"), tmp_path / "m.onnx", name="crossfuse-robust18")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["fused", "shares"]
    meta = sess.get_modelmeta().custom_metadata_map
    assert (meta["crossfuse.spread_noise_gate"], meta["crossfuse.spread_noise_gate_ir"]) == ("0.12", "0.14")
    assert OnnxBackend(path).spread_noise_gates == {"spread_noise_gate": 0.12, "spread_noise_gate_ir": 0.14}
    assert OnnxBackend(export_onnx(load_model("crossfuse-robust16"), tmp_path / "p.onnx")).spread_noise_gates == {}
    proto = onnx.load(str(path))  # a file with the shares output but no gate in its metadata is refused, named
    for key in ("crossfuse.spread_noise_gate", "crossfuse.spread_noise_gate_ir"):
        del proto.metadata_props[[p.key for p in proto.metadata_props].index(key)]
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(CheckpointError, match="bad.onnx.*shares"):
        OnnxBackend(tmp_path / "bad.onnx")


def test_a_spread_noise_gate_needs_the_restoration_shares():
    import torch

    from crossfuse.nets import build

    for key in ("spread_noise_gate", "spread_noise_gate_ir"):
        with pytest.raises(ValueError, match=f"{key} needs restore"):
            build("fast", **{key: 0.1})
        with pytest.raises(ValueError, match=f"{key} needs restore"):
            build("fast", restore=True, **{key: 1.5})
    net = build("fast", restore=True, spread_noise_gate_ir=0.1).eval()
    assert net.config["spread_noise_gate_ir"] == 0.1 and "spread_noise_gate" not in net.config
    x = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        fused, shares = net.forward_shares(x, x.flip(-1))
        assert torch.equal(fused, net(x, x.flip(-1))) and shares.shape == (1, 2, 32, 48)
    assert float(shares.min()) >= 0 and float(shares.max()) <= 1


def test_the_gate_rule_reads_training_frames_only_and_rounds_up(monkeypatch):
    """benchmarks/spread_gate.py: the largest share of the frames it is given, rounded up to 0.01, plus 0.01."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import robust_protocol as rp
    import spread_gate as sg

    root = rp.data_root()
    frames = sg.training_frames(root)
    val = {s for stems in rp.validation_stems(root).values() for s in stems}
    test = set((root / "RoadScene" / "cddfuse_test50.txt").read_text().split())
    assert len(frames) == 196 and not {s for _, s in frames} & (val | test)
    monkeypatch.setattr(sg, "training_frames", lambda _root: frames[:3])
    with pytest.raises(SystemExit, match="does not declare the denoising step"):
        sg.gates_of("crossfuse-robust11", root)  # restoration shares, but no denoising step: no gate to set
    assert sg.gates_of("crossfuse-robust11", root, {"denoise": True})[2] == 3
    gates, shares, n = sg.gates_of("crossfuse-robust16", root)
    assert n == 3 and all(len(v) == 3 for v in shares.values())
    assert set(gates) == {"vis", "ir", "excess"}
    for plane, gate in gates.items():  # (the excess may be negative: a gate is at least 0.01)
        assert gate == pytest.approx(max(np.ceil(shares[plane].max() * 100) / 100, 0.0) + 0.01)
        assert 0.01 <= gate - max(shares[plane].max(), 0.0) <= 0.02 + 1e-9


def test_the_gates_can_be_turned_off_alone_from_python_and_the_cli(msrs, tmp_path, capsys):
    from conftest import cli_pairs

    from crossfuse import cli

    ir, vis, noisy_ir, noisy_vis = msrs
    off = Fuser("crossfuse-robust18", device="cpu", spread_gate=False)
    assert off.spread_noise_gates == {} and off.denoise  # the denoising step kept
    np.testing.assert_array_equal(off.fuse_y(noisy_ir, noisy_vis),
                                  Fuser("crossfuse-robust16", device="cpu").fuse_y(noisy_ir, noisy_vis))
    with pytest.raises(ValueError, match="spread_gate=True needs a model that declares"):
        Fuser("crossfuse-robust16", device="cpu", spread_gate=True)
    with pytest.raises(ValueError, match="spread_gate=True needs"):
        Fuser("crossfuse-robust18", device="cpu", spread_gate=True, denoise=False)
    fuse = cli_pairs(tmp_path, {"ir": noisy_ir, "vi": noisy_vis})
    r18 = ("--model", "crossfuse-robust18")
    np.testing.assert_array_equal(fuse("ir", *r18, "--no-spread-gate"), fuse("ir", "--model", "crossfuse-robust16"))
    assert np.abs(fuse("ir", *r18).astype(float) - fuse("ir", *r18, "--no-spread-gate")).mean() > 0.5
    capsys.readouterr()
    code = cli.main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vi", str(tmp_path / "vi.png"),
                     "--out", str(tmp_path / "x.png"), "--spread-gate", "--no-denoise"])
    assert code != 0 and "--spread-gate belongs to the denoising step" in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["LLVIP", "MSRS"])
def test_the_excess_gate_finds_noise_on_the_visible_plane_alone(dataset):
    """Night pairs with the suite's correlated noise on the visible only: crossfuse-robust18's absolute gates miss it
    (the visible share stays under 0.12), crossfuse-robust19 reads the visible share's excess over the IR share,
    denoises the visible plane and does better against the clean sources; the clean pair is fused bit for bit as
    before."""
    from crossfuse.metrics import compute_metrics

    ir, vis = first_pair_u8(dataset)
    noisy_vis = _suite("correlated_noise", vis, 2)
    r18, r19 = Fuser("crossfuse-robust18", device="cpu"), Fuser("crossfuse-robust19", device="cpu")
    assert r19.spread_excess_gate == pytest.approx(0.02) and r18.spread_excess_gate is None
    np.testing.assert_array_equal(r19.fuse_y(ir, vis), r18.fuse_y(ir, vis))
    assert not r19.last_verdicts.get("spread_vis") and not r19.last_degraded
    fused = [f.fuse_y(ir, noisy_vis) for f in (r18, r19)]
    assert not r18.last_verdicts["spread_vis"] and not r18.last_degraded
    levels = r19.last_levels
    assert levels["spread_share_vis"] < 0.12 and levels["spread_share_vis"] - levels["spread_share_ir"] > 0.02
    assert r19.last_verdicts["spread_vis"] and not r19.last_verdicts["spread_ir"] and r19.last_degraded
    assert 3.0 < levels["spread_vis"] < 15.0  # the suite's level at severity 1.5
    said = r19.last_report.summary()  # both shares named: the visible one alone is under its gate
    assert f"share {levels['spread_share_vis']:.3f}, IR share {levels['spread_share_ir']:.3f}" in said, said
    before, after = (compute_metrics(ir, vis, _u8(f), profile="cddfuse", metrics=["MI", "VIF", "SSIM"]) for f in fused)
    for m in ("MI", "VIF", "SSIM"):
        assert after[m] > before[m] + 0.03, (m, before, after)


def test_the_excess_gate_reads_the_ir_share_only_when_the_ir_came_as_it_was():
    """An IR plane an earlier step changed (destriped, denoised) has a smaller share for that reason alone: the
    excess gate does not read it then; the absolute gate still does."""
    r19 = Fuser("crossfuse-robust19", device="cpu")
    as_came, changed = {"ir": False, "vis": False}, {"ir": True, "vis": False}
    assert r19._spread_noisy("vis", {"vis": 0.05, "ir": 0.01}, as_came)
    assert not r19._spread_noisy("vis", {"vis": 0.05, "ir": 0.01}, changed)
    assert not r19._spread_noisy("vis", {"vis": 0.05, "ir": 0.035}, as_came)  # excess 0.015 <= 0.02
    assert r19._spread_noisy("vis", {"vis": 0.13, "ir": 0.2}, changed)  # over the absolute gate 0.12
    assert not r19._spread_noisy("ir", {"vis": 0.05, "ir": 0.01}, as_came)  # the excess is the visible's alone
    assert not Fuser("crossfuse-robust18", device="cpu")._spread_noisy("vis", {"vis": 0.05, "ir": 0.01}, as_came)


def test_the_excess_gate_travels_with_the_onnx_export_and_needs_the_visible_gate(tmp_path):
    from crossfuse.backends import OnnxBackend
    from crossfuse.export import export_onnx
    from crossfuse.models import load_model
    from crossfuse.nets import build

    with pytest.raises(ValueError, match="spread_noise_gate_excess .* needs spread_noise_gate"):
        build("fast", restore=True, spread_noise_gate_ir=0.1, spread_noise_gate_excess=0.02)
    path = export_onnx(load_model("crossfuse-robust19"), tmp_path / "m.onnx", name="crossfuse-robust19")
    assert OnnxBackend(path).spread_noise_gates == {"spread_noise_gate": 0.12, "spread_noise_gate_ir": 0.14,
                                                    "spread_noise_gate_excess": 0.02}
    ir, vis = first_pair_u8("LLVIP")
    noisy_vis = _suite("correlated_noise", vis, 2)
    torch_f, onnx_f = Fuser("crossfuse-robust19", device="cpu"), Fuser(str(path), device="cpu")
    want, got = torch_f.fuse_y(ir, noisy_vis), onnx_f.fuse_y(ir, noisy_vis)
    assert onnx_f.last_verdicts["spread_vis"] and torch_f.last_verdicts["spread_vis"]
    assert np.abs(got - want).max() < 1e-3
