"""Losses: values against independent NumPy/SciPy computations, invariants, and the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from crossfuse import losses as L
from crossfuse.metrics.core import crushed_dark_percent


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))[None, None]


@pytest.fixture
def imgs():
    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.random((40, 48)), 2)
    ir = np.clip(base + 0.2 * rng.random((40, 48)), 0, 1)
    vis = np.clip(1 - base + 0.1 * rng.random((40, 48)), 0, 1)
    fused = np.clip(0.5 * ir + 0.5 * vis + 0.05 * rng.standard_normal((40, 48)), 0, 1)
    return ir, vis, fused


def test_sobel_magnitude_matches_scipy(imgs):
    x = imgs[0]
    ref = np.abs(ndimage.sobel(x, axis=1, mode="nearest")) + np.abs(ndimage.sobel(x, axis=0, mode="nearest"))
    got = L.sobel_magnitude(_t(x))[0, 0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_intensity_and_gradient_max_values(imgs):
    ir, vis, fused = imgs
    want_int = np.abs(fused - np.maximum(ir, vis)).mean()
    assert float(L.intensity_max(_t(ir), _t(vis), _t(fused))) == pytest.approx(want_int, rel=1e-12)
    mag = lambda a: np.abs(ndimage.sobel(a, 1, mode="nearest")) + np.abs(ndimage.sobel(a, 0, mode="nearest"))  # noqa
    want_grad = np.abs(mag(fused) - np.maximum(mag(ir), mag(vis))).mean()
    assert float(L.gradient_max(_t(ir), _t(vis), _t(fused))) == pytest.approx(want_grad, rel=1e-10)
    want_gain = np.abs(mag(fused) - 1.3 * np.maximum(mag(ir), mag(vis))).mean()
    assert float(L.gradient_max(_t(ir), _t(vis), _t(fused), gain=1.3)) == pytest.approx(want_gain, rel=1e-10)
    # the max image itself has zero intensity loss; with a flat IR the VIS image has zero gradient loss
    m = np.maximum(ir, vis)
    assert float(L.intensity_max(_t(ir), _t(vis), _t(m))) == 0.0
    assert float(L.gradient_max(_t(np.full_like(vis, 0.3)), _t(vis), _t(vis))) == pytest.approx(0.0, abs=1e-15)


def test_gradient_select_matches_scipy(imgs):
    ir, vis, fused = imgs
    d = lambda a: (ndimage.sobel(a, 1, mode="nearest"), ndimage.sobel(a, 0, mode="nearest"))  # noqa: E731
    (ix, iy), (vx, vy), (fx, fy) = d(ir), d(vis), d(fused)
    take_ir = np.abs(ix) + np.abs(iy) > np.abs(vx) + np.abs(vy)
    tx, ty = np.where(take_ir, ix, vx), np.where(take_ir, iy, vy)
    want = (np.abs(fx - 1.4 * tx).mean() + np.abs(fy - 1.4 * ty).mean()) / 2
    assert float(L.gradient_select(_t(ir), _t(vis), _t(fused), gain=1.4)) == pytest.approx(want, rel=1e-10)
    # copying the source with the stronger edges everywhere is exact where it is the stronger one
    assert float(L.gradient_select(_t(np.full_like(vis, 0.2)), _t(vis), _t(vis))) == 0.0


def _ssim_scipy(x: np.ndarray, y: np.ndarray) -> float:
    g = lambda a: ndimage.gaussian_filter(a, 1.5, mode="mirror", truncate=5 / 1.5)  # noqa: E731  11 taps
    mx, my = g(x), g(y)
    sxx, syy, sxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())


def test_ssim_matches_scipy_reference(imgs):
    ir, vis, fused = imgs
    assert float(L.ssim(_t(fused), _t(vis))) == pytest.approx(_ssim_scipy(fused, vis), abs=1e-6)
    assert float(L.ssim(_t(ir), _t(ir))) == pytest.approx(1.0, abs=1e-9)
    want = (1 - _ssim_scipy(fused, vis)) / 2 + (1 - _ssim_scipy(fused, ir)) / 2
    assert float(L.ssim_sources(_t(ir), _t(vis), _t(fused))) == pytest.approx(want, abs=1e-6)


def test_reconstruction_terms(imgs):
    ir, vis, fused = imgs
    assert float(L.rec_mse(_t(vis), _t(fused))) == pytest.approx(((vis - fused) ** 2).mean(), rel=1e-12)
    assert float(L.rec_ssim(_t(vis), _t(vis))) == pytest.approx(0.0, abs=1e-9)
    assert float(L.rec_gradient(_t(vis), _t(vis))) == 0.0
    # normalised Sobel (kernel sum of |weights| = 8): the value is 1/8 of the un-normalised per-direction L1
    gx = lambda a: ndimage.sobel(a, 1, mode="nearest") / 8  # noqa: E731
    gy = lambda a: ndimage.sobel(a, 0, mode="nearest") / 8  # noqa: E731
    want = (np.abs(gx(fused) - gx(vis)).mean() + np.abs(gy(fused) - gy(vis)).mean()) / 2
    assert float(L.rec_gradient(_t(vis), _t(fused))) == pytest.approx(want, rel=1e-10)


def test_correlation_decomposition_scd(imgs):
    ir, vis, fused = imgs
    assert float(L.correlation(_t(ir), _t(vis))) == pytest.approx(np.corrcoef(ir.ravel(), vis.ravel())[0, 1],
                                                                  abs=1e-6)
    b1, b2, d1, d2 = (_t(a) for a in (ir, 0.5 * ir + 0.1, vis, fused))
    cc_b = np.corrcoef(ir.ravel(), (0.5 * ir + 0.1).ravel())[0, 1]
    cc_d = np.corrcoef(vis.ravel(), fused.ravel())[0, 1]
    assert float(L.decomposition(b1, b2, d1, d2)) == pytest.approx(cc_d ** 2 / (1.01 + cc_b), abs=1e-6)
    c = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]  # noqa: E731
    want = 2 - c(fused - vis, ir) - c(fused - ir, vis)
    assert float(L.scd_loss(_t(ir), _t(vis), _t(fused))) == pytest.approx(want, abs=1e-5)  # eps 1e-5 in CC


def test_registry_and_total(imgs):
    ir, vis, fused = (_t(a).float() for a in imgs)
    with pytest.raises(KeyError, match="unknown loss 'nope'; valid losses: .*gradient_max.*intensity_max"):
        L.get_loss("nope")
    ctx = L.StepContext(ir=ir, vis=vis, out={"fused": fused})
    total, parts = L.total_loss({"intensity_max": 1.0, "gradient_max": 10.0}, ctx)
    assert float(total) == pytest.approx(parts["intensity_max"] + 10 * parts["gradient_max"], rel=1e-6)
    # a scheduled term is skipped when its schedule factor is 0, and scaled by it otherwise
    g = torch.Generator().manual_seed(0)
    ctx = L.StepContext(ir=ir, vis=vis, out={"fused": fused}, generator=g)
    total0, parts0 = L.total_loss({"intensity_max": 1.0, "ssl_paper": 0.1}, ctx, ssl_factor=0.0)
    assert "ssl_paper" not in parts0 and float(total0) == pytest.approx(parts0["intensity_max"])
    total1, parts1 = L.total_loss({"ssl_paper": 0.1}, ctx, ssl_factor=0.5)
    assert float(total1) == pytest.approx(0.05 * parts1["ssl_paper"], rel=1e-6) and parts1["ssl_paper"] > 0
    with pytest.raises(KeyError, match="lacks base_vis"):
        L.total_loss({"decomposition": 1.0}, ctx)


def test_self_supervised_terms_give_gradients():
    from crossfuse.nets import build

    torch.manual_seed(0)
    net = build("fast", channels=[8, 8, 16], blocks=[1, 1, 1])
    ir, vis = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    out = net.forward_train(ir, vis, 2)
    ctx = L.StepContext(ir=ir, vis=vis, out=out, net=net, generator=torch.Generator().manual_seed(1),
                        ssl={"crop": 24, "severity": 1.0})
    total, parts = L.total_loss({"ssl_consistency": 1.0, "ssl_paper": 1.0}, ctx)
    total.backward()
    assert parts["ssl_consistency"] > 0 and parts["ssl_paper"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_ssim_constants_option(imgs):
    ir, vis, fused = imgs
    # max_val scales the stabilising constants: C1 = (0.01 max_val)^2, C2 = (0.03 max_val)^2
    g = lambda a: ndimage.gaussian_filter(a, 1.5, mode="mirror", truncate=3 / 1.5)  # noqa: E731  7 taps
    mx, my = g(fused), g(vis)
    sxx, syy, sxy = g(fused * fused) - mx * mx, g(vis * vis) - my * my, g(fused * vis) - mx * my
    c1, c2 = (0.01 * 2 / 255) ** 2, (0.03 * 2 / 255) ** 2
    want = ((2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).mean()
    assert float(L.ssim(_t(fused), _t(vis), window=7, max_val=2 / 255)) == pytest.approx(want, abs=1e-6)


def test_complement_target_and_losses(imgs):
    ir, vis, fused = imgs
    hi, lo = np.maximum(ir, vis), np.minimum(ir, vis)
    # alpha 0, contrast 1 is the plain max (and the loss equals intensity_max)
    np.testing.assert_allclose(L.complement_target(_t(ir), _t(vis), alpha=0.0)[0, 0].numpy(), hi, rtol=0, atol=0)
    assert float(L.intensity_complement(_t(ir), _t(vis), _t(fused), alpha=0.0)) == pytest.approx(
        float(L.intensity_max(_t(ir), _t(vis), _t(fused))), rel=1e-12)
    want = np.clip(0.45 + 1.2 * (hi + 0.4 * (lo - 0.45) - 0.45), 0, 1)
    got = L.complement_target(_t(ir), _t(vis), alpha=0.4, pivot=0.45, contrast=1.2)[0, 0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert float(L.intensity_complement(_t(ir), _t(vis), _t(fused), 0.4, 0.45, 1.2)) == pytest.approx(
        np.abs(fused - want).mean(), rel=1e-12)
    # the target itself has zero loss; gradient term matches scipy's Sobel of the target
    t = _t(want)
    assert float(L.intensity_complement(_t(ir), _t(vis), t, 0.4, 0.45, 1.2)) == 0.0
    assert float(L.gradient_complement(_t(ir), _t(vis), t, 0.4, 0.45, 1.2)) == pytest.approx(0.0, abs=1e-15)
    sob = lambda a: np.stack([ndimage.sobel(a, 1, mode="nearest"), ndimage.sobel(a, 0, mode="nearest")])  # noqa
    want_g = np.abs(sob(fused) - sob(want)).mean()
    assert float(L.gradient_complement(_t(ir), _t(vis), _t(fused), 0.4, 0.45, 1.2)) == pytest.approx(want_g, rel=1e-10)
    assert {"intensity_complement", "gradient_complement"} <= set(L.list_losses())


def test_out_of_range_penalty():
    raw = _t(np.array([[-0.2, 0.0, 0.5], [1.0, 1.3, 0.9]]))
    assert float(L.out_of_range(raw)) == pytest.approx((0.2 + 0.3) / 6, rel=1e-12)
    assert float(L.out_of_range(raw.clamp(0, 1))) == 0.0
    # it needs the network's unclamped output: the fast net gives it, with the clamped one beside it
    from crossfuse.nets import build

    net = build("fast-s").train()
    out = net.forward_train(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    torch.testing.assert_close(out["fused"], out["raw"].clamp(0, 1))
    assert "out_of_range" in L.list_losses()


def test_local_contrast_target_against_scipy(imgs):
    ir, vis, _ = imgs
    m = np.minimum(ir, vis)
    local = ndimage.gaussian_filter(m, 3.0, mode="reflect", truncate=(2 * np.ceil(9.0) + 1 - 1) / 2 / 3.0)
    want = np.clip(np.maximum(np.maximum(ir, vis) + 0.5 * (m - local), m), None, 1.0)
    got = L.local_contrast_target(_t(ir), _t(vis), alpha=0.5, sigma=3.0)[0, 0].numpy()
    # kornia's reflect border is scipy's "mirror"; compare away from the border
    np.testing.assert_allclose(got[10:-10, 10:-10], want[10:-10, 10:-10], atol=1e-6)


def test_local_contrast_target_gain_against_scipy(imgs):
    ir, vis, _ = imgs
    g = lambda x, s: ndimage.gaussian_filter(x, s, mode="mirror", truncate=np.ceil(3 * s) / s)  # noqa: E731
    m = np.minimum(ir, vis)
    base = np.maximum(ir, vis) + 0.3 * (m - g(m, 3.0))
    mu = g(base, 5.0)
    want = np.clip(np.maximum(mu + 1.4 * (base - mu), m), None, 1.0)
    got = L.local_contrast_target(_t(ir), _t(vis), alpha=0.3, sigma=3.0, gain=1.4, gain_sigma=5.0)[0, 0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    # gain 1 is the plain target; a gain never lifts the floor or the ceiling, nor moves a flat image
    plain = L.local_contrast_target(_t(ir), _t(vis), 0.3, 3.0)
    np.testing.assert_allclose(L.local_contrast_target(_t(ir), _t(vis), 0.3, 3.0, 1.0, 5.0).numpy(), plain.numpy())
    flat = L.local_contrast_target(_t(np.full_like(ir, 0.3)), _t(np.full_like(vis, 0.6)), 0.3, 3.0, 1.5, 5.0)
    np.testing.assert_allclose(flat.numpy(), 0.6, atol=1e-6)
    stretched = L.local_contrast_target(_t(ir), _t(vis), 0.3, 3.0, 1.4, 5.0)
    assert bool((stretched >= torch.minimum(_t(ir), _t(vis)) - 1e-12).all()) and float(stretched.max()) <= 1.0
    assert float(stretched.std()) > float(plain.std())  # more contrast about the local mean


def test_local_contrast_target_has_no_pivot_and_never_crushes(imgs):
    ir, vis, _ = imgs
    t = L.local_contrast_target(_t(ir), _t(vis))
    # never darker than both sources, at most 1
    assert bool((t >= torch.minimum(_t(ir), _t(vis)) - 1e-12).all()) and float(t.max()) <= 1.0
    # a dark scene (everything x 0.2) gets the same target x 0.2: no fixed grey level it is pulled towards
    dark = L.local_contrast_target(_t(0.2 * ir), _t(0.2 * vis))
    np.testing.assert_allclose(dark.numpy(), 0.2 * t.numpy(), atol=1e-9)
    # the fixed-pivot complement target fails exactly this (it sends dark scenes below the weaker source)
    comp = L.complement_target(_t(0.2 * ir), _t(0.2 * vis), 0.4, 0.45, 1.2)
    assert crushed_dark_percent(comp.numpy(), 0.2 * ir, 0.2 * vis, margin=10 / 255) > 50.0
    assert crushed_dark_percent(dark.numpy(), 0.2 * ir, 0.2 * vis, margin=10 / 255) == 0.0
    # where the weaker source is flat, the target is the plain max
    flat = L.local_contrast_target(_t(ir), _t(np.zeros_like(vis)))
    np.testing.assert_allclose(flat.numpy(), _t(ir).numpy(), atol=1e-12)


def test_local_losses_registered_and_zero_at_target(imgs):
    ir, vis, _ = imgs
    a, b = _t(ir), _t(vis)
    t = L.local_contrast_target(a, b, 0.3, 5.0)
    ctx = L.StepContext(ir=a, vis=b, out={"fused": t}, options={"intensity_local": {"alpha": 0.3, "sigma": 5.0},
                                                                  "gradient_local": {"alpha": 0.3, "sigma": 5.0}})
    total, parts = L.total_loss({"intensity_local": 1.0, "gradient_local": 10.0}, ctx)
    assert float(total) == pytest.approx(0.0, abs=1e-12)
    _, parts = L.total_loss({"intensity_local": 1.0, "gradient_local": 1.0}, L.StepContext(ir=a, vis=b,
                                                                                           out={"fused": a}))
    assert parts["intensity_local"] > 0.01 and parts["gradient_local"] > 0.01


def test_robust_config_names_every_loss():
    from crossfuse.config import load_config

    # the aligned pool (runs/align128_ho, made by benchmarks/robust_protocol.py --align) is not in a clean clone
    cfg = load_config("robust", ["data.external=[]", "data.external_ratio=0"])
    assert set(cfg["phase2"]["losses"]) == {n for n in L.list_losses() if L.get_loss(n).phase == 2}
    assert cfg["ssl"]["beta0_schedule"] == "constant" and "misregistration" not in cfg["ssl"]["corruptions"]


def test_restoration_local_zero_at_clean_target_and_decreasing_towards_it(imgs):
    ir, vis, fused = imgs
    a, b, f = _t(ir), _t(vis), _t(fused)
    region = (3, 5, 30, 36)
    target = L.local_contrast_target(a, b, 0.4, 8.0)
    assert float(L.restoration_local(a, b, target, region)) == pytest.approx(0.0, abs=1e-12)
    # only the shared region counts: a change outside it costs nothing
    outside = target.clone()
    outside[..., :3, :] = 0.0
    assert float(L.restoration_local(a, b, outside, region)) == pytest.approx(0.0, abs=1e-12)
    values = [float(L.restoration_local(a, b, (1 - t) * f + t * target, region)) for t in (0.0, 0.5, 0.9)]
    assert values[0] > values[1] > values[2] > 0
    top, left, h, w = region
    want = np.abs(fused - target[0, 0].numpy())[top:top + h, left:left + w].mean()
    assert float(L.restoration_local(a, b, f, region, gradient=0.0)) == pytest.approx(want, rel=1e-12)


def test_ssl_restore_targets_the_clean_view():
    from crossfuse.nets import build

    ir, vis = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    # a "network" that returns the fusion target of whatever it is given: perfect on clean views only
    oracle = lambda i, v: L.local_contrast_target(i, v, 0.4, 3.0)  # noqa: E731
    ssl = {"crop": 24, "corruptions": ["gaussian_noise", "stripe_noise"]}
    opts = {"ssl_restore": {"sigma": 3.0}}  # the 8 px default needs views wider than 48 px
    clean = L.StepContext(ir=ir, vis=vis, out={}, net=oracle, generator=torch.Generator().manual_seed(1),
                          ssl={**ssl, "severity": 0.0}, options=opts)
    assert float(L.total_loss({"ssl_restore": 1.0}, clean)[0]) == pytest.approx(0.0, abs=1e-6)
    noisy = L.StepContext(ir=ir, vis=vis, out={}, net=oracle, generator=torch.Generator().manual_seed(1),
                          ssl={**ssl, "severity": 1.5}, options=opts)
    assert L.total_loss({"ssl_restore": 1.0}, noisy)[1]["ssl_restore"] > 0.01
    torch.manual_seed(0)
    net = build("fast", channels=[8, 8, 16], blocks=[1, 1, 1])
    ctx = L.StepContext(ir=ir, vis=vis, out={}, net=net, generator=torch.Generator().manual_seed(1),
                        ssl={**ssl, "severity": 1.5}, options=opts)
    total, _ = L.total_loss({"ssl_restore": 1.0}, ctx)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_ssl_restore_own_corruption_pool_option():
    ir, vis = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    oracle = lambda i, v: L.local_contrast_target(i, v, 0.4, 3.0)  # noqa: E731
    ctx = lambda o: L.StepContext(ir=ir, vis=vis, out={}, net=oracle, options={"ssl_restore": o},  # noqa: E731
                                  generator=torch.Generator().manual_seed(2),
                                  ssl={"crop": 24, "severity": 1.5, "corruptions": ["no_such_corruption"]})
    with pytest.raises(KeyError, match="no_such_corruption"):
        L.total_loss({"ssl_restore": 1.0}, ctx({"sigma": 3.0}))
    _, parts = L.total_loss({"ssl_restore": 1.0}, ctx({"sigma": 3.0, "corruptions": ["stripe_noise"]}))
    assert parts["ssl_restore"] > 0.01
