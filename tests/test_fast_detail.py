"""The fast net's full-resolution detail gain after fusion (``detail_gain``, src/crossfuse/nets/fast.py): off by
default, identity when untrained, ``raw + gamma (raw - D(raw))`` with the gain map forced, checked on a 1-px
checkerboard (its 2 x 2 means, hence ``D``, are exactly 0.5); trainable; ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import onnx_vs_torch, perturb_

from crossfuse.nets import build

torch.set_num_threads(1)

_KW = dict(complement=True, restore=True, restore_stripe=3.0, restore_floor=15)


def _checker(h: int = 64, w: int = 96, amp: float = 0.1) -> torch.Tensor:
    yy, xx = np.mgrid[0:h, 0:w]
    return torch.from_numpy(0.5 + amp * ((yy + xx) % 2 * 2 - 1)).float()[None, None]


def _force_e(net, logit: float) -> None:
    """Zero head weights and biases, smoothing shares off (d logits -30), gain logit ``logit`` on the last map."""
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        first = 4 * (net.n_maps - 1 - net.n_detail - net.n_restore)
        net.head.bias[first:first + 4 * net.n_restore] = -30.0
        net.head.bias[-4:] = logit


def test_detail_gain_is_off_by_default_and_adds_one_map():
    plain, det = build("fast", **_KW), build("fast", detail_gain=1.0, **_KW)
    assert "detail_gain" not in plain.config and plain.n_detail == 0
    assert det.config["detail_gain"] == 1.0 and det.config["detail_sigma"] == 4.0
    assert det.n_maps == plain.n_maps + 1 and set(det.state_dict()) == set(plain.state_dict())
    with pytest.raises(ValueError, match="detail_gain"):
        build("fast", detail_gain=-1.0)


def test_untrained_gain_is_identity_and_receives_gradient():
    net = build("fast", detail_gain=1.0, complement=True)  # no restore: the untrained net is the plain average
    rng = np.random.default_rng(3)
    ir, vis = (torch.from_numpy(rng.random((1, 1, 32, 48), dtype=np.float32)) for _ in range(2))
    out = net.train().forward_train(ir, vis)
    torch.testing.assert_close(out["fused"], (ir + vis) / 2, atol=1e-6, rtol=0)
    assert float(out["detail_gain"].detach().abs().max()) == 0.0
    # a loss that wants more contrast than the average has pulls the gain logit up
    (-(out["fused"] - out["fused"].mean()).pow(2).mean()).backward()
    assert float(net.head.bias.grad[-4:].sum()) < 0  # gradient descent raises the bias: more detail gain


@pytest.mark.parametrize("gain, logit, want", [(1.0, 30.0, 2.0), (2.0, 30.0, 3.0), (1.0, -0.05493, 0.5)])
def test_forced_gain_scales_detail_about_the_local_mean(gain, logit, want):
    net = build("fast", detail_gain=gain, **_KW).eval()
    _force_e(net, logit)  # a = b = k = r = 0: w = 1/2, raw = the common source exactly
    c = _checker()
    with torch.no_grad():
        out = net(c, c)
    # a 1-px checkerboard averages to 0.5 in every 2 x 2 block: D = 0.5, detail +-0.1, scaled by 1 + gamma
    torch.testing.assert_close(out, 0.5 + want * (c - 0.5), atol=1e-4, rtol=0)


def test_detail_onnx_parity(tmp_path):
    net = perturb_(build("fast", detail_gain=1.0, **_KW).eval(), seed=32)
    with torch.no_grad():
        net.head.bias[-4:] = 0.05  # gain logits about 0.05: the detail gain acts visibly
    assert onnx_vs_torch(net, tmp_path / "d.onnx", "fast-detail", seed=2) < 1e-3
