"""Visible veil removal (crossfuse.veil) and its place in the one inference path (Fuser, backends, ONNX, CLI)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli_pairs, first_pair_u8, require_data

from crossfuse.infer import Fuser, visible_dark
from crossfuse.nets import build
from crossfuse.veil import lift_veil, veil_floor


def _scene(seed: int = 0, h: int = 96, w: int = 128) -> np.ndarray:
    """A [0, 1] frame with texture and a 20 x 20 black patch (a dark region wider than the 15-px window)."""
    rng = np.random.default_rng(seed)
    x = (0.3 + 0.6 * rng.random((h, w))).astype(np.float32)
    x[10:30, 10:30] = 0.0
    return x


def test_floor_is_zero_with_a_dark_region_and_the_veil_level_without():
    x = _scene()
    assert veil_floor(x) == 0.0
    veiled = x * (1 - 0.3) + 0.3  # a uniform veil of level 0.3
    assert veil_floor(veiled) == pytest.approx(0.3, abs=1e-6)


def test_lift_inverts_a_uniform_veil_and_keeps_white():
    x = _scene(1)
    veiled = x * (1 - 0.25) + 0.25
    np.testing.assert_allclose(lift_veil(veiled, veil_floor(veiled)), x, atol=1e-6)
    assert lift_veil(np.ones((4, 4)), 0.4).min() == 1.0
    half = lift_veil(veiled, 0.5 * 0.25)  # strength 0.5: half the veil off, black lifted to 0.125 / 0.875
    assert half[10:30, 10:30].max() == pytest.approx(0.125 / 0.875, abs=1e-6)


def test_a_few_dark_pixels_do_not_count_as_a_dark_region():
    veiled = (0.4 + 0.6 * np.random.default_rng(2).random((192, 256))).astype(np.float32)  # no dark region
    assert veil_floor(veiled) == pytest.approx(0.4, abs=0.01)
    veiled[50, 60] = 0.0  # one dead pixel: the 15-px local minimum marks 15 x 15 pixels, < 1 % of this frame
    assert veil_floor(veiled) == pytest.approx(0.4, abs=0.01)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        lift_veil(np.zeros((4, 4)), 1.0)
    with pytest.raises(ValueError, match="\\(H, W\\) plane"):
        veil_floor(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="vis_veil"):
        build("fast", vis_veil=1.5)


def test_dark_channel_is_the_minimum_over_colour_channels():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    y = np.full((8, 8), 0.5, np.float32)
    np.testing.assert_allclose(visible_dark(rgb, y), 50 / 255, atol=1e-7)
    assert visible_dark(rgb[..., 0], y) is y  # gray: its luma is its dark channel


def _pair(seed: int = 3, h: int = 96, w: int = 128):
    rng = np.random.default_rng(seed)
    ir = (rng.random((h, w)) * 255).astype(np.uint8)
    vis = (_scene(seed, h, w) * 0.5 + 0.4) * 255  # veil level 0.4
    return ir, np.round(vis).astype(np.uint8)


def test_fuser_takes_the_strength_from_the_network_and_applies_it_before_tiling():
    net = build("fast", vis_veil=0.75)
    assert net.config["vis_veil"] == 0.75 and "vis_veil" not in build("fast").config
    ir, vis = _pair()
    floor = 0.75 * veil_floor(vis.astype(np.float32) / 255)
    assert floor == pytest.approx(0.75 * 102 / 255, abs=1e-6)
    lifted = np.round(lift_veil(vis.astype(np.float32) / 255, floor) * 255)
    for tile in (None, 64):  # with tiles the level is still the whole frame's, so both sides tile alike
        f = Fuser(net, device="cpu", tile=tile, overlap=16)
        assert f.vis_veil == 0.75
        plain = Fuser(net, device="cpu", tile=tile, overlap=16, vis_veil=0)
        np.testing.assert_allclose(f.fuse_y(ir, vis), plain.fuse_y(ir, lifted), atol=2.5 / 255)
        assert np.abs(f.fuse_y(ir, vis) - plain.fuse_y(ir, vis)).max() > 0.05
    with pytest.raises(ValueError, match="vis_veil"):
        Fuser(net, device="cpu", vis_veil=-0.1)


def test_frames_with_dark_regions_are_fused_as_without_the_step():
    ir, _ = _pair()
    vis = np.round(_scene(4) * 255).astype(np.uint8)
    net = build("fast", vis_veil=1.0)
    np.testing.assert_array_equal(Fuser(net, device="cpu").fuse_y(ir, vis),
                                  Fuser(net, device="cpu", vis_veil=0).fuse_y(ir, vis))


def test_onnx_and_weights_carry_the_strength(tmp_path):
    pytest.importorskip("onnxruntime")
    from crossfuse.backends import OnnxBackend
    from crossfuse.export import export_onnx

    net = build("fast", vis_veil=0.75)
    path = export_onnx(net, tmp_path / "veil.onnx", name="veil")
    assert OnnxBackend(path).vis_veil == 0.75
    ir, vis = _pair(5)
    a = Fuser(str(path), device="cpu").fuse_y(ir, vis)
    b = Fuser(net, device="cpu").fuse_y(ir, vis)
    assert np.abs(a - b).max() < 1e-3
    assert OnnxBackend(export_onnx(build("fast"), tmp_path / "plain.onnx", name="plain")).vis_veil == 0.0


def test_real_frames_roadscene_camera_lifts_its_blacks_llvip_does_not():
    """Why the step matters on RoadScene and is a no-op on LLVIP (docs/training.md H44-H46)."""
    from crossfuse.io import read_pair

    root = require_data("RoadScene")
    stem = "FLIR_00060"  # a RoadScene-val pair (benchmarks/robust_protocol.py --show)
    names = {p.stem: p for p in (root / "vi").iterdir()}
    _, vi = read_pair(next((root / "ir").glob(stem + ".*")), names[stem])
    assert veil_floor(visible_dark(vi, vi.astype(np.float32).mean(axis=-1) / 255)) > 0.2
    _, llvip_vis = first_pair_u8("LLVIP")
    assert veil_floor(llvip_vis.astype(np.float32) / 255) < 0.01


def test_cli_crossfuse_robust9_declares_the_step_and_vis_veil_0_gives_crossfuse_robust8(tmp_path):
    """crossfuse-robust9 = crossfuse-robust8's weights + the step: with --vis-veil 0 the outputs are identical."""
    ir, vis = _pair(6, 120, 160)
    rgb = np.stack([vis, np.clip(vis.astype(int) + 10, 0, 255).astype(np.uint8), vis], axis=-1)
    fuse = cli_pairs(tmp_path, {"ir": ir, "vi": rgb})
    default = fuse("ir", "--model", "crossfuse-robust9")
    off = fuse("ir", "--model", "crossfuse-robust9", "--vis-veil", "0")
    robust8 = fuse("ir", "--model", "crossfuse-robust8")
    np.testing.assert_array_equal(off, robust8)
    assert np.abs(default - robust8).max() > 20  # a 0.4 veil, three quarters of it off


def test_lift_veil_batch_levels_each_sample_by_its_own_floor():
    import torch

    from crossfuse.veil import lift_veil_batch

    dark = torch.from_numpy(_scene(7, 64, 64))[None]  # has a black patch: floor 0, left as it is
    clean = torch.from_numpy(_scene(8, 64, 64))[None]
    veiled = clean * 0.7 + 0.3
    out = lift_veil_batch(torch.stack([dark, veiled]), 1.0)
    torch.testing.assert_close(out[0], dark)
    torch.testing.assert_close(out[1], clean, atol=1e-5, rtol=0)


def test_training_views_are_cut_from_the_raw_crop_and_levelled_after_the_corruption():
    """data.veil: as at inference, the corruption hits the raw frame and the veil step comes after it."""
    import torch

    from crossfuse import augment
    from crossfuse import losses as L
    from crossfuse.veil import lift_veil_batch

    rng = np.random.default_rng(9)
    ir = torch.from_numpy(rng.random((2, 1, 64, 64), dtype=np.float32))
    raw = torch.from_numpy(np.stack([_scene(10, 64, 64) * 0.6 + 0.4, _scene(11, 64, 64)])[:, None])
    ssl = {"corruptions": ["haze"], "severity": 1.0}
    ctx = L.StepContext(ir=ir, vis=lift_veil_batch(raw, 0.75), out={}, generator=torch.Generator().manual_seed(3),
                        ssl=ssl, vis_raw=raw, veil=0.75)
    got = L._views(ctx)
    ref = augment.consistency_views(ir, raw, torch.Generator().manual_seed(3), severity=1.0, corruptions=["haze"])
    torch.testing.assert_close(got.vis_aggr, lift_veil_batch(ref.vis_aggr, 0.75))
    torch.testing.assert_close(got.vis_weak, lift_veil_batch(ref.vis_weak, 0.75))
    torch.testing.assert_close(got.ir_aggr, ref.ir_aggr)
    plain = L._views(L.StepContext(ir=ir, vis=raw, out={}, generator=torch.Generator().manual_seed(3), ssl=ssl))
    torch.testing.assert_close(plain.vis_aggr, ref.vis_aggr)  # without data.veil nothing changes


def test_data_veil_needs_a_network_that_declares_a_strength():
    from crossfuse import config as C

    root = require_data()
    with pytest.raises(C.ConfigError, match="data.veil = true needs a network that declares model.config.vis_veil"):
        C.load_config("tiny", [f'data.root="{root}"', "data.veil=true"])
    cfg = C.load_config("tiny", [f'data.root="{root}"', "data.veil=true", "model.config.vis_veil=0.75"])
    assert cfg["data"]["veil"] is True
