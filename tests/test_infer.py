"""crossfuse.infer / crossfuse.tiling: conventions, sizes, colour, dtypes, IR windows, tiling, real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fusetools import random_net
from conftest import require_data

from crossfuse import io as cio
from crossfuse.infer import Fuser, fuse, normalize_ir, parse_ir_window, parse_memory, resolve_ir_window, visible_y
from crossfuse.nets import build
from crossfuse.synthetic import make_scene
from crossfuse.tiling import run_tiled, tile_spans

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net():
    return random_net("fast", seed=0)


@pytest.fixture(scope="module")
def avg_fuser():
    """The untrained fast net returns exactly the average of its inputs: a golden reference for the plumbing."""
    return Fuser(build("fast").eval(), device="cpu")


class Multiple16(torch.nn.Module):
    """Contract test double: insists on H, W divisible by 16 and returns max(ir, vis_y)."""

    pad_multiple = 16
    config: dict = {}

    def forward(self, ir, vis_y):
        assert ir.shape[-2] % 16 == 0 and ir.shape[-1] % 16 == 0, ir.shape
        return torch.maximum(ir, vis_y)


class WideContext(torch.nn.Module):
    """Test double with a 33-pixel receptive field, zero padding and stride-8 pooling: tiles that are cut without
    enough overlap, or that start off the stride grid, give visibly different results."""

    pad_multiple = 8
    config: dict = {}

    def forward(self, ir, vis_y):
        x = 0.5 * (ir + vis_y)
        blur = torch.nn.functional.avg_pool2d(x, 33, stride=1, padding=16, count_include_pad=True)
        coarse = torch.nn.functional.avg_pool2d(x, 8)
        coarse = torch.nn.functional.interpolate(coarse, scale_factor=8, mode="nearest")
        return (0.5 * blur + 0.5 * coarse).clamp(0, 1)


# --------------------------------------------------------------------------------------------------- conventions


def test_average_net_gives_rounded_average_of_gray_inputs(avg_fuser):
    rng = np.random.default_rng(1)
    ir = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    vi = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    out = avg_fuser(ir, vi)
    assert out.shape == (37, 53) and out.dtype == np.uint8
    exact = (ir.astype(np.float64) + vi) / 2
    assert np.abs(out - exact).max() <= 0.5 + 1e-3  # rounded to the nearest level
    frac = np.abs(exact - np.floor(exact))
    assert np.array_equal(out[frac < 0.5], exact[frac < 0.5])  # integral averages come out exactly
    assert (out[frac > 0.25] > np.floor(exact[frac > 0.25])).any()  # truncation would floor every .5


def test_colour_in_colour_out_with_visible_chroma(avg_fuser):
    sc = make_scene(96, 128, seed=3)
    out = avg_fuser(sc.ir, sc.vis)
    assert out.shape == sc.vis.shape and out.dtype == np.uint8
    ycc_out = cio.rgb_to_ycrcb(out)
    ycc_vis = cio.rgb_to_ycrcb(sc.vis)
    expected_y = (sc.ir.astype(np.float32) + ycc_vis[..., 0]) / 2
    inside = (out > 2).all(-1) & (out < 253).all(-1)  # chroma survives where no channel clipped
    assert inside.mean() > 0.8
    assert np.abs(ycc_out[..., 0] - expected_y)[inside].max() < 1.5
    assert np.abs(ycc_out[..., 1:] - ycc_vis[..., 1:])[inside].max() < 2.5
    gray = avg_fuser(sc.ir, sc.vis, gray=True)
    assert gray.shape == sc.ir.shape
    assert np.abs(gray - expected_y).max() <= 0.5 + 1e-3


def test_no_silent_stretch_and_explicit_stretch(avg_fuser):
    rng = np.random.default_rng(2)
    ir = rng.integers(60, 140, (40, 40), dtype=np.uint8)
    vi = rng.integers(50, 120, (40, 40), dtype=np.uint8)
    plain = avg_fuser(ir, vi)
    assert plain.min() >= 55 and plain.max() <= 130
    stretched = avg_fuser(ir, vi, stretch=True)
    assert stretched.min() == 0 and stretched.max() == 255
    assert np.corrcoef(plain.ravel(), stretched.ravel())[0, 1] > 0.999


def test_output_dtype_follows_visible(avg_fuser):
    rng = np.random.default_rng(4)
    ir = rng.integers(0, 256, (30, 34), dtype=np.uint8)
    vi8 = rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)
    vi16 = vi8.astype(np.uint16) * 257
    out8, out16 = avg_fuser(ir, vi8), avg_fuser(ir, vi16)
    assert out16.dtype == np.uint16 and out16.shape == vi8.shape
    assert np.abs(out16 / 257.0 - out8).max() <= 0.51
    outf = avg_fuser(ir, vi8.astype(np.float32))
    assert outf.dtype == np.float32 and 0 <= outf.min() and outf.max() <= 255
    assert np.abs(outf - out8).max() <= 0.5 + 1e-3
    assert avg_fuser(ir, vi8, dtype=np.uint16).dtype == np.uint16


def test_any_size_padding_crops_back_exactly():
    fz = Fuser(Multiple16(), device="cpu")
    rng = np.random.default_rng(5)
    for h, w in [(1, 1), (7, 300), (33, 17), (130, 97)]:
        ir = rng.integers(0, 256, (h, w), dtype=np.uint8)
        vi = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out = fz(ir, vi, gray=True)
        assert out.shape == (h, w)
        y = np.round(visible_y(vi) * 255)
        assert np.abs(out - np.maximum(ir, y)).max() <= 1  # no padding leaked into the result


def test_three_channel_ir_is_reduced_to_luma(avg_fuser):
    rng = np.random.default_rng(6)
    ir3 = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    vi = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    luma = cio.rgb_to_ycrcb(ir3)[..., 0]
    out = avg_fuser(ir3, vi)
    assert np.abs(out - (luma + vi) / 2).max() <= 0.51
    same = np.repeat(ir3[..., :1], 3, axis=2)  # gray stored as 3 channels = that channel
    assert np.array_equal(avg_fuser(same, vi), avg_fuser(ir3[..., 0], vi))


# --------------------------------------------------------------------------------------------------- IR windows


def test_ir_window_rules():
    rng = np.random.default_rng(7)
    raw = (28000 + rng.normal(0, 400, (64, 64))).astype(np.uint16)
    raw[10:14, 10:14] = 36000  # hot target, 16 px = 0.4 % of the frame
    lo, hi = resolve_ir_window(raw)  # auto: 16-bit -> percentiles 0.5-99.5
    assert (lo, hi) == tuple(np.percentile(raw, (0.5, 99.5)))
    assert resolve_ir_window(raw, "p1,99") == tuple(np.percentile(raw, (1, 99)))
    assert resolve_ir_window(raw, "minmax") == (float(raw.min()), 36000.0)
    assert resolve_ir_window(raw, "fixed:27000,37000") == (27000.0, 37000.0)
    assert resolve_ir_window(raw, "full") == (0.0, 65535.0)
    assert resolve_ir_window(raw.astype(np.uint8) // 2) == (0.0, 255.0)  # auto: 8-bit as is
    unit = normalize_ir(raw, (lo, hi))
    assert unit.dtype == np.float32 and unit.min() == 0.0 and unit.max() == 1.0
    assert np.allclose(unit, np.clip((raw - lo) / (hi - lo), 0, 1), atol=1e-6)
    kelvin = 290 + rng.random((16, 16)).astype(np.float32) * 20  # float outside 0-255 -> percentiles
    assert resolve_ir_window(kelvin)[0] > 255
    for bad in ("p5", "fixed:3,1", "p-1,50", "hot"):
        with pytest.raises(ValueError):
            parse_ir_window(bad)


def test_sixteen_bit_radiometric_ir_end_to_end(avg_fuser):
    rng = np.random.default_rng(8)
    raw = (29000 + rng.normal(0, 300, (48, 64))).astype(np.uint16)
    raw[20:30, 20:30] = 35000
    vi = np.full((48, 64), 40, np.uint8)
    out = avg_fuser(raw, vi)
    assert out.dtype == np.uint8 and out.shape == (48, 64)
    lo, hi = np.percentile(raw, (0.5, 99.5))
    expected = (np.clip((raw - lo) / (hi - lo), 0, 1) * 255 + 40) / 2
    assert np.abs(out - expected).max() <= 0.51
    assert out[20:30, 20:30].min() == round((255 + 40) / 2)  # the hot target saturates the window


def test_bad_inputs_raise_readable_errors(avg_fuser):
    a = np.zeros((10, 12), np.uint8)
    with pytest.raises(ValueError, match="12x10"):
        avg_fuser(a, np.zeros((10, 13), np.uint8))
    with pytest.raises(ValueError, match="int32"):
        avg_fuser(a.astype(np.int32), a)
    with pytest.raises(ValueError, match="RGB"):
        avg_fuser(a, np.zeros((10, 12, 4), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        avg_fuser(np.full((10, 12), np.nan, np.float32), a)
    with pytest.warns(UserWarning, match="0-255 scale"):
        avg_fuser(a, np.full((10, 12), 0.5, np.float32))
    assert parse_memory("1.5GB") == int(1.5 * 2**30) and parse_memory("800MB") == 800 * 2**20
    with pytest.raises(ValueError):
        parse_memory("lots")


# --------------------------------------------------------------------------------------------------- tiling


def test_tile_spans_cover_with_overlap_and_aligned_starts():
    for length, tile, overlap in [(1000, 256, 64), (3000, 1024, 128), (257, 256, 32), (4000, 544, 128)]:
        spans = tile_spans(length, tile, overlap, align=32)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(s % 32 == 0 for s, _ in spans)
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert e0 - s1 >= overlap and s1 > s0


def test_tiles_blend_to_identity_on_a_pointwise_net():
    rng = np.random.default_rng(9)
    ir = rng.random((300, 410), dtype=np.float32)
    vi = rng.random((300, 410), dtype=np.float32)
    out = run_tiled(lambda a, b: 0.3 * a + 0.7 * b, ir, vi, tile=128, overlap=48, multiple=2, align=32)
    assert out.shape == ir.shape
    assert np.abs(out - (0.3 * ir + 0.7 * vi)).max() < 1e-5  # weights sum to one everywhere


def test_tiled_matches_untiled_away_from_borders():
    sc = make_scene(600, 800, seed=11)
    net = random_net("fast", seed=0, std=0.1)  # strongly context-dependent random network
    whole = Fuser(net, device="cpu", max_memory="8GB")
    tiled = Fuser(net, device="cpu", tile=384, overlap=128)
    a = whole(sc.ir, sc.vis, gray=True).astype(np.int32)
    b = tiled(sc.ir, sc.vis, gray=True).astype(np.int32)
    assert whole.last_tiles == 0 and tiled.last_tiles >= 6
    assert np.abs(a - (sc.ir.astype(np.int32) + visible_y(sc.vis) * 255) / 2).mean() > 3  # not just an average
    assert np.abs(a - b)[16:-16, 16:-16].max() <= 1


def test_tiles_need_overlap_and_stride_alignment():
    rng = np.random.default_rng(10)
    ir = rng.random((300, 420), dtype=np.float32)
    vi = rng.random((300, 420), dtype=np.float32)
    whole = Fuser(WideContext(), device="cpu", max_memory="8GB").fuse_planes(ir, vi)
    good = Fuser(WideContext(), device="cpu", tile=160, overlap=64).fuse_planes(ir, vi)
    assert np.abs(whole - good)[16:-16, 16:-16].max() < 1e-5
    from crossfuse.infer import TorchBackend

    runner = TorchBackend(WideContext(), "cpu")
    thin = run_tiled(runner, ir, vi, tile=216, overlap=0, multiple=8, align=8)  # too little overlap
    assert np.abs(whole - thin)[16:-16, 16:-16].max() > 0.01
    off_grid = run_tiled(runner, ir, vi, tile=160, overlap=64, multiple=8, align=2)  # starts off the stride grid
    assert np.abs(whole - off_grid)[16:-16, 16:-16].max() > 0.01


def test_memory_budget_chooses_tiles(net):
    fz = Fuser(net, device="cpu", max_memory="256MB")
    tile = fz.plan_tile(3000, 4000)
    assert tile is not None and tile % fz.align == 0 and 2 * (fz.overlap + fz.align) <= tile < 3000
    assert tile * tile * fz.runner.bytes_per_pixel() <= 256 * 2**20
    assert Fuser(net, device="cpu", max_memory="4GB").plan_tile(480, 640) is None
    sc = make_scene(512, 704, seed=12)  # ~40 MB of estimated activations + ~9 MB of image planes
    small = Fuser(net, device="cpu", max_memory="24MB")
    out = small(sc.ir, sc.vis)
    assert small.last_tiles > 1 and out.shape == sc.vis.shape


# --------------------------------------------------------------------------------------------------- API


def test_fuse_function_and_fuser_agree(net):
    sc = make_scene(64, 96, seed=13)
    assert np.array_equal(fuse(sc.ir, sc.vis, net, device="cpu"), Fuser(net, device="cpu")(sc.ir, sc.vis))
    assert fuse(sc.ir, sc.vis, net, device="cpu", gray=True).shape == sc.ir.shape


def test_top_level_exports():
    import crossfuse

    assert crossfuse.Fuser is Fuser
    assert callable(crossfuse.fuse)


# --------------------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize("dataset,count,colour", [("TNO", 3, False), ("RoadScene", 3, True), ("LLVIP", 2, True)])
def test_real_pairs_keep_size_and_colour(net, dataset, count, colour):
    root = require_data(dataset)
    matched = cio.match_folders({"ir": root / "ir", "vi": root / "vi"})
    fz = Fuser(net, device="cpu")
    for stem, files in matched.items[:: max(1, len(matched.items) // count)][:count]:
        ir, vi = cio.read_image(files["ir"]), cio.read_image(files["vi"])
        assert (vi.ndim == 3) == colour, stem
        out = fz(ir, vi)
        assert out.shape == vi.shape and out.dtype == vi.dtype, stem
        assert fz(ir, vi, gray=True).shape == vi.shape[:2]
        if dataset == "LLVIP":
            assert vi.shape[:2] == (1024, 1280)


class FakeGpuRunner:
    """A 'GPU' backend that runs out of memory above 450x450 pixels (tests the fallback without a GPU); it follows
    the :class:`crossfuse.backends.Backend` protocol."""

    name = "fake-gpu"
    pad_multiple = 1

    def __init__(self):
        self.freed = 0

    def __call__(self, a, b):
        if a.size > 450 * 450:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 0.25 * a + 0.75 * b

    def is_oom(self, exc):
        return "out of memory" in str(exc)

    def free_cache(self):
        self.freed += 1

    def bytes_per_pixel(self):
        return 100.0

    def device_budget(self):
        return None

    def synchronize(self):
        pass


def test_gpu_out_of_memory_falls_back_to_tiles():
    fz = Fuser(build("fast").eval(), device="cpu", max_memory="64GB")
    fz.runner = FakeGpuRunner()
    rng = np.random.default_rng(14)
    ir, vi = rng.random((600, 800), dtype=np.float32), rng.random((600, 800), dtype=np.float32)
    out = fz.fuse_planes(ir, vi)
    assert fz.last_tiles > 1 and fz.runner.freed >= 1
    assert np.abs(out - (0.25 * ir + 0.75 * vi)).max() < 1e-5
    from crossfuse.backends import Backend, OnnxBackend, TorchBackend

    assert isinstance(fz.runner, FakeGpuRunner)  # swapped in above; the real backends share its interface:
    for cls in (TorchBackend, OnnxBackend, FakeGpuRunner):
        assert all(callable(getattr(cls, m, None)) for m in ("__call__", "bytes_per_pixel", "device_budget",
                                                             "is_oom", "free_cache", "synchronize")), cls
    torch_backend = TorchBackend(build("fast").eval(), "cpu")
    assert all(hasattr(torch_backend, a) for a in Backend.__annotations__) and torch_backend.name == "torch"
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not torch_backend.is_oom(oom)  # on the CPU an OOM is not retried


def test_shipped_model_tiled_matches_untiled_on_llvip():
    models = pytest.importorskip("crossfuse.models", reason="crossfuse.models not built yet")
    if not models.weights_path(models.DEFAULT_MODEL).is_file():
        pytest.skip(f"shipped weights missing: {models.weights_path(models.DEFAULT_MODEL)}")
    root = require_data("LLVIP")
    stem, files = cio.match_folders({"ir": root / "ir", "vi": root / "vi"}).items[0]
    ir, vi = cio.read_image(files["ir"]), cio.read_image(files["vi"])
    net = models.load_model(models.DEFAULT_MODEL)
    whole = Fuser(net, device="cpu", max_memory="8GB")(ir, vi).astype(np.int32)
    tiler = Fuser(net, device="cpu", tile=512)
    tiled = tiler(ir, vi).astype(np.int32)
    assert tiler.last_tiles >= 9 and whole.shape == vi.shape
    assert np.abs(whole - tiled)[16:-16, 16:-16].max() <= 1, stem
