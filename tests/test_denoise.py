"""Gated denoising (crossfuse.denoise) and its place in the one inference path (Fuser, backends, ONNX, CLI)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import cli_pairs, first_pair_u8

from crossfuse.denoise import GATE, denoise, noise_sigma
from crossfuse.infer import Fuser
from crossfuse.nets import build


def _scene(seed: int = 0, h: int = 160, w: int = 224) -> np.ndarray:
    """A smooth [0, 1] plane with a bright block (edges along both axes); noise-free."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 8)
    x = 0.2 + 0.5 * (x - x.min()) / (x.max() - x.min())
    x[h // 4:h // 2, w // 3:w // 2] += 0.2
    return x


def _noisy(x: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    """``x`` plus white Gaussian noise of ``sigma`` grey levels, through 8 bits (as a stored frame)."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(x * 255 + rng.normal(0, sigma, x.shape)), 0, 255).astype(np.float32) / 255


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(x * 255).astype(np.uint8)


def _suite(name: str, plane_u8: np.ndarray, seed: int) -> np.ndarray:
    """An 8-bit plane through the corruption suite's ``name`` at severity 1.5 (seeded), back to 8 bits."""
    import torch

    from crossfuse.corruptions import corrupt

    x = torch.from_numpy(plane_u8.astype(np.float32) / 255)[None, None]
    return _u8(corrupt(name, x, 1.5, torch.Generator().manual_seed(seed), "vis")[0, 0].numpy())


@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0])
def test_the_estimate_reads_white_noise(sigma):
    est = noise_sigma(_u8(_noisy(_scene(), sigma)))
    assert est == pytest.approx(sigma, rel=0.15)


def test_the_estimate_is_blind_to_edges_and_stripes():
    x = _scene(2)
    assert noise_sigma(_u8(x)) < 1.0  # smooth content and a block's edges
    stripes = x + np.random.default_rng(3).normal(0, 0.05, (1, x.shape[1]))  # columns of 13 grey levels
    stripes += np.random.default_rng(4).normal(0, 0.02, (x.shape[0], 1))  # and rows
    assert noise_sigma(_u8(np.clip(stripes, 0, 1))) < 1.0
    with pytest.raises(ValueError, match="\\(H, W\\) plane"):
        noise_sigma(np.zeros((4, 4, 3), np.uint8))
    assert noise_sigma(np.zeros((1, 5), np.uint8)) == 0.0


def test_real_frames_are_under_the_gate_and_the_corruption_suites_noise_over_it():
    for dataset in ("RoadScene", "LLVIP", "MSRS"):
        for plane in first_pair_u8(dataset):
            assert noise_sigma(plane) < 2.0  # validation: clean planes 0-1.48
            assert noise_sigma(_suite("gaussian_noise", plane, 0)) > GATE


def test_clean_planes_are_returned_as_they_are_and_noisy_ones_denoised():
    x = _scene(5)
    out, sigma = denoise(x)
    assert out is x and sigma < GATE
    noisy = _noisy(x, 15.0)
    out, sigma = denoise(noisy)
    assert sigma > GATE and out.dtype == np.float32 and out.shape == x.shape
    err = lambda y: float(np.sqrt(np.mean((y - x) ** 2)))  # noqa: E731
    assert err(out) < 0.4 * err(noisy)  # most of the noise gone
    assert noise_sigma(_u8(out)) < GATE  # reads as clean afterwards
    forced, _ = denoise(x, gate=-1.0)  # a clip decided by its first frame: denoised whatever the estimate
    assert forced is not x and np.abs(forced - x).max() < 2 / 255


def _pair(sigma: float = 0.0, seed: int = 6):
    ir = _u8(_noisy(_scene(seed), sigma, seed)) if sigma else _u8(_scene(seed))
    vis = np.repeat(_u8(_scene(seed + 20))[..., None], 3, axis=2)
    return ir, vis


def test_fuser_takes_the_step_from_the_network_and_denoises_before_tiling():
    net = build("fast", denoise=True)
    assert net.config["denoise"] is True and "denoise" not in build("fast").config
    clean, vis = _pair()
    noisy, _ = _pair(15.0)
    for tile in (None, 64):
        on = Fuser(net, device="cpu", tile=tile, overlap=16)
        off = Fuser(net, device="cpu", tile=tile, overlap=16, denoise=False)
        assert on.denoise and not off.denoise
        fused = on.fuse_y(noisy, vis)
        assert on.last_verdicts == {"denoise_ir": True, "denoise_vis": False}
        assert on.last_levels["denoise_ir"] > GATE
        ir_plane, vis_plane = off.planes(noisy, vis)
        np.testing.assert_allclose(fused, off.fuse_planes(denoise(ir_plane)[0], vis_plane), atol=1e-6)
        assert np.abs(fused - off.fuse_y(noisy, vis)).mean() > 0.01
        np.testing.assert_array_equal(on.fuse_y(clean, vis), off.fuse_y(clean, vis))  # clean: untouched
        assert on.last_verdicts == {"denoise_ir": False, "denoise_vis": False}


def test_a_noisy_visible_is_denoised_before_the_veil_lift():
    net = build("fast", denoise=True, vis_veil=0.75)
    ir, vis = _pair()
    noisy_vis = np.repeat(_u8(_noisy(_scene(26), 15.0))[..., None], 3, axis=2)
    fuser = Fuser(net, device="cpu")
    y = fuser.planes(ir, noisy_vis)[1]
    assert fuser.last_verdicts["denoise_vis"] and not fuser.last_verdicts["denoise_ir"]
    bare = Fuser(net, device="cpu", denoise=False)
    assert noise_sigma(_u8(y)) < 0.5 * noise_sigma(_u8(bare.planes(ir, noisy_vis)[1]))


def test_a_clip_level_decision_overrides_the_frame_gates():
    net = build("fast", denoise=True)
    fuser = Fuser(net, device="cpu")
    clean, vis = _pair()
    noisy, _ = _pair(15.0)
    skipped = fuser.fuse_y(noisy, vis, verdicts={"denoise_ir": False, "denoise_vis": False})
    np.testing.assert_array_equal(skipped, Fuser(net, device="cpu", denoise=False).fuse_y(noisy, vis))
    forced = fuser.fuse_y(clean, vis, verdicts={"denoise_ir": True, "denoise_vis": False})
    assert fuser.last_levels["denoise_ir"] < GATE and fuser.last_verdicts["denoise_ir"]
    assert np.abs(forced - fuser.fuse_y(clean, vis)).max() > 0


def test_onnx_carries_the_step(tmp_path):
    pytest.importorskip("onnxruntime")
    from crossfuse.backends import OnnxBackend
    from crossfuse.export import export_onnx

    net = build("fast", denoise=True)
    assert OnnxBackend(export_onnx(net, tmp_path / "dn.onnx", name="dn")).denoise is True
    assert OnnxBackend(export_onnx(build("fast"), tmp_path / "plain.onnx", name="plain")).denoise is False
    noisy, vis = _pair(15.0, seed=7)
    a, b = Fuser(str(tmp_path / "dn.onnx"), device="cpu"), Fuser(net, device="cpu")
    assert np.abs(a.fuse_y(noisy, vis) - b.fuse_y(noisy, vis)).max() < 1e-3 and a.last_verdicts["denoise_ir"]


def test_cli_crossfuse_robust12_declares_the_step_and_no_denoise_gives_crossfuse_robust11(tmp_path):
    """crossfuse-robust12 = crossfuse-robust11's weights and steps + denoising: with --no-denoise the outputs are
    identical, and on a clean pair the step changes nothing."""
    clean, vis = _pair(seed=8)
    noisy, _ = _pair(15.0, seed=8)
    fuse = cli_pairs(tmp_path, {"ir": clean, "noisy": noisy, "vi": vis})
    r12 = ("--model", "crossfuse-robust12")

    for name in ("ir", "noisy"):
        np.testing.assert_array_equal(fuse(name, *r12, "--no-denoise"), fuse(name, "--model", "crossfuse-robust11"))
    np.testing.assert_array_equal(fuse("ir", *r12), fuse("ir", *r12, "--no-denoise"))  # clean: untouched
    assert np.abs(fuse("noisy", *r12) - fuse("noisy", *r12, "--no-denoise")).mean() > 1.0  # noise of 15 grey levels




def test_a_known_noise_level_denoises_what_the_estimate_cannot_see():
    from crossfuse.metrics import compute_metrics

    ir, vis = first_pair_u8("LLVIP")
    noisy_ir, noisy_vis = _suite("correlated_noise", ir, 1), _suite("correlated_noise", vis, 2)
    # the estimate reads the spread noise far under its true level (~7-9 grey levels here) and under the gate
    assert noise_sigma(noisy_ir) < GATE and noise_sigma(noisy_vis) < GATE
    x = noisy_vis.astype(np.float32) / 255
    assert denoise(x)[0] is x
    out, est = denoise(x, level=6.0)
    assert out is not x and est == noise_sigma(noisy_vis)
    gated, known = Fuser("crossfuse-robust16", device="cpu"), Fuser("crossfuse-robust16", device="cpu", noise_level=6)
    f_gated = gated.fuse_y(noisy_ir, noisy_vis)
    assert not gated.last_degraded and not gated.last_verdicts["denoise_ir"] and not gated.last_verdicts["denoise_vis"]
    f_known = known.fuse_y(noisy_ir, noisy_vis)
    assert known.last_degraded and known.last_verdicts["denoise_ir"] and known.last_verdicts["denoise_vis"]
    scores = [compute_metrics(ir, vis, _u8(f), profile="cddfuse", metrics=["MI", "VIF", "SSIM"]) for f in
              (f_gated, f_known)]
    for m in ("MI", "VIF", "SSIM"):  # against the clean sources
        assert scores[1][m] > scores[0][m], (m, scores)


def test_a_known_noise_level_is_checked():
    with pytest.raises(ValueError, match="noise level must be > 0"):
        denoise(_scene(), level=0.0)
    net = build("fast")
    assert Fuser(net, device="cpu", noise_level=5).denoise  # turns the step on for a model that declares none
    with pytest.raises(ValueError, match="denoise=False"):
        Fuser(net, device="cpu", noise_level=5, denoise=False)
    with pytest.raises(ValueError, match="noise_level must be > 0"):
        Fuser(net, device="cpu", noise_level=-1)
