"""The spread-noise gate (H74, crossfuse-robust17): the network's visible restoration share finds noise a camera
has spread over neighbouring pixels, which the denoising step's white-noise estimate cannot see; the Fuser denoises
the visible plane and fuses again. Real pairs, scored against the clean sources; both backends; tiles; video
verdicts; the level estimate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import first_pair_u8
from test_denoise import _suite, _u8

from crossfuse.denoise import GATE, noise_sigma, spread_noise_level
from crossfuse.infer import Fuser


@pytest.fixture(scope="module")
def llvip():
    """The first LLVIP pair, clean and with the suite's correlated (spread) noise on both planes."""
    ir, vis = first_pair_u8("LLVIP")
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


def test_spread_noise_is_found_and_denoised_and_clean_frames_are_untouched(llvip):
    from crossfuse.metrics import compute_metrics

    ir, vis, noisy_ir, noisy_vis = llvip
    assert noise_sigma(noisy_vis) < GATE  # the denoising step alone does not fire
    gated, plain = Fuser("crossfuse-robust17", device="cpu"), Fuser("crossfuse-robust16", device="cpu")
    assert gated.spread_noise_gate == pytest.approx(0.12) and plain.spread_noise_gate is None
    np.testing.assert_array_equal(gated.fuse_y(ir, vis), plain.fuse_y(ir, vis))  # clean: bit for bit robust16
    assert gated.last_verdicts["spread_vis"] is False and gated.last_levels["spread_share"] < 0.12
    assert not gated.last_degraded

    f_plain = plain.fuse_y(noisy_ir, noisy_vis)
    f_gated = gated.fuse_y(noisy_ir, noisy_vis)
    report = gated.last_report
    assert report.verdicts["spread_vis"] and report.degraded and report.levels["spread_share"] > 0.12
    assert 3.0 < report.levels["spread_vis"] < 15.0  # the suite's level at severity 1.5 is ~5-12 grey levels
    assert not report.verdicts["denoise_ir"]  # the IR plane is left as it is
    assert "spread noise" in report.summary() and report.row()["spread_vis"] == "1"
    scores = [compute_metrics(ir, vis, _u8(f), profile="cddfuse", metrics=["MI", "VIF", "SSIM"])
              for f in (f_plain, f_gated)]
    for m in ("MI", "VIF", "SSIM"):  # against the clean sources
        assert scores[1][m] > scores[0][m], (m, scores)


def test_the_gate_goes_with_the_denoising_step_and_follows_a_video_verdict(llvip):
    ir, vis, noisy_ir, noisy_vis = llvip
    assert Fuser("crossfuse-robust17", device="cpu", denoise=False).spread_noise_gate is None
    f = Fuser("crossfuse-robust17", device="cpu")
    forced = f.fuse_y(ir, vis, verdicts={"spread_vis": True})  # a clip whose first frame was flagged
    assert f.last_verdicts["spread_vis"] and "spread_share" not in f.last_levels and f.last_degraded
    assert np.abs(forced - f.fuse_y(ir, vis)).max() > 0
    skipped = f.fuse_y(noisy_ir, noisy_vis, verdicts={"spread_vis": False})
    np.testing.assert_array_equal(skipped, Fuser("crossfuse-robust16", device="cpu").fuse_y(noisy_ir, noisy_vis))


def test_onnx_and_tiles_read_the_same_share_and_fuse_alike(llvip):
    _, _, noisy_ir, noisy_vis = llvip
    ref = Fuser("crossfuse-robust17", device="cpu")
    want = ref.fuse_y(noisy_ir, noisy_vis)
    share = ref.last_levels["spread_share"]
    for other in (Fuser("crossfuse-robust17", device="cpu", backend="onnx"),
                  Fuser("crossfuse-robust17", device="cpu", tile=512)):
        got = other.fuse_y(noisy_ir, noisy_vis)
        assert other.last_verdicts["spread_vis"] and other.last_levels["spread_share"] == pytest.approx(share, abs=2e-3)
        assert np.abs(got - want).max() < (1e-3 if other.backend == "onnx" else 0.05)
        assert np.abs(got - want).mean() < 1e-3


def test_the_onnx_export_carries_the_share_and_the_gate(tmp_path):
    import onnxruntime as ort

    from crossfuse.backends import OnnxBackend
    from crossfuse.errors import CheckpointError
    from crossfuse.export import export_onnx
    from crossfuse.models import load_model

    path = export_onnx(load_model("crossfuse-robust17"), tmp_path / "m.onnx", name="crossfuse-robust17")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["fused", "vis_share"]
    assert sess.get_modelmeta().custom_metadata_map["crossfuse.spread_noise_gate"] == "0.12"
    assert OnnxBackend(path).spread_noise_gate == pytest.approx(0.12)
    plain = export_onnx(load_model("crossfuse-robust16"), tmp_path / "p.onnx")
    assert OnnxBackend(plain).spread_noise_gate is None
    import onnx  # a two-output file without the gate in its metadata is refused, naming the file

    proto = onnx.load(str(path))
    del proto.metadata_props[[p.key for p in proto.metadata_props].index("crossfuse.spread_noise_gate")]
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(CheckpointError, match="bad.onnx.*vis_share"):
        OnnxBackend(tmp_path / "bad.onnx")


def test_a_spread_noise_gate_needs_the_restoration_share():
    from crossfuse.nets import build

    with pytest.raises(ValueError, match="spread_noise_gate needs restore"):
        build("fast", spread_noise_gate=0.1)
    with pytest.raises(ValueError, match="spread_noise_gate needs restore"):
        build("fast", restore=True, spread_noise_gate=1.5)
    net = build("fast", restore=True, spread_noise_gate=0.1).eval()
    import torch

    x = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        fused, share = net.forward_share(x, x.flip(-1))
    assert torch.equal(fused, net(x, x.flip(-1))) and share.shape == fused.shape
    assert float(share.min()) >= 0 and float(share.max()) <= 1
