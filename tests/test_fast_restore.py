"""The fast net's optional restoration maps (``restore``, src/crossfuse/nets/fast.py): off by default (configs and
shipped weights unchanged), and with the maps forced on the sources are replaced by their fixed-Gaussian smoothing,
checked against scipy's independent filter; ONNX export keeps parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_rebuilds, onnx_vs_torch, perturb_
from scipy import ndimage

from crossfuse import models
from crossfuse.nets import build

torch.set_num_threads(1)


def _pair(h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 1, h, w), generator=g), torch.rand((1, 1, h, w), generator=g)


def _force(net, **logits: float) -> None:
    """Zero head weights; bias per map name (a, b, k, d_ir, d_vis, d_str, r): the logit every pixel gets."""
    names = ["a", "b"] + (["k"] if net.complement else []) + ["d_ir", "d_vis", "d_str"][: net.n_restore] + ["r"]
    assert len(names) == net.n_maps
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        for i, n in enumerate(names):
            net.head.bias[4 * i: 4 * i + 4] = logits.get(n, 0.0)


def _gauss(x: torch.Tensor, sigma: float, axis: int | None = None) -> np.ndarray:
    """scipy's Gaussian (edge-replicating 'nearest' border, radius ceil(3 sigma)) of a (1, 1, H, W) tensor."""
    a = x[0, 0].double().numpy()
    radius = math.ceil(3 * sigma)
    if axis is None:
        return ndimage.gaussian_filter(a, sigma, mode="nearest", radius=radius)
    return ndimage.gaussian_filter1d(a, sigma, axis=axis, mode="nearest", radius=radius)


def test_default_config_and_shipped_weights_unchanged():
    plain = build("fast", complement=True)
    assert plain.config == {"channels": [16, 32, 96], "blocks": [1, 2, 6], "gain_scale": 20.0, "complement": True}
    assert plain.n_maps == 4 and plain.head.out_channels == 16 and not plain.restore
    # restore adds head channels only: no buffer is stored, so the state dict has the same keys
    r = build("fast", complement=True, restore=True)
    assert r.head.out_channels == 24 and set(r.state_dict()) == set(plain.state_dict())
    assert r.config["restore"] is True and r.config["restore_sigma"] == 1.5
    # the shipped default still loads and computes exactly the complement formula of its four maps
    net = models.resolve("crossfuse-robust").module.eval()
    assert "restore" not in net.config and net.n_maps == 4
    ir, vis = _pair(40, 56, seed=1)
    with torch.no_grad():
        a, b, k, res = net.maps(ir, vis)
        w = torch.sigmoid(net.gain_scale * a * (ir - vis) + b)
        want = (w * ir + (1 - w) * vis + res + k * ((1 - w) * ir + w * vis)).clamp(0, 1)  # fast.py's order
        assert torch.equal(net(ir, vis), want)


def test_untrained_restore_net_barely_smooths():
    net = build("fast", complement=True, restore=True).eval()
    ir, vis = _pair(32, 48, seed=2)
    with torch.no_grad():
        out = net.forward_train(ir, vis)
    d = torch.sigmoid(torch.tensor(-3.0))
    torch.testing.assert_close(out["restore_ir"], torch.full_like(ir, float(d)))
    s_ir, s_vis = net.smooth(ir, vis)
    want = ((ir + d * (s_ir - ir)) + (vis + d * (s_vis - vis))) / 2
    torch.testing.assert_close(out["fused"], want)


@pytest.mark.parametrize("sigma", [1.5, 0.8])
def test_d_one_replaces_sources_by_their_gaussian(sigma):
    net = build("fast", complement=True, restore=True, restore_sigma=sigma).eval()
    ir, vis = _pair(38, 50, seed=3)
    _force(net, d_ir=40.0, d_vis=40.0)  # sigmoid = 1; a = b = k = r = 0 -> w = 1/2
    with torch.no_grad():
        got = net(ir, vis)[0, 0].double().numpy()
    want = (_gauss(ir, sigma) + _gauss(vis, sigma)) / 2
    assert np.abs(got - want).max() < 1e-6
    assert np.abs(got - (ir + vis)[0, 0].numpy() / 2).max() > 0.1  # the smoothing really happened
    _force(net, d_ir=-40.0, d_vis=40.0)  # only the visible source smoothed
    with torch.no_grad():
        got = net(ir, vis)[0, 0].double().numpy()
    assert np.abs(got - (ir[0, 0].double().numpy() + _gauss(vis, sigma)) / 2).max() < 1e-6


def test_stripe_map_smooths_ir_along_rows_and_removes_column_offsets():
    net = build("fast", complement=True, restore=True, restore_stripe=3.0).eval()
    assert net.n_restore == 3 and net.head.out_channels == 28
    ir, vis = _pair(40, 64, seed=4)
    _force(net, d_ir=-40.0, d_vis=-40.0, d_str=40.0)
    with torch.no_grad():
        got = net(ir, vis)[0, 0].double().numpy()
    want = (_gauss(ir, 3.0, axis=1) + vis[0, 0].double().numpy()) / 2
    assert np.abs(got - want).max() < 1e-6
    # per-column offsets on a vertical ramp: the row smoothing removes most of them and keeps the ramp
    g = torch.Generator().manual_seed(5)
    ramp = torch.linspace(0.2, 0.8, 40).view(1, 1, 40, 1).expand(1, 1, 40, 64)
    stripes = 0.05 * torch.randn((1, 1, 1, 64), generator=g)
    with torch.no_grad():
        out = 2 * net(ramp + stripes, torch.zeros_like(ramp))  # w = 1/2, vis = 0: out = restored IR
    # white column noise through a sigma-3 Gaussian keeps sqrt(sum g^2) ~ 0.31 of its std
    assert float((out - ramp).std()) < 0.4 * float(stripes.std())


def test_restore_needs_even_size_and_trains():
    net = build("fast", complement=True, restore=True)
    ir, vis = _pair(30, 44, seed=6)
    with pytest.raises(ValueError, match="even"):
        net(ir[..., :29, :], vis[..., :29, :])
    with pytest.raises(ValueError, match="restore_sigma"):
        build("fast", restore=True, restore_sigma=0.0)
    net.train()
    out = net.forward_train(ir, vis)
    assert {"fused", "raw", "weight", "residual", "restore_ir", "restore_vis"} <= set(out)
    (out["fused"] - (ir + vis).clamp(0, 1) * 0).abs().mean().backward()
    assert float(net.head.weight.grad[12:20].abs().sum()) > 0  # the d maps receive gradient
    assert_rebuilds(net, ir, vis)


def test_restore_onnx_parity(tmp_path):
    pytest.importorskip("onnxruntime")
    from crossfuse.backends import OnnxBackend, TorchBackend
    from crossfuse.export import export_onnx

    torch.manual_seed(7)
    net = perturb_(build("fast", complement=True, restore=True, restore_stripe=3.0).eval(), seed=8)
    with torch.no_grad():
        net.head.bias[12:24] = 0.0  # d logits about 0, so the maps vary visibly
    path = export_onnx(net, tmp_path / "r.onnx", name="fast-restore")
    for h, w in [(64, 96), (122, 250), (250, 182)]:
        rng = np.random.default_rng(h * w)
        ir, vi = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
        a, b = OnnxBackend(path)(ir, vi), TorchBackend(net, "cpu")(ir, vi)
        assert a.shape == (h, w) and np.abs(a - b).max() < 1e-3
        with torch.no_grad():
            d = torch.sigmoid(net.maps(torch.from_numpy(ir)[None, None], torch.from_numpy(vi)[None, None])[3])
        assert float(d.std()) > 0.02  # the restoration maps vary per pixel in this random net


def test_ssl_denoise_term_rewards_smoothing_noise_and_needs_restore():
    from crossfuse import losses as L

    g = torch.Generator().manual_seed(9)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    ir = (0.3 + 0.4 * xx)[None, None].repeat(2, 1, 1, 1)  # smooth clean sources: smoothing costs nothing
    vis = (0.6 - 0.3 * yy)[None, None].repeat(2, 1, 1, 1)
    opts = {"ssl_denoise": {"corruptions": ["gaussian_noise"]}}
    ssl = {"crop": 48, "severity": 1.5}

    def value(net, seed=3):
        ctx = L.StepContext(ir=ir, vis=vis, out={}, net=net, generator=torch.Generator().manual_seed(seed), ssl=ssl,
                            options=opts)
        return L.total_loss({"ssl_denoise": 1.0}, ctx)[1]["ssl_denoise"]

    net = build("fast", complement=True, restore=True).eval()
    _force(net, d_ir=-40.0, d_vis=-40.0)
    raw = value(net)
    _force(net, d_ir=40.0, d_vis=40.0)
    smoothed = value(net)
    assert raw > 0.01 and smoothed < 0.5 * raw  # the noise is in the target's L1 unless the sources are smoothed
    # the same views without noise: nothing to remove, the term is ~0 whatever d is
    clean = L.StepContext(ir=ir, vis=vis, out={}, net=net, generator=g, ssl=ssl,
                          options={"ssl_denoise": {"corruptions": []}})
    assert L.total_loss({"ssl_denoise": 1.0}, clean)[1]["ssl_denoise"] < 0.3 * smoothed + 1e-3
    with pytest.raises(KeyError, match="restored_ir"):
        value(build("fast", complement=True).eval())


def test_robust_r_config_builds_a_restore_net_and_names_every_loss():
    from crossfuse import losses as L
    from crossfuse.config import load_config

    cfg = load_config("robust_r", ["data.external=[]", "data.external_ratio=0"])
    assert set(cfg["phase2"]["losses"]) == {n for n in L.list_losses() if L.get_loss(n).phase == 2}
    net = build(cfg["model"]["name"], **cfg["model"]["config"])
    assert net.restore and net.complement and net.n_maps == 6


def test_adaptive_shares_follow_the_local_variance():
    """restore_noise > 0: share = min(s / v, 1), s = (restore_noise sigmoid(d))^2, v = G(x^2) - G(x)^2 (scipy)."""
    net = build("fast", complement=True, restore=True, restore_noise=0.1).eval()
    assert net.config["restore_noise"] == 0.1 and "restore_noise" not in build("fast", restore=True).config
    ir, vis = _pair(36, 52, seed=10)
    ir = 0.5 + 0.05 * (ir - 0.5)  # low-variance IR: fully smoothed at this noise level; VIS (uniform) only partly
    _force(net, d_ir=0.0, d_vis=0.0)  # sigmoid = 1/2: noise std 0.05
    with torch.no_grad():
        out = net.forward_train(ir, vis)
    for x, share, restored in ((ir, out["restore_ir"], out["restored_ir"]), (vis, out["restore_vis"],
                                                                            out["restored_vis"])):
        m = _gauss(x, 1.5)
        v = np.maximum(_gauss(x * x, 1.5) - m * m, 0.0)
        want = np.minimum(0.05 ** 2 / (v + 1e-6), 1.0)
        assert np.abs(share[0, 0].double().numpy() - want).max() < 1e-4
        a = x[0, 0].double().numpy()
        assert np.abs(restored[0, 0].double().numpy() - (a + want * (m - a))).max() < 1e-5
    assert float(out["restore_ir"].min()) == 1.0 and 0.01 < float(out["restore_vis"].mean()) < 0.9
    _force(net, d_ir=-40.0, d_vis=-40.0)  # noise level 0: sources untouched
    with torch.no_grad():
        torch.testing.assert_close(net(ir, vis), (ir + vis) / 2)
    net2 = build("fast", complement=True, restore=True, restore_noise=0.1, restore_stripe=3.0).eval()
    _force(net2, d_ir=-40.0, d_vis=-40.0, d_str=0.0)
    with torch.no_grad():
        share = net2.forward_train(ir, vis)["restore_stripe"][0, 0].double().numpy()
    m = _gauss(ir, 3.0, axis=1)
    v = np.maximum(_gauss(ir * ir, 3.0, axis=1) - m * m, 0.0)
    assert np.abs(share - np.minimum(0.05 ** 2 / (v + 1e-6), 1.0)).max() < 1e-4


def test_adaptive_restore_onnx_parity(tmp_path):
    for i, extra in enumerate([{"restore_noise": 0.15}, {"restore_floor": 15, "restore_evidence": True}]):
        torch.manual_seed(11)
        net = perturb_(build("fast", complement=True, restore=True, restore_stripe=3.0, **extra).eval(), seed=12)
        with torch.no_grad():
            net.head.bias[12:24] = 0.0
        assert onnx_vs_torch(net, tmp_path / f"w{i}.onnx", "fast-restore-adaptive", seed=i) < 1e-3


def test_restore_detach_trains_the_shares_only_through_the_restored_sources():
    torch.manual_seed(13)
    net = build("fast", complement=True, restore=True, restore_stripe=3.0, restore_detach=True)
    plain = build("fast", complement=True, restore=True, restore_stripe=3.0)
    perturb_(net, seed=14)
    plain.load_state_dict(net.state_dict())
    ir, vis = _pair(32, 40, seed=15)
    with torch.no_grad():  # inference: identical outputs
        torch.testing.assert_close(net.eval()(ir, vis), plain.eval()(ir, vis), rtol=0, atol=0)
    net.train()
    d_rows = slice(12, 24)  # head channels of d_ir, d_vis, d_str (a, b, k come first, 4 sub-pixels each)
    net.forward_train(ir, vis)["fused"].sum().backward()
    assert float(net.head.weight.grad[d_rows].abs().sum()) == 0.0
    assert float(net.head.weight.grad[:12].abs().sum()) > 0.0
    net.zero_grad()
    out = net.forward_train(ir, vis)
    (out["restored_ir"].sum() + out["restored_vis"].sum()).backward()
    assert float(net.head.weight.grad[d_rows].abs().sum()) > 0.0
    plain.train()
    plain.forward_train(ir, vis)["fused"].sum().backward()
    assert float(plain.head.weight.grad[d_rows].abs().sum()) > 0.0  # without detach the fusion path trains them


def test_restore_evidence_feeds_the_high_pass_to_the_encoder():
    net = build("fast", complement=True, restore=True, restore_evidence=True).eval()
    assert net.enc1[0].in_channels == 16 and build("fast", restore=True).enc1[0].in_channels == 8
    ir, vis = _pair(32, 48, seed=16)
    seen = {}
    net.enc1.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    with torch.no_grad():
        net(ir, vis)
    s_ir = torch.from_numpy(_gauss(ir, 1.5)).float()[None, None]
    want = torch.nn.functional.pixel_unshuffle((ir - s_ir).abs(), 2)
    torch.testing.assert_close(seen["x"][:, 8:12], want, atol=1e-6, rtol=0)  # planes: ir, vis, |ir - S ir|, ...
    rebuilt = build("fast", **net.config)
    assert rebuilt.config["restore_evidence"] is True
    rebuilt.load_state_dict(net.state_dict())


def test_restoration_inputs_gradient_option():
    from crossfuse import losses as L

    g = torch.Generator().manual_seed(17)
    clean = torch.rand((1, 1, 24, 24), generator=g)
    other = torch.rand((1, 1, 24, 24), generator=g)
    region = (2, 3, 18, 16)
    assert float(L.restoration_inputs(clean, other, clean, other, region, gradient=5.0)) == 0.0
    plain = float(L.restoration_inputs(other, clean, clean, clean, region))
    with_g = float(L.restoration_inputs(other, clean, clean, clean, region, gradient=2.0))
    top, left, h, w = region
    crop = (..., slice(top, top + h), slice(left, left + w))
    want = 2.0 * float((L.sobel_xy(other[crop]) - L.sobel_xy(clean[crop])).abs().mean())
    assert with_g - plain == pytest.approx(want, rel=1e-5)


def test_ssl_denoise_clean_option_charges_smoothing_a_clean_view():
    from crossfuse import losses as L

    ir, vis = _pair(64, 64, seed=18)  # white-noise-like texture: smoothing it is a large change
    net = build("fast", complement=True, restore=True).eval()

    def value(clean, **logits):
        _force(net, **logits)
        ctx = L.StepContext(ir=ir, vis=vis, out={}, net=net, generator=torch.Generator().manual_seed(4),
                            ssl={"crop": 48, "severity": 1.5}, options={"ssl_denoise": {"corruptions": [],
                                                                                        "clean": clean}})
        return L.total_loss({"ssl_denoise": 1.0}, ctx)[1]["ssl_denoise"]

    assert value(0.0, d_ir=40.0, d_vis=40.0) == pytest.approx(value(1.0, d_ir=40.0, d_vis=40.0) / 2, rel=1e-5)
    assert value(1.0, d_ir=-40.0, d_vis=-40.0) < 1e-6 < value(1.0, d_ir=40.0, d_vis=40.0)


def test_floor_shares_use_the_windows_smallest_local_variance():
    net = build("fast", complement=True, restore=True, restore_floor=9).eval()
    assert net.config["restore_floor"] == 9
    with pytest.raises(ValueError, match="odd"):
        build("fast", restore=True, restore_floor=8)
    g = torch.Generator().manual_seed(19)
    ir = 0.3 + 0.05 * torch.randn((1, 1, 40, 48), generator=g)  # noise everywhere ...
    ir[..., :, 24:] += 0.4  # ... and one strong vertical edge
    vis = torch.rand((1, 1, 40, 48), generator=g)
    _force(net, d_ir=40.0, d_vis=40.0)  # sigmoid = 1: s = 2 x floor
    with torch.no_grad():
        share = net.forward_train(ir, vis)["restore_ir"][0, 0].double().numpy()
    m = _gauss(ir, 1.5)
    v = np.maximum(_gauss(ir * ir, 1.5) - m * m, 0.0)
    want = np.minimum(2 * ndimage.minimum_filter(v, size=9, mode="nearest") / (v + 1e-6), 1.0)
    assert np.abs(share - want).max() < 1e-3  # float32 E[x^2] - m^2 against float64
    # flat noisy parts smoothed, the edge kept (uniform fine texture would look like noise: its floor is its variance)
    assert share[:, :12].mean() > 0.9 and share[:, 36:].mean() > 0.9 and share[:, 23:25].mean() < 0.2


def test_floor_gain_option_scales_the_noise_estimate_and_defaults_to_two():
    ir = 0.3 + 0.05 * torch.randn((1, 1, 40, 48), generator=torch.Generator().manual_seed(20))
    ir[..., :, 24:] += 0.4
    vis = torch.rand((1, 1, 40, 48), generator=torch.Generator().manual_seed(21))
    shares = {}
    for gain in (None, 2.0, 0.5):
        kw = {} if gain is None else {"restore_floor_gain": gain}
        net = build("fast", complement=True, restore=True, restore_floor=9, **kw).eval()
        assert ("restore_floor_gain" in net.config) == (gain == 0.5)  # the default is not stored: old configs same
        _force(net, d_ir=0.0, d_vis=0.0)  # sigmoid = 0.5: s = gain / 2 x floor
        with torch.no_grad():
            out = net.forward_train(ir, vis)
        shares[gain] = out["restore_ir"]
    assert torch.equal(shares[None], shares[2.0])
    # below the clamp at 1 the share is linear in the gain: a quarter of the default's share with gain 0.5
    below = shares[2.0] < 0.99
    assert below.float().mean() > 0.5
    assert torch.allclose(shares[0.5][below], shares[2.0][below] / 4, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="restore_floor_gain"):
        build("fast", restore=True, restore_floor=9, restore_floor_gain=0.0)
    # the shipped floor model (crossfuse-robust2) has no gain in its config: it is computed with the default 2
    net = models.resolve("crossfuse-robust2").module
    assert net.floor and "restore_floor_gain" not in net.config and net.floor_gain == 2.0


def test_restore_net_states_its_working_memory_for_the_tile_planner():
    """The planner's hook estimate cannot see the restoration's full-resolution temporaries, so a restore net states
    a larger figure and the same budget gives it smaller tiles; a net without restore is left to the estimate."""
    from crossfuse.backends import estimate_bytes_per_pixel
    from crossfuse.infer import Fuser

    plain, restoring = build("fast", complement=True), build("fast", complement=True, restore=True)
    assert not hasattr(plain, "bytes_per_pixel")
    assert estimate_bytes_per_pixel(restoring) == restoring.bytes_per_pixel > estimate_bytes_per_pixel(plain)
    assert "bytes_per_pixel" not in restoring.state_dict()
    old, new = Fuser("crossfuse-robust", max_memory="1GB"), Fuser("crossfuse-robust2", max_memory="1GB")
    assert new.plan_tile(3000, 4000) < old.plan_tile(3000, 4000)
