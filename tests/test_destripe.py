"""IR destriping (crossfuse.destripe) and its place in the one inference path (Fuser, backends, ONNX, CLI)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import cli_pairs, first_pair_u8

from crossfuse.destripe import GATE, column_offsets, destripe, stripe_spread
from crossfuse.infer import Fuser
from crossfuse.nets import build


def _scene(seed: int = 0, h: int = 160, w: int = 224) -> np.ndarray:
    """An IR-like [0, 1] plane: smooth warm blobs, an edge, mild sensor noise; no stripes."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 8)
    x = 0.2 + 0.5 * (x - x.min()) / (x.max() - x.min())
    x[h // 4:h // 2, w // 3:w // 2] += 0.2
    return np.clip(x + rng.normal(0, 0.01, (h, w)).astype(np.float32), 0, 1)


def _striped(x: np.ndarray, col_std: float = 0.045, row_std: float = 0.015, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = rng.normal(0, col_std, (1, x.shape[1]))
    rows = rng.normal(0, row_std, (x.shape[0], 1))
    return np.clip(x + cols + rows, 0, 1).astype(np.float32)


def test_clean_planes_are_under_the_gate_and_returned_as_they_are():
    for seed in range(3):
        x = _scene(seed)
        assert stripe_spread(x) < 2.0  # validation IR: 0.04-2.5 grey levels
        out, spread = destripe(x)
        assert out is x and spread < GATE


def test_striped_planes_lose_their_column_and_row_offsets():
    x = _scene(3)
    s = _striped(x)
    assert stripe_spread(s) > GATE  # columns of std 0.045 (11.5 grey levels)
    out, spread = destripe(s)
    assert spread > GATE and out.dtype == np.float32
    err = lambda y: float(np.sqrt(np.mean((y - x) ** 2)))  # noqa: E731
    assert err(out) < 0.5 * err(s)  # most of the pattern gone (the smaller-residual estimate is conservative)
    assert stripe_spread(out) < 2.0  # as a clean plane
    rows_left = np.median(out - cv2.blur(out, (1, 15), borderType=cv2.BORDER_REFLECT), axis=1)
    assert float(np.std(rows_left)) < 0.75 * 0.015  # rows are taken off too, in part (they were 0.015)


def test_column_offsets_follow_a_known_pattern_and_bad_input_raises():
    x = _scene(4)
    pattern = np.zeros(x.shape[1], np.float32)
    pattern[::7] = 0.1  # every 7th column 25 grey levels bright
    est = column_offsets(x + pattern[None, :])
    assert np.corrcoef(est, pattern)[0, 1] > 0.95
    with pytest.raises(ValueError, match="\\(H, W\\) plane"):
        destripe(np.zeros((4, 4, 3), np.float32))
    tiny = np.zeros((8, 8), np.float32)
    assert destripe(tiny)[0] is tiny


def test_real_ir_is_under_the_gate_and_the_corruption_suites_stripes_over_it():
    import torch

    from crossfuse.corruptions import corrupt

    for dataset in ("RoadScene", "LLVIP"):
        ir, _ = first_pair_u8(dataset)
        x = ir.astype(np.float32) / 255
        assert stripe_spread(x) < 3.0
        g = torch.Generator().manual_seed(0)
        s = corrupt("stripe_noise", torch.from_numpy(x)[None, None], 1.5, g, "ir")[0, 0].numpy()
        assert stripe_spread(s) > GATE


def _pair(seed: int = 5):
    x = _scene(seed)
    vis = np.round(_scene(seed + 20)[..., None].repeat(3, axis=2) * 255).astype(np.uint8)
    return np.round(x * 255).astype(np.uint8), np.round(_striped(x) * 255).astype(np.uint8), vis


def test_fuser_takes_the_step_from_the_network_and_destripes_before_tiling():
    net = build("fast", destripe=True)
    assert net.config["destripe"] is True and "destripe" not in build("fast").config
    ir, striped, vis = _pair()
    for tile in (None, 64):
        on = Fuser(net, device="cpu", tile=tile, overlap=16)
        off = Fuser(net, device="cpu", tile=tile, overlap=16, destripe=False)
        assert on.destripe and not off.destripe
        fused = on.fuse_y(striped, vis)
        assert on.last_stripe > GATE
        ir_plane, vis_plane = off.planes(striped, vis)
        np.testing.assert_allclose(fused, off.fuse_planes(destripe(ir_plane)[0], vis_plane), atol=1e-6)
        assert np.abs(fused - off.fuse_y(striped, vis)).max() > 0.02
        np.testing.assert_array_equal(on.fuse_y(ir, vis), off.fuse_y(ir, vis))  # unstriped: untouched


def test_onnx_and_weights_carry_the_step(tmp_path):
    pytest.importorskip("onnxruntime")
    from crossfuse.backends import OnnxBackend
    from crossfuse.export import export_onnx

    net = build("fast", destripe=True, deblock=True, vis_veil=0.5)
    onnx = OnnxBackend(export_onnx(net, tmp_path / "steps.onnx", name="steps"))
    assert (onnx.destripe, onnx.deblock, onnx.vis_veil) == (True, True, 0.5)
    plain = OnnxBackend(export_onnx(build("fast"), tmp_path / "plain.onnx", name="plain"))
    assert (plain.destripe, plain.deblock, plain.vis_veil) == (False, False, 0.0)
    _, striped, vis = _pair(6)
    a, b = Fuser(str(tmp_path / "steps.onnx"), device="cpu"), Fuser(net, device="cpu")
    assert np.abs(a.fuse_y(striped, vis) - b.fuse_y(striped, vis)).max() < 1e-3 and a.last_stripe > GATE


def test_cli_crossfuse_robust11_declares_the_step_and_no_destripe_gives_crossfuse_robust10(tmp_path):
    """crossfuse-robust11 = crossfuse-robust10's weights and steps + destriping: with --no-destripe the outputs are
    identical, and on an unstriped IR frame the step changes nothing."""
    ir, striped, vis = _pair(7)
    fuse = cli_pairs(tmp_path, {"ir": ir, "striped": striped, "vi": vis})

    for name in ("ir", "striped"):
        np.testing.assert_array_equal(fuse(name, "--model", "crossfuse-robust11", "--no-destripe"),
                                      fuse(name, "--model", "crossfuse-robust10"))
    r11 = ("--model", "crossfuse-robust11")
    np.testing.assert_array_equal(fuse("ir", *r11), fuse("ir", *r11, "--no-destripe"))  # unstriped: untouched
    assert np.abs(fuse("striped", *r11) - fuse("striped", *r11, "--no-destripe")).mean() > 1.0  # columns of 11 levels


def test_constant_borders_are_left_out_and_left_as_they_are():
    """A box mean across a black border reads the border's edge as a ramp of column offsets (a 'stripe' pattern of
    tens of grey levels): the border is kept out of the estimate and untouched."""
    x = _scene(8)
    framed = np.zeros((x.shape[0] + 20, x.shape[1] + 24), np.float32)  # a black frame, as some cameras write
    framed[8:-12, 10:-14] = x
    out, spread = destripe(framed)
    assert out is framed and spread == pytest.approx(stripe_spread(x), abs=1e-9)
    framed[8:-12, 10:-14] = _striped(x)
    out, spread = destripe(framed)
    assert spread > GATE
    np.testing.assert_array_equal(out[:8], 0)
    np.testing.assert_array_equal(out[:, :10], 0)
    np.testing.assert_array_equal(out[-12:], 0)
    np.testing.assert_array_equal(out[:, -14:], 0)
    np.testing.assert_array_equal(out[8:-12, 10:-14], destripe(_striped(x))[0])


def test_eval_model_corrupts_before_the_input_steps():
    """benchmarks/eval_model.py --corrupt: the corruption comes first and the model's steps after it, so a striped
    input is destriped when the network declares the step."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import eval_model

    net = build("fast", destripe=True)
    ir, _, vis = _pair(9)
    on, off = Fuser(net, device="cpu"), Fuser(net, device="cpu", destripe=False)
    a = eval_model.fuse(on, ir, vis, ("stripe_noise", 2.0, 0)).astype(int)
    assert on.last_stripe > GATE
    b = eval_model.fuse(off, ir, vis, ("stripe_noise", 2.0, 0)).astype(int)
    assert np.abs(a - b).mean() > 0.5
    np.testing.assert_array_equal(eval_model.fuse(on, ir, vis), eval_model.fuse(off, ir, vis))  # clean: untouched


def test_a_clip_level_decision_overrides_the_frame_gate():
    net = build("fast", destripe=True)
    fuser = Fuser(net, device="cpu")
    ir, striped, vis = _pair(10)
    fuser.fuse_y(striped, vis)
    assert fuser.last_striped
    fuser.fuse_y(ir, vis)
    assert not fuser.last_striped
    off_fuser = Fuser(net, device="cpu", destripe=False)
    off_fuser.fuse_y(striped, vis)
    assert not off_fuser.last_striped
    np.testing.assert_array_equal(fuser.fuse_y(striped, vis, verdicts={"destripe": False}),
                                  Fuser(net, device="cpu", destripe=False).fuse_y(striped, vis))
    forced = fuser.fuse_y(ir, vis, verdicts={"destripe": True})  # under the gate, destriped anyway (a clip that
    assert fuser.last_stripe < GATE and fuser.last_striped  # starts striped)
    assert np.abs(forced - fuser.fuse_y(ir, vis)).max() > 0
