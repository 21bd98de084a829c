"""The fast net's deblocking restoration (``restore_deblock``, src/crossfuse/nets/fast.py): off by default; with its
level forced low it changes nothing; with a moderate level it brings a JPEG-compressed real pair closer to the
uncompressed one (OpenCV's encoder: an independent source of block artefacts); trainable; rebuilt from its config;
ONNX parity."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import assert_rebuilds, first_pair_u8, onnx_vs_torch, perturb_

from crossfuse.nets import build

torch.set_num_threads(1)

_NET = dict(rule_head=True, restore=True, restore_stripe=3.0, restore_floor=63, restore_detach=True,
            restore_evidence=True, restore_deblock=2.0)
_DEBLOCK = slice(12, 20)  # head biases of b_ir, b_vis: maps 3 and 4 (after d_ir, d_vis, d_str), 4 sub-pixels each


def _jpeg_pair(quality: int) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """RoadScene's first pair as 8-bit planes (IR, visible luma; even size) and their JPEG-compressed tensors."""
    planes = list(first_pair_u8("RoadScene"))
    h, w = (s // 2 * 2 for s in planes[0].shape)
    planes = [p[:h, :w] for p in planes]
    coded = [cv2.imdecode(cv2.imencode(".jpg", p, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE)
             for p in planes]
    return planes, [torch.from_numpy(c.astype(np.float32) / 255.0)[None, None] for c in coded]


def _forced(deblock_logit: float) -> torch.nn.Module:
    """Zero head weights; noise and stripe shares off (logit -30), deblocking logits ``deblock_logit``, r = 0."""
    net = build("fast", **_NET)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.head.bias[:12] = -30.0
        net.head.bias[_DEBLOCK] = deblock_logit
    return net.eval()


def _error(restored: dict, clean: list[np.ndarray]) -> float:
    """Mean absolute error (grey levels) of the restored sources against the uncompressed planes."""
    outs = (restored["restored_ir"], restored["restored_vis"])
    return float(np.mean([np.abs(o[0, 0].numpy() * 255.0 - c).mean() for o, c in zip(outs, clean)]))


def test_deblock_is_off_by_default_and_stored_when_set():
    assert "restore_deblock" not in build("fast", restore=True).config
    net = build("fast", **_NET)
    assert net.config["restore_deblock"] == 2.0 and net.config["restore_deblock_max"] == 0.1
    assert net.n_restore == 5  # d_ir, d_vis, d_str, b_ir, b_vis
    with pytest.raises(ValueError, match="restore_deblock"):
        build("fast", restore=True, restore_deblock=-1.0)


def test_deblock_brings_a_jpeg_pair_closer_to_the_uncompressed_one():
    clean, (ir, vis) = _jpeg_pair(10)
    with torch.no_grad():
        off, on = _forced(-30.0).forward_train(ir, vis), _forced(-1.5).forward_train(ir, vis)
    before = float(np.mean([np.abs(x[0, 0].numpy() * 255.0 - c).mean() for x, c in zip((ir, vis), clean)]))
    assert abs(_error(off, clean) - before) < 1e-3  # level ~0: the sources pass unchanged
    assert float(off["deblock_vis"].max()) < 1e-6
    # measured 4.84 -> 4.44 grey levels (quality 10); a level of ~7 grey levels (logit -1.5) smooths 80 % of pixels
    assert _error(on, clean) < before - 0.25
    assert 0.5 < float(on["deblock_vis"].mean()) < 1.0


def test_deblock_shares_are_trained_by_the_restored_sources_and_rebuild_from_config():
    _, (ir, vis) = _jpeg_pair(30)
    net = build("fast", **_NET).train()
    out = net.forward_train(ir[..., :64, :96], vis[..., :64, :96])
    (out["restored_vis"] - 0.5).abs().mean().backward()
    assert float(net.head.bias.grad[_DEBLOCK].abs().sum()) > 0
    assert_rebuilds(perturb_(net, seed=3), ir, vis)


def test_deblock_onnx_parity(tmp_path):
    net = perturb_(build("fast", rule_gain=1.2, rule_gain_gate=True, **_NET).eval(), seed=7)
    assert onnx_vs_torch(net, tmp_path / "d.onnx", "fast-deblock", seed=5) < 1e-3
