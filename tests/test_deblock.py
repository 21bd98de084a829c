"""JPEG deblocking (crossfuse.deblock) and its place in the one inference path (Fuser, backends, ONNX, CLI)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import cli_pairs, first_pair_u8

from crossfuse.deblock import deblock, ijg_steps, jpeg_quality, recode_average
from crossfuse.infer import Fuser
from crossfuse.nets import build


def _texture(seed: int = 0, h: int = 192, w: int = 256) -> np.ndarray:
    """An 8-bit frame never JPEG-coded: smooth structure, edges and fine texture."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 6)
    base = (base - base.min()) / (base.max() - base.min())
    x = 40 + 150 * base + 20 * rng.random((h, w))
    x[h // 3:h // 2, w // 4:w // 2] += 45  # a bright rectangle: edges off the 8-px grid
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _blockiness(x: np.ndarray) -> float:
    """Mean |step| across the 8-px block boundaries over the mean |step| inside blocks (1 = no block edges)."""
    d = np.abs(np.diff(x.astype(np.float64), axis=1))
    at = np.arange(d.shape[1]) % 8 == 7
    return float(d[:, at].mean() / d[:, ~at].mean())


def test_ijg_steps_follow_the_libjpeg_scaling():
    assert ijg_steps(50) == (11, 12)  # the base table
    assert ijg_steps(10) == (55, 60) and ijg_steps(75) == (6, 6) and ijg_steps(100) == (1, 1)


@pytest.mark.parametrize("quality", [5, 10, 12, 20, 30, 40])
def test_the_quality_of_a_coarse_coding_is_read_back_from_the_pixels(quality):
    for seed in range(4):
        assert jpeg_quality(_jpeg(_texture(seed), quality)) == quality


def test_planes_never_coded_coarsely_read_100():
    x = _texture(1)
    assert jpeg_quality(x) == 100  # never coded
    assert jpeg_quality(_jpeg(x, 75)) == 100  # a camera-grade coding: finer than the limit, not searched for
    noise = np.random.default_rng(0).normal(0, 1, x.shape)
    light = np.clip(_jpeg(x, 10) + 3 * noise, 0, 255).astype(np.uint8)
    assert jpeg_quality(light) == 10  # mild noise after the coding: still read
    strong = np.clip(_jpeg(x, 10) + 12 * noise, 0, 255).astype(np.uint8)
    assert jpeg_quality(strong) == 100  # strong noise hides the quantization: nothing is claimed
    shifted = np.ascontiguousarray(_jpeg(x, 10)[3:, 5:])  # the grid no longer at (0, 0): nothing is claimed
    assert jpeg_quality(shifted) == 100


def test_deblock_leaves_other_planes_as_they_are_and_undoes_block_edges():
    x = _texture(2)
    for plane in (x, _jpeg(x, 75), x.astype(np.uint16), x[:8, :8]):
        out, quality = deblock(plane)
        assert out is plane
    coded = _jpeg(x, 10)
    out, quality = deblock(coded)
    assert quality == 10 and out.dtype == np.uint8
    assert _blockiness(coded) > 1.5 and _blockiness(out) < 0.6 * _blockiness(coded)
    err = lambda y: float(np.abs(y.astype(np.float64) - x).mean())  # noqa: E731
    assert err(out) < 0.95 * err(coded)  # closer to the frame before coding
    np.testing.assert_array_equal(recode_average(coded, 10, shifts=1), _jpeg(coded, 10))  # one shift = re-coding


def test_stored_dataset_jpegs_are_not_deblocked():
    """RoadScene and LLVIP are stored as quality-75 JPEGs: the step must leave them alone."""
    for dataset in ("RoadScene", "LLVIP"):
        ir, vis_y = first_pair_u8(dataset)
        assert jpeg_quality(ir) == 100 and jpeg_quality(vis_y) == 100
        assert jpeg_quality(_jpeg(vis_y, 20)) == 20


def _coded_pair(quality: int = 12, seed: int = 3):
    ir, vis = _texture(seed), _texture(seed + 10)
    rgb = np.stack([vis, np.clip(vis.astype(int) + 12, 0, 255).astype(np.uint8), vis], axis=-1)
    return ir, rgb, _jpeg(ir, quality), _jpeg(rgb, quality)


def test_fuser_takes_the_step_from_the_network_and_deblocks_before_tiling():
    net = build("fast", deblock=True)
    assert net.config["deblock"] is True and "deblock" not in build("fast").config
    ir, rgb, cir, crgb = _coded_pair()
    for tile in (None, 64):
        on = Fuser(net, device="cpu", tile=tile, overlap=16)
        off = Fuser(net, device="cpu", tile=tile, overlap=16, deblock=False)
        assert on.deblock and not off.deblock
        fused = on.fuse_y(cir, crgb)
        assert on.last_quality == (12, 12)
        ir_db = deblock(cir)[0]
        y_db = deblock(_luma(crgb))[0]
        np.testing.assert_allclose(fused, off.fuse_planes(ir_db / 255, y_db / 255), atol=1e-6)
        assert np.abs(fused - off.fuse_y(cir, crgb)).max() > 0.02
        np.testing.assert_array_equal(on.fuse_y(ir, rgb), off.fuse_y(ir, rgb))  # uncoded frames: untouched
        assert on.last_quality == (100, 100)


def _luma(rgb: np.ndarray) -> np.ndarray:
    from crossfuse.infer import visible_y
    from crossfuse.io import quantize

    return quantize(visible_y(rgb) * 255.0)


def test_onnx_and_weights_carry_the_step(tmp_path):
    pytest.importorskip("onnxruntime")
    from crossfuse.backends import OnnxBackend
    from crossfuse.export import export_onnx

    net = build("fast", deblock=True)
    path = export_onnx(net, tmp_path / "deblock.onnx", name="deblock")
    assert OnnxBackend(path).deblock is True
    assert OnnxBackend(export_onnx(build("fast"), tmp_path / "plain.onnx", name="plain")).deblock is False
    _, _, cir, crgb = _coded_pair(20, 5)
    a, b = Fuser(str(path), device="cpu"), Fuser(net, device="cpu")
    assert np.abs(a.fuse_y(cir, crgb) - b.fuse_y(cir, crgb)).max() < 1e-3 and a.last_quality == (20, 20)



def test_cli_crossfuse_robust10_declares_the_step_and_no_deblock_gives_crossfuse_robust9(tmp_path):
    """crossfuse-robust10 = crossfuse-robust9's weights + the step: with --no-deblock the outputs are identical, and
    on sources that were never coded coarsely the step changes nothing."""
    ir, rgb, cir, crgb = _coded_pair(10, 7)  # PNG files: lossless, as coded
    run = cli_pairs(tmp_path, {"plain_ir": ir, "plain_vi": rgb, "coded_ir": cir, "coded_vi": crgb})

    def fuse(prefix: str, *extra: str) -> np.ndarray:
        return run(f"{prefix}_ir", "--model", "crossfuse-robust10", *extra, vi=f"{prefix}_vi")

    for prefix in ("plain", "coded"):
        np.testing.assert_array_equal(fuse(prefix, "--no-deblock"), fuse(prefix, "--model", "crossfuse-robust9"))
    np.testing.assert_array_equal(fuse("plain"), fuse("plain", "--no-deblock"))  # never coded: untouched
    assert np.abs(fuse("coded") - fuse("coded", "--no-deblock")).mean() > 0.5  # quality 10: deblocked


def test_a_higher_limit_searches_down_to_its_own_step():
    x = _texture(9)
    coded = _jpeg(x, 50)
    assert deblock(coded)[0] is coded  # quality 50 is over the default limit (40): not searched for, not touched
    out, quality = deblock(coded, limit=60)
    assert ijg_steps(quality) == ijg_steps(50) and out is not coded  # 50-52 share their first AC steps
