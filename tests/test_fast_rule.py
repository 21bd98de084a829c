"""The fast net's rule head (``rule_head``, src/crossfuse/nets/fast.py): off by default; untrained, it is
``losses.local_contrast_target`` (kornia's full-resolution Gaussian: an independent computation of the same rule) on a
real pair; its output is never darker than both sources while ``r`` is 0; trainable; rebuilt from its config; ONNX
parity; the gates that scale the extra gain and the residual by the restoration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_rebuilds, first_pair_u8, onnx_vs_torch, perturb_

from crossfuse.losses import local_contrast_target
from crossfuse.nets import build

torch.set_num_threads(1)

_RESTORE = dict(restore=True, restore_stripe=3.0, restore_floor=15, restore_detach=True, restore_evidence=True)


def _pair(name: str = "MSRS") -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's first pair (IR gray, visible luma) as (1, 1, H, W) tensors in [0, 1]."""
    return tuple(torch.from_numpy(a.astype(np.float32) / 255.0)[None, None] for a in first_pair_u8(name))


def test_rule_head_is_off_by_default_and_replaces_the_selection_maps():
    plain, rule = build("fast", **_RESTORE), build("fast", rule_head=True, **_RESTORE)
    assert "rule_head" not in plain.config
    assert rule.config["rule_head"] is True and rule.config["rule_sigma"] == 16.0
    assert rule.n_maps == plain.n_maps - 2  # no a, b
    with pytest.raises(ValueError, match="rule_head"):
        build("fast", rule_head=True, complement=True)
    with pytest.raises(ValueError, match="rule_head"):
        build("fast", rule_head=True, rule_gain=0.0)


@pytest.mark.parametrize("sigma, gain", [(16.0, 1.0), (8.0, 1.2)])
def test_untrained_rule_head_is_the_local_contrast_target(sigma, gain):
    ir, vis = _pair()
    net = build("fast", rule_head=True, rule_sigma=sigma, rule_gain=gain, rule_gain_sigma=8.0).eval()
    with torch.no_grad():
        out = net(ir, vis)
    want = local_contrast_target(ir, vis, 0.4, sigma, gain, 8.0)
    diff = (out - want).abs() * 255.0
    # the net blurs at half resolution, the target at full: measured 0.03 / 0.04 grey levels mean, 1.8 / 4.2 max
    assert float(diff.mean()) < 0.1 and float(diff.max()) < 6.0
    # and it is not the plain max: the rule adds the weaker source's local variation
    assert float((out - torch.maximum(ir, vis)).abs().mean()) * 255.0 > 1.0


def test_rule_head_never_darker_than_both_restored_sources_while_r_is_zero():
    net = perturb_(build("fast", rule_head=True, rule_gain=1.5, **_RESTORE), seed=5).eval()
    with torch.no_grad():
        net.head.weight[-4:].zero_()  # r (the last map) = 0; the restoration maps stay perturbed
        net.head.bias[-4:].zero_()
        rng = np.random.default_rng(0)
        ir, vis = (torch.from_numpy(rng.random((1, 1, 48, 64), dtype=np.float32)) for _ in range(2))
        parts = net.forward_train(ir, vis)
    floor = torch.minimum(parts["restored_ir"], parts["restored_vis"])
    assert float(parts["residual"].abs().max()) == 0.0
    assert float((parts["fused"] - floor).min()) >= -1e-6
    assert float((parts["fused"] - 1.0).max()) <= 0.0


def test_rule_head_trains_the_residual_and_rebuilds_from_config():
    net = build("fast", rule_head=True, **_RESTORE).train()
    rng = np.random.default_rng(1)
    ir, vis = (torch.from_numpy(rng.random((2, 1, 32, 48), dtype=np.float32)) for _ in range(2))
    out = net.forward_train(ir, vis)
    (out["fused"] - 0.5).pow(2).mean().backward()
    assert float(net.head.bias.grad[-4:].abs().sum()) > 0  # the residual r receives gradient
    assert_rebuilds(perturb_(net, seed=3), ir, vis)


def test_rule_head_onnx_parity(tmp_path):
    net = perturb_(build("fast", rule_head=True, rule_gain=1.2, **_RESTORE).eval(), seed=7)
    assert onnx_vs_torch(net, tmp_path / "r.onnx", "fast-rule", seed=4) < 1e-3


def _forced(net, d_logit: float, r: float = 0.0):
    """Zero head weights, restoration logits ``d_logit``, residual ``r`` everywhere."""
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.head.bias[:4 * net.n_restore] = d_logit
        net.head.bias[-4:] = r
    return net.eval()


def _gated_vs_plain(option: str, seed: int, r: float = 0.0, **kw) -> tuple[dict, dict]:
    """A net with the gate ``option`` (``rule_gain_gate`` / ``rule_residual_gate``) and one without, same head
    (residual ``r``): equal when no share smooths (logits -30); their ``forward_train`` outputs when the shares are high
    (logits +30) on a seeded white-noise pair."""
    gated, plain = build("fast", **{option: True}, **kw), build("fast", **kw)
    assert gated.config[option] is True and option not in plain.config
    rng = np.random.default_rng(seed)
    ir, vis = (torch.from_numpy(rng.random((1, 1, 64, 80), dtype=np.float32)) for _ in range(2))
    with torch.no_grad():
        torch.testing.assert_close(_forced(gated, -30.0, r)(ir, vis), _forced(plain, -30.0, r)(ir, vis), atol=1e-6,
                                   rtol=0)
        return _forced(gated, 30.0, r).forward_train(ir, vis), _forced(plain, 30.0, r).forward_train(ir, vis)


def _keep(out: dict) -> torch.Tensor:
    """The gates' keep: 1 - the largest restoration share."""
    return 1.0 - torch.maximum(torch.maximum(out["restore_ir"], out["restore_vis"]), out["restore_stripe"])


def test_gain_gate_keeps_the_gain_where_nothing_is_smoothed_and_cuts_it_where_the_shares_are_high():
    with pytest.raises(ValueError, match="rule_gain_gate"):
        build("fast", rule_head=True, rule_gain_gate=True)
    g, p = _gated_vs_plain("rule_gain_gate", 2, rule_head=True, rule_gain=1.5, rule_gain_sigma=8.0, **_RESTORE)
    assert float(_keep(g).mean()) < 0.5
    assert float(g["fused"].std()) < float(p["fused"].std())  # less stretch about the same local mean


def test_residual_gate_adds_r_where_nothing_is_smoothed_and_drops_it_where_the_shares_are_high():
    with pytest.raises(ValueError, match="rule_residual_gate"):
        build("fast", rule_head=True, rule_residual_gate=True)
    g, p = _gated_vs_plain("rule_residual_gate", 5, r=0.1, rule_head=True, **_RESTORE)  # r kept in full at -30
    # shares high: the plain output is the gated one + 0.1 wherever the gate cuts r
    keep = _keep(g)
    assert float(keep.mean()) < 0.5
    assert float((p["raw"] - g["raw"] - 0.1 * (1.0 - keep)).abs().max()) < 1e-5
