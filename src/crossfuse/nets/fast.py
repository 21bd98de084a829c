"""``fast``: a small fully convolutional fusion network for CPUs (crossfuse's own design).

Idea: no convolution runs at full resolution. The pair is packed losslessly into half resolution
(pixel-unshuffle, 2 × 4 = 8 channels), the context-hungry decisions are made at 1/4 and 1/8 resolution where channels
are cheap and the receptive field is wide, and a half-resolution head predicts, for each of the 4 sub-pixels of its
2×2 block, a gain ``a``, a bias ``b`` and a residual ``r`` (pixel-shuffle back to full resolution)::

    w     = sigmoid(s * a * (ir - vis_y) + b)                # per-pixel fusion weight, s = gain_scale
    fused = clamp(w * ir + (1 - w) * vis_y + r, 0, 1)

With a large positive ``a`` the weight becomes max(V, I) selection, a negative one min selection, ``b`` biases
towards one source and ``r`` adds detail and contrast beyond both sources; all three maps vary per pixel.

With ``complement=True`` the head predicts a fourth map ``k``, the share of the *other* (not selected) source that
is added back at full resolution::

    fused = clamp(w * ir + (1 - w) * vis_y + k * ((1 - w) * ir + w * vis_y) + r, 0, 1)

so ``max(V, I) + k * (min(V, I) - pivot)``-style fusion (keep the stronger source, add the weaker one's variation
instead of discarding it) is exact per pixel rather than something ``r`` has to rebuild from half-resolution
features. The fixed ``gain_scale`` (default 20) lets a hard selection (|s·a·Δ| ≫ 1 for source differences
Δ ≈ 0.05) be reached with ordinary learning rates: with s = 1, Adam at lr 1e-4 learns max(V, I) ~6× worse in
400 steps. The output conv is zero-initialised, so an untrained net returns the plain average of the sources.
While training, the clamp passes gradients straight through (``common.clamp_unit``).

Layout (C1, C2, C3 = ``channels``; N1, N2, N3 = ``blocks``)::

    [ir, vis] (2, H, W) ── unshuffle 2 ──> (8, H/2)
      3×3 conv → C1, N1 blocks ─────────────────────────────── f1 (H/2)
        3×3 s2 → C2, N2 blocks (dilation 1, 2) ───────────── f2 (H/4)
          3×3 s2 → C3, N3 blocks (dilation 1, 2, 4, 8) ─── f3 (H/8)
      1×1(f3) → C2, bilinear ↑ + f2, block ──────────────── g2 (H/4)
      1×1(g2) → C1, bilinear ↑ + f1, block ──────────────── g1 (H/2)
      1×1(g1) → 12 = 4 sub-pixels × (a, b, r), shuffle 2 → (3, H, W) → formula above
                (16 = 4 × (a, b, k, r) with ``complement``)

Each block is depthwise-separable with a residual: x + LReLU(1×1(dw3×3_dilated(x))). Upsampling uses the skip
tensor's exact size, so any even H, W works (``pad_multiple = 2``). Inside, tensors are channels-last (oneDNN's
fast path on CPU: ~3× faster than NCHW for these thin convs); this is invisible to callers and to ONNX.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossfuse.nets.common import check_pair, check_phase, clamp_unit

_SLOPE = 0.1


class DSBlock(nn.Module):
    """Residual depthwise-separable block: ``x + LReLU(pw(dw_dilated(x)))``."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels)
        self.pw = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.leaky_relu(self.pw(self.dw(x)), _SLOPE)


def _stage(cin: int, cout: int, stride: int, n_blocks: int, dilations: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(_SLOPE)]
    layers += [DSBlock(cout, dilations[i % len(dilations)]) for i in range(n_blocks)]
    return nn.Sequential(*layers)


def _up_to(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class FastFuse(nn.Module):
    """CPU-oriented fusion network; see the module docstring for the layout.

    Args:
        channels: widths (C1, C2, C3) at 1/2, 1/4 and 1/8 resolution.
        blocks: residual block counts (N1, N2, N3) at those resolutions.
        gain_scale: fixed multiplier of the predicted gain ``a`` (see the module docstring).
        complement: also predict ``k``, the share of the non-selected source added back (module docstring).

    Attributes: ``pad_multiple = 2`` (H and W must be even; callers pad with reflect and crop back),
    ``supports_phase1 = False`` (no reconstruction phase), ``config`` (constructor kwargs as plain lists, so
    ``build("fast", **net.config)`` rebuilds it).
    """

    pad_multiple: int = 2
    supports_phase1: bool = False

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 96),
        blocks: tuple[int, int, int] = (1, 2, 6),
        gain_scale: float = 20.0,
        complement: bool = False,
    ) -> None:
        super().__init__()
        channels, blocks = [int(c) for c in channels], [int(n) for n in blocks]
        if len(channels) != 3 or min(channels) < 4:
            raise ValueError(f"channels must be three widths >= 4, got {channels}")
        if len(blocks) != 3 or min(blocks) < 0:
            raise ValueError(f"blocks must be three counts >= 0, got {blocks}")
        if not gain_scale > 0:
            raise ValueError(f"gain_scale must be > 0, got {gain_scale}")
        self.config = {"channels": channels, "blocks": blocks, "gain_scale": float(gain_scale)}
        if complement:  # only stored when set, so configs (and weights files) of the 3-map head stay as they were
            self.config["complement"] = True
        self.gain_scale = float(gain_scale)
        self.complement = bool(complement)
        self.n_maps = 4 if complement else 3
        c1, c2, c3 = channels
        n1, n2, n3 = blocks
        self.enc1 = _stage(8, c1, 1, n1, (1,))
        self.enc2 = _stage(c1, c2, 2, n2, (1, 2))
        self.enc3 = _stage(c2, c3, 2, n3, (1, 2, 4, 8))
        self.lat3 = nn.Conv2d(c3, c2, 1)
        self.dec2 = DSBlock(c2)
        self.lat2 = nn.Conv2d(c2, c1, 1)
        self.dec1 = DSBlock(c1)
        self.head = nn.Conv2d(c1, 4 * self.n_maps, 1)
        nn.init.zeros_(self.head.weight)  # untrained net = average of the sources
        nn.init.zeros_(self.head.bias)

    def maps(self, ir: Tensor, vis_y: Tensor) -> tuple[Tensor, ...]:
        """The full-resolution maps ``(a, b, r)`` (``(a, b, k, r)`` with ``complement``), each (B, 1, H, W); see
        the module docstring."""
        if not torch.jit.is_tracing():  # shape checks are eager-only; ONNX export traces with example inputs
            check_pair(ir, vis_y)
            if ir.shape[-2] % 2 or ir.shape[-1] % 2:
                raise ValueError(f"fast needs even H and W (pad_multiple = 2), got {tuple(ir.shape[-2:])}")
        x = F.pixel_unshuffle(torch.cat([ir, vis_y], dim=1), 2).contiguous(memory_format=torch.channels_last)
        f1 = self.enc1(x)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        g2 = self.dec2(_up_to(self.lat3(f3), f2) + f2)
        g1 = self.dec1(_up_to(self.lat2(g2), f1) + f1)
        out = F.pixel_shuffle(self.head(g1), 2).contiguous()
        return tuple(out[:, i:i + 1] for i in range(self.n_maps))

    def _fuse(self, ir: Tensor, vis_y: Tensor) -> dict[str, Tensor]:
        maps = self.maps(ir, vis_y)
        a, b, r = maps[0], maps[1], maps[-1]
        w = torch.sigmoid(self.gain_scale * a * (ir - vis_y) + b)
        raw = w * ir + (1.0 - w) * vis_y + r
        if self.complement:
            raw = raw + maps[2] * ((1.0 - w) * ir + w * vis_y)
        return {"fused": clamp_unit(raw, straight_through=self.training), "raw": raw, "weight": w, "residual": r}

    def forward(self, ir: Tensor, vis_y: Tensor) -> Tensor:
        """Fuse (B, 1, H, W) IR and visible-Y tensors in [0, 1] (H, W even) into a (B, 1, H, W) tensor in [0, 1]."""
        return self._fuse(ir, vis_y)["fused"]

    def forward_train(self, ir: Tensor, vis_y: Tensor, phase: int = 2) -> dict[str, Tensor]:
        """Training hook, phase 2 only: ``{"fused", "raw", "weight", "residual"}`` (the unclamped output, weight
        ``w`` and residual ``r`` as (B, 1, H, W) maps). ``fast`` has no per-modality base/detail features, so the
        trainer skips L_dec. Phase 1 raises ``ValueError`` (``supports_phase1 = False``)."""
        check_phase(phase, self.supports_phase1, "fast")
        return self._fuse(ir, vis_y)


def fast(**kwargs) -> FastFuse:
    """The default fast network: channels (16, 32, 96), blocks (1, 2, 6), 104k parameters."""
    return FastFuse(**kwargs)


def fast_s(**kwargs) -> FastFuse:
    """A smaller variant for weak CPUs / edge devices: channels (12, 24, 48), blocks (1, 1, 4)."""
    cfg: dict = {"channels": (12, 24, 48), "blocks": (1, 1, 4)}
    cfg.update(kwargs)
    return FastFuse(**cfg)
