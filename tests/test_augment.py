"""crossfuse.augment / crossfuse.corruptions: registry, ranges, determinism, severity scales, views, schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from crossfuse import augment as A
from crossfuse import corruptions as C

torch.set_num_threads(1)
NAMES = A.list_corruptions()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(b: int = 4, c: int = 3, h: int = 40, w: int = 48, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    # smooth content plus texture, strictly inside (0, 1)
    g = gen(seed)
    y = torch.linspace(0, 1, h).view(1, 1, h, 1)
    x = torch.linspace(0, 1, w).view(1, 1, 1, w)
    base = 0.2 + 0.5 * (0.5 + 0.5 * torch.sin(6 * x + 4 * y))
    return (base + 0.2 * torch.rand((b, c, h, w), generator=g)).clamp(0.01, 0.99).to(dtype)


def test_registry_names_and_errors():
    assert NAMES == ["gaussian_noise", "poisson_noise", "blur", "low_light", "contrast", "haze", "jpeg",
                     "stripe_noise", "misregistration", "correlated_noise", "column_fpn"]
    assert list(C.AUGMENT_POOL) + list(C.HELD_OUT) == NAMES and set(A.MODALITY_OF) == set(NAMES)
    assert A.CORRUPTIONS is C.CORRUPTIONS
    with pytest.raises(KeyError, match="valid names: gaussian_noise, poisson_noise"):
        A.corrupt("gauss", batch(), 1.0)
    with pytest.raises(ValueError, match="severity"):
        A.corrupt("blur", batch(), -1.0)
    with pytest.raises(ValueError, match="modality"):
        A.corrupt("blur", batch(), 1.0, modality="rgb")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        A.corrupt("blur", torch.rand(3, 8, 8), 1.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_corruption_shape_range_identity_determinism(name, dtype):
    x = batch(dtype=dtype)
    assert torch.equal(A.corrupt(name, x, 0.0, gen()), x)  # severity 0: exact identity
    y1 = A.corrupt(name, x, 1.5, gen(7))
    y2 = A.corrupt(name, x, 1.5, gen(7))
    y3 = A.corrupt(name, x, 1.5, gen(8))
    assert y1.shape == x.shape and y1.dtype == dtype
    assert float(y1.min()) >= 0.0 and float(y1.max()) <= 1.0
    assert torch.equal(y1, y2)  # seeded -> reproducible
    assert not torch.equal(y1, y3)  # another seed -> another draw
    assert float((y1 - x).abs().mean()) > 1e-3  # it does something


@pytest.mark.parametrize("name", NAMES)
def test_per_sample_randomness_and_severity_growth(name):
    one = batch(b=1, c=1)
    x = one.repeat(4, 1, 1, 1)  # four identical samples
    y = A.corrupt(name, x, 1.0, gen(3), modality="ir")
    for i in range(1, 4):
        assert not torch.equal(y[0], y[i]), f"{name}: samples 0 and {i} got identical corruptions"
    err = [float((A.corrupt(name, x, s, gen(5), modality="ir") - x).abs().mean()) for s in (0.5, 1.0, 2.0)]
    assert err[0] < err[1] < err[2], f"{name}: error does not grow with severity: {err}"


def test_physical_scales():
    flat = torch.full((64, 1, 32, 32), 0.5, dtype=torch.float64)
    # gaussian noise: std 0.04 * severity, per-sample factor in [0.8, 1.2]
    n = A.corrupt("gaussian_noise", flat, 1.0, gen()) - 0.5
    stds = n.std(dim=(1, 2, 3))
    assert 0.04 * 0.75 < float(stds.min()) and float(stds.max()) < 0.04 * 1.25
    assert abs(float(stds.mean()) - 0.04) < 0.004
    # low light at severity 1: 0.5 -> gain * 0.5 ** gamma with gamma 1 + 0.8 j, gain 1 / (1 + 0.5 j), j in [0.8, 1.2]
    out = A.corrupt("low_light", flat, 1.0, gen())[:, 0, 0, 0]
    lo, hi = 0.5 ** (1 + 0.8 * 1.2) / (1 + 0.6), 0.5 ** (1 + 0.8 * 0.8) / (1 + 0.4)
    assert float(out.min()) >= lo - 1e-12 and float(out.max()) <= hi + 1e-12
    # contrast: severity 1 divides the deviation from the mean by 1 + j
    x = batch(b=8, c=1, dtype=torch.float64)
    y = A.corrupt("contrast", x, 1.0, gen())
    ratio = (y.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3)))
    assert float(ratio.min()) > 1 / 2.2 - 1e-9 and float(ratio.max()) < 1 / 1.8 + 1e-9
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    # jpeg quality table
    assert [C.jpeg_quality(s) for s in (0.5, 1, 2, 3, 10)] == [55, 30, 9, 3, 2]
    # haze hits IR far less than VIS
    dv = (A.corrupt("haze", x, 1.0, gen(), "vis") - x).abs().mean()
    di = (A.corrupt("haze", x, 1.0, gen(), "ir") - x).abs().mean()
    assert float(di) < 0.4 * float(dv)


def test_jpeg_matches_opencv_round_trip():
    import cv2

    x = batch(b=2, c=3, h=32, w=32, dtype=torch.float64)
    y = A.corrupt("jpeg", x, 1.0, gen(4))
    q = [C.jpeg_quality(1.0 * float(j)) for j in C.jitter(2, gen(4), x)]
    for i in range(2):
        rgb = np.clip(np.round(x[i].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), q[i]])
        ref = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal((y[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), ref)


def test_stripe_noise_is_column_structured():
    x = torch.full((2, 1, 64, 64), 0.5, dtype=torch.float64)
    n = A.corrupt("stripe_noise", x, 2.0, gen()) - 0.5
    col_spread = n.mean(dim=2).std()  # offsets per column
    row_spread = n.mean(dim=3).std()  # offsets per row (weaker by design)
    assert float(col_spread) > 2 * float(row_spread)
    # the same column offset on every row (up to the row term)
    resid = n - n.mean(dim=2, keepdim=True) - n.mean(dim=3, keepdim=True) + n.mean(dim=(2, 3), keepdim=True)
    assert float(resid.abs().max()) < 1e-9


def test_warp_rigid_integer_shift_matches_roll():
    x = torch.rand(2, 1, 20, 24, generator=gen(), dtype=torch.float64)
    shift = torch.tensor([[3.0, -2.0], [0.0, 1.0]], dtype=torch.float64)  # (dx, dy): content moves by +d
    y = C.warp_rigid(x, shift, torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(y[0, :, :-2, 3:], torch.roll(x[0], shifts=(-2, 3), dims=(1, 2))[:, :-2, 3:], atol=1e-9)
    assert torch.allclose(y[1, :, 1:], x[1, :, :-1], atol=1e-9)


def test_gaussian_blur_matches_scipy_correlation():
    x = torch.rand(2, 1, 30, 40, generator=gen(), dtype=torch.float64)
    sig = torch.tensor([0.7, 3.0], dtype=torch.float64)
    y = C.gaussian_blur(x, sig, (9, 21))  # 9 wide, 21 high
    for i, s in enumerate(sig.tolist()):
        kx = np.exp(-0.5 * (np.arange(-4, 5) / s) ** 2)
        ky = np.exp(-0.5 * (np.arange(-10, 11) / s) ** 2)
        k2 = np.outer(ky / ky.sum(), kx / kx.sum())
        ref = ndimage.correlate(x[i, 0].numpy(), k2, mode="mirror")
        assert np.allclose(y[i, 0].numpy(), ref, atol=1e-12)


def test_paper_code_view_and_loss():
    fused = batch(b=6, c=1, h=64, w=64).requires_grad_(True)
    weak, aggr = A.paper_code_view(fused, gen(2))
    assert weak.shape == aggr.shape == (6, 1, 32, 32)
    # each weak view is a 32x32 window of its own sample
    f = fused.detach()
    for i in range(6):
        win = f[i, 0].unfold(0, 32, 1).unfold(1, 32, 1)
        hits = (win == weak[i, 0].detach()).all(dim=-1).all(dim=-1).nonzero()
        assert len(hits) >= 1
    w2, _ = A.paper_code_view(f, gen(2))
    assert torch.equal(w2, weak.detach())
    loss = A.paper_code_loss(fused, gen(2))
    assert torch.allclose(loss, ((weak - aggr) ** 2).mean())
    loss.backward()
    assert fused.grad is not None and float(fused.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="does not fit"):
        A.paper_code_view(torch.rand(1, 1, 20, 40))


def test_consistency_views_misregister_ir_moves_only_the_ir():
    """misregister="ir": every aggressive view's misregistration moves the IR (the visible frame is the output's
    geometry), the rest of the draw is the default's, and an unknown value is refused."""
    ir, vis = batch(b=8, c=1, h=56, w=60, seed=4), batch(b=8, c=3, h=56, w=60, seed=5)
    either = A.consistency_views(ir, vis, gen(3), crop=40, severity=1.0)
    only_ir = A.consistency_views(ir, vis, gen(3), crop=40, severity=1.0, misregister="ir")
    assert {a[0] for a in either.applied} == {"misregistration@ir", "misregistration@vis"}  # the default moves both
    assert all(a[0] == "misregistration@ir" for a in only_ir.applied)
    assert [a[1:] for a in only_ir.applied] == [a[1:] for a in either.applied]  # same corruptions drawn after it
    assert torch.equal(only_ir.ir_weak, either.ir_weak) and torch.equal(only_ir.vis_weak, either.vis_weak)
    for i, a in enumerate(only_ir.applied):
        if not any(c.endswith("@vis") for c in a[1:]):  # nothing else hit the visible: it is the weak view
            assert torch.equal(only_ir.vis_aggr[i], only_ir.vis_weak[i])
    # with misregistration alone in the pool: the visible is never moved, the IR is moved as the default moves it
    either = A.consistency_views(ir, vis, gen(3), crop=40, severity=1.0, corruptions=["misregistration"])
    only_ir = A.consistency_views(ir, vis, gen(3), crop=40, severity=1.0, corruptions=["misregistration"],
                                  misregister="ir")
    assert torch.equal(only_ir.vis_aggr, only_ir.vis_weak) and not torch.equal(only_ir.ir_aggr, only_ir.ir_weak)
    moved = [i for i, a in enumerate(either.applied) if a == ("misregistration@ir",)]
    assert moved and all(torch.equal(only_ir.ir_aggr[i], either.ir_aggr[i]) for i in moved)
    with pytest.raises(ValueError, match="misregister"):
        A.consistency_views(ir, vis, gen(3), crop=40, misregister="vis")


def test_consistency_views_geometry_and_corruptions():
    ir, vis = batch(b=6, c=1, h=56, w=60, seed=4), batch(b=6, c=3, h=56, w=60, seed=5)
    v = A.consistency_views(ir, vis, gen(1), crop=40, severity=1.0)
    assert isinstance(v, A.Views)
    assert v.ir_weak.shape == v.ir_aggr.shape == (6, 1, 40, 40)
    assert v.vis_weak.shape == v.vis_aggr.shape == (6, 3, 40, 40)
    top, left, h, w = v.region
    assert top == left and 0 < top < 10 and h == w == 40 - 2 * top
    for i, applied in enumerate(v.applied):
        assert applied[0].startswith("misregistration@") and 2 <= len(applied) <= 5
    # weak views are (possibly flipped) windows of the input, at the same place for IR and VIS
    for i in range(6):
        found = False
        for flip in (False, True):
            wv = v.ir_weak[i, 0].flip(-1) if flip else v.ir_weak[i, 0]
            for y in range(17):
                for x in range(21):
                    if torch.equal(ir[i, 0, y:y + 40, x:x + 40], wv):
                        vv = v.vis_weak[i].flip(-1) if flip else v.vis_weak[i]
                        assert torch.equal(vis[i, :, y:y + 40, x:x + 40], vv)
                        found = True
        assert found
    # deterministic under a seed, different samples get different crops/corruptions
    v2 = A.consistency_views(ir, vis, gen(1), crop=40, severity=1.0)
    assert torch.equal(v.vis_aggr, v2.vis_aggr) and torch.equal(v.ir_aggr, v2.ir_aggr) and v.applied == v2.applied
    assert len(set(v.applied)) > 1
    # severity 0: aggressive == weak, full region
    v0 = A.consistency_views(ir, vis, gen(1), crop=40, severity=0.0)
    assert torch.equal(v0.ir_aggr, v0.ir_weak) and torch.equal(v0.vis_aggr, v0.vis_weak)
    assert v0.region == (0, 0, 40, 40)


def test_consistency_views_misregistration_hits_one_modality():
    ir, vis = batch(b=8, c=1, seed=4), batch(b=8, c=1, seed=5)
    v = A.consistency_views(ir, vis, gen(9), crop=None, severity=1.0, corruptions=["misregistration"])
    for i, applied in enumerate(v.applied):
        assert len(applied) == 1
        moved, still = ("ir", "vis") if applied[0].endswith("@ir") else ("vis", "ir")
        assert torch.equal(getattr(v, f"{still}_aggr")[i], getattr(v, f"{still}_weak")[i])
        assert not torch.equal(getattr(v, f"{moved}_aggr")[i], getattr(v, f"{moved}_weak")[i])
    v = A.consistency_views(ir, vis, gen(9), severity=1.0, corruptions=["stripe_noise", "low_light"])
    assert v.region == (0, 0, 40, 48)
    for applied in v.applied:  # stripe noise only on IR, low light only on VIS
        assert set(applied) <= {"stripe_noise@ir", "low_light@vis"} and 1 <= len(applied) <= 2
    with pytest.raises(KeyError, match="valid names"):
        A.consistency_views(ir, vis, corruptions=["fog"])


def test_consistency_loss_region_and_gradient():
    ir, vis = batch(b=3, c=1, h=48, w=48), batch(b=3, c=3, h=48, w=48)
    v = A.consistency_views(ir, vis, gen(), crop=32)
    fw = torch.rand(3, 1, 32, 32, requires_grad=True)
    fa = torch.rand(3, 1, 32, 32, requires_grad=True)
    a, b = A.shared_region(fw, fa, v)
    top, left, h, w = v.region
    assert a.shape == b.shape == (3, 1, h, w) and torch.equal(a, fw[..., top:top + h, left:left + w])
    loss = A.consistency_loss(fw, fa, v)
    assert torch.allclose(loss, (a - b).abs().mean())
    loss.backward()
    assert fw.grad is None or float(fw.grad.abs().sum()) == 0  # the weak output is the (detached) target
    assert float(fa.grad.abs().sum()) > 0
    assert float(A.consistency_loss(fw, fw.detach().clone(), v)) == 0
    with pytest.raises(ValueError):
        A.shared_region(fw, fa[..., :30], v)


def test_cosine_weight_schedule():
    start, n = 40, 120
    assert A.cosine_weight(0, start, n) == 0.0 and A.cosine_weight(39, start, n) == 0.0
    assert A.cosine_weight(40, start, n) == pytest.approx(0.1)
    assert A.cosine_weight(100, start, n) == pytest.approx(0.05)
    assert A.cosine_weight(70, start, n) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)) / 2)
    assert A.cosine_weight(160, start, n) == 0.0 and A.cosine_weight(500, start, n) == 0.0
    w = [A.cosine_weight(e, start, n) for e in range(start, start + n + 5)]
    assert all(a >= b for a, b in zip(w, w[1:]))  # monotone non-increasing over phase II (the reference rose again)
    assert A.cosine_weight(7, 7, 10, beta0=0.3) == pytest.approx(0.3)  # counted from the start of phase II
    with pytest.raises(ValueError):
        A.cosine_weight(0, 0, 0)


def test_held_out_corruptions_scales_and_structure():
    flat = torch.full((64, 1, 48, 48), 0.5, dtype=torch.float64)
    # correlated noise: std 0.03 * severity * sqrt(0.2 + 0.8 x) per sample (jitter in [0.8, 1.2]), and correlated
    n = A.corrupt("correlated_noise", flat, 1.0, gen()) - 0.5
    stds = n.std(dim=(1, 2, 3))
    nominal = 0.03 * math.sqrt(0.2 + 0.8 * 0.5)
    assert 0.75 * nominal < float(stds.min()) and float(stds.max()) < 1.25 * nominal
    neighbour = float(torch.corrcoef(torch.stack([n[..., :-1].flatten(), n[..., 1:].flatten()]))[0, 1])
    assert neighbour > 0.5  # white noise would give ~0
    bright = A.corrupt("correlated_noise", torch.full_like(flat, 0.9), 1.0, gen()) - 0.9
    assert float(bright.std()) > 1.2 * float(n.std())  # brighter pixels are noisier
    # column FPN: every column is an affine map of the input (its own gain and offset) plus a drift shared by all
    x = batch(b=2, c=1, h=48, w=64, dtype=torch.float64)
    y = A.corrupt("column_fpn", x, 1.0, gen(2), modality="ir")
    for i in range(2):
        # y - x = s g_c x + s o_c + drift(row): with the drift taken out (column 0's residual after its own
        # gain), each column is an exact affine map of x
        drift = y[i, 0, :, 0] - x[i, 0, :, 0]
        gains = []
        for c in (3, 30, 60):
            a = torch.stack([x[i, 0, :, c] - x[i, 0, :, 0], x[i, 0, :, 0], torch.ones(48, dtype=torch.float64)], 1)
            target = (y[i, 0, :, c] - x[i, 0, :, c] - drift)[:, None]
            sol = torch.linalg.lstsq(a, target).solution
            assert float((a @ sol - target).abs().max()) < 1e-9
            gains.append(float(sol[0, 0]))
        assert max(gains) - min(gains) > 1e-3  # the gain differs between columns


def test_held_out_corruptions_never_in_a_training_pool():
    from crossfuse import config as cfgmod

    for name in cfgmod.list_configs():
        cfg = cfgmod._read_merged(name)[0]  # merged onto the defaults, not validated (no aligned pool needed)
        pools = [cfg["ssl"].get("corruptions") or []]
        pools += [opts.get("corruptions") or [] for opts in cfg["loss_options"].values()]
        assert not set(C.HELD_OUT) & {c for p in pools for c in p}, name
    views = A.consistency_views(batch(b=64, c=1), batch(b=64, c=1, seed=2), generator=gen(), severity=1.0)
    assert not {a.split("@")[0] for s in views.applied for a in s} & set(C.HELD_OUT)  # the default pool
