"""The fast net's contrast restoration maps (``restore_enhance``, src/crossfuse/nets/fast.py): off by default, near
identity when untrained, and with the maps forced the sources become ``x + g (x - L(x)) + o``, checked on inputs whose
base ``L`` is known exactly (constant, a linear ramp, a 1-px checkerboard); ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import onnx_vs_torch, perturb_

from crossfuse.nets import build

torch.set_num_threads(1)

_KW = dict(complement=True, restore=True, restore_stripe=3.0, restore_floor=15, restore_evidence=True)


def _force(net, **logits: float) -> None:
    """Zero head weights; bias per map name: the logit every pixel gets (others 0; d maps -30: no smoothing)."""
    names = (["a", "b", "k", "d_ir", "d_vis", "d_str"][: 3 + (3 if net.stripe else 2)]
             + ["g_ir", "g_vis", "o_ir", "o_vis", "r"])
    assert len(names) == net.n_maps
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        for i, n in enumerate(names):
            net.head.bias[4 * i: 4 * i + 4] = logits.get(n, -30.0 if n.startswith("d_") else 0.0)


def _restored(net, ir: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        out = net.eval().forward_train(ir, vis)
    return out["restored_ir"], out["restored_vis"]


def test_enhance_is_off_by_default_and_adds_four_maps():
    plain, enh = build("fast", **_KW), build("fast", restore_enhance=6.0, **_KW)
    assert "restore_enhance" not in plain.config and not plain.enhance
    assert enh.config["restore_enhance"] == 6.0 and enh.config["restore_enhance_max"] == 2.0
    assert enh.n_maps == plain.n_maps + 4 and set(enh.state_dict()) == set(plain.state_dict())
    with pytest.raises(ValueError, match="restore_enhance"):
        build("fast", restore_enhance=-1.0, **_KW)


def test_untrained_enhance_maps_are_identity_with_full_gradients():
    net = build("fast", restore_enhance=6.0, **_KW)
    first = 4 * (3 + 3)  # a, b, k, d_ir, d_vis, d_str
    assert float(net.head.bias.detach()[first:first + 16].abs().max()) == 0.0  # gains and offsets start at tanh(0) = 0
    with torch.no_grad():
        net.head.bias[12:24] = -30.0  # switch the smoothing off to see the contrast maps alone
    g = torch.Generator().manual_seed(0)
    ir, vis = torch.rand((1, 1, 48, 64), generator=g), torch.rand((1, 1, 48, 64), generator=g)
    r_ir, r_vis = _restored(net, ir, vis)
    torch.testing.assert_close(r_ir, ir, atol=1e-6, rtol=0)
    torch.testing.assert_close(r_vis, vis, atol=1e-6, rtol=0)
    out = net.train().forward_train(ir, vis)  # d(restored)/d(gain logit) = max * (x - L(x)) at the start: not ~0
    out["restored_vis"].sub(vis).pow(2).sum().backward()  # zero loss, zero gradient ...
    assert float(net.head.bias.grad[first:first + 16].abs().max()) == 0.0
    net.zero_grad()
    out = net.forward_train(ir, vis)
    (-out["restored_vis"] * (vis - net.base(vis))).sum().backward()  # ... a loss that wants more visible detail
    assert float(net.head.bias.grad[first + 4:first + 8].min()) < -1.0  # pulls the visible gain logit up, strongly


def test_forced_maps_add_offset_where_the_base_equals_the_input():
    net = build("fast", restore_enhance=4.0, **_KW)
    _force(net, g_ir=30.0, g_vis=-30.0, o_ir=0.02, o_vis=-0.01)  # gains +-2, offsets tanh(0.2), tanh(-0.1)
    h, w = 64, 96
    const = torch.full((1, 1, h, w), 0.4)
    ramp = torch.linspace(0.1, 0.9, w).view(1, 1, 1, w).expand(1, 1, h, w).contiguous()
    r_ir, r_vis = _restored(net, const, ramp)
    torch.testing.assert_close(r_ir, const + float(np.tanh(0.2)), atol=1e-5, rtol=0)
    inner = (..., slice(None), slice(16, w - 16))  # a linear ramp is its own Gaussian / bilinear base away from edges
    torch.testing.assert_close(r_vis[inner], ramp[inner] + float(np.tanh(-0.1)), atol=1e-4, rtol=0)


def test_forced_gain_amplifies_detail_about_the_local_mean():
    net = build("fast", restore_enhance=4.0, **_KW)
    _force(net, g_vis=30.0, g_ir=-0.05493)  # visible gain 2 (the max), IR gain 2 tanh(-0.549) = -1: L(x), no offsets
    yy, xx = np.mgrid[0:64, 0:96]
    checker = torch.from_numpy(0.5 + 0.1 * ((yy + xx) % 2 * 2 - 1)).float()[None, None]
    r_ir, r_vis = _restored(net, checker, checker)
    torch.testing.assert_close(r_ir, torch.full_like(checker, 0.5), atol=1e-4, rtol=0)
    # a 1-px checkerboard averages to 0.5 in every 2 x 2 block: L = 0.5, detail +-0.1, amplified 3x
    torch.testing.assert_close(r_vis, 0.5 + 3.0 * (checker - 0.5), atol=1e-5, rtol=0)


def test_enhance_onnx_parity(tmp_path):
    net = perturb_(build("fast", restore_enhance=6.0, **_KW).eval(), seed=22)
    with torch.no_grad():
        net.head.bias[24:32] = 0.05  # gain logits about 0.05: the contrast maps act visibly
    assert onnx_vs_torch(net, tmp_path / "e.onnx", "fast-enhance", seed=1) < 1e-3


def test_robust_re_config_builds_the_enhance_net_and_trains_it_with_the_contrast_corruptions():
    from crossfuse import losses as L
    from crossfuse.config import load_config

    cfg = load_config("robust_re", ["data.external=[]", "data.external_ratio=0"])
    assert set(cfg["phase2"]["losses"]) == {n for n in L.list_losses() if L.get_loss(n).phase == 2}
    net = build(cfg["model"]["name"], **cfg["model"]["config"])
    assert net.enhance and net.floor == 63 and net.n_maps == 4 + 3 + 4
    pool = cfg["loss_options"]["ssl_denoise"]["corruptions"]
    assert {"haze", "blur", "contrast", "stripe_noise"} <= set(pool)
    assert cfg["loss_options"]["ssl_denoise"]["clean"] == 1.0  # merged from robust_rw, not dropped by the child
