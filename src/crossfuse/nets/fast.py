"""``fast``: a small fully convolutional fusion network for CPUs (crossfuse's own design).

Idea: the expensive, context-hungry decision — *which source should dominate here* and *what is the base
intensity* — is made at 1/8 and 1/4 resolution where channels are cheap; full resolution keeps only a thin
(``detail_channels``) path that sees the raw pixels, so edges and the per-pixel choice between IR and VIS stay sharp.
The head predicts a per-pixel weight ``w`` (sigmoid) and a residual ``r``::

    fused = clamp(w * ir + (1 - w) * vis_y + r, 0, 1)

A convex mix can copy either source exactly (``w`` → 0/1 gives max(V, I)-like intensity), and ``r`` adds detail or
contrast beyond both sources. The residual and weight convs are initialised so an untrained net returns the
average of the sources. While training, the clamp passes gradients straight through (see ``common.clamp_unit``).

Layout (C_d = detail_channels, C_m = mid_channels, C_b = base_channels)::

    [ir, vis] (2, H, W)
      ├─ stem 3×3 → C_d ─────────────────────────────────────────────── f0 (H)
      └─ 3×3 s2 → C_m ─────────────────────────────────────── f1 (H/2)
           └─ 3×3 s2 → C_m, mid blocks ─────────────── f2 (H/4)
                └─ 3×3 s2 → C_b, base blocks (dilation 1,2,4,8…) → f3 (H/8)
      f3 → 1×1 → C_m, bilinear ↑ + f2 → block ─────────── g2 (H/4)
      g2 → bilinear ↑ + f1 → block → 1×1 → C_d ─────── g1 (H/2)
      g1 → bilinear ↑ + f0 → LReLU → dw 3×3 → 1×1 → LReLU → 1×1 → (w_logit, r)   (H)

Every block is depthwise-separable: dw 3×3 (dilated) → 1×1 → LeakyReLU, with a residual connection. Upsampling
uses the skip tensor's exact size, so any H, W works (``pad_multiple = 1``) and ONNX export with dynamic H/W works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossfuse.nets.common import check_pair, check_phase, clamp_unit

_SLOPE = 0.1


def _act() -> nn.Module:
    return nn.LeakyReLU(_SLOPE, inplace=True)


class DSBlock(nn.Module):
    """Residual depthwise-separable block: x + LReLU(pw(dw_dilated(x)))."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels)
        self.pw = nn.Conv2d(channels, channels, 1)
        self.act = _act()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.act(self.pw(self.dw(x)))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), _act())


def _up_to(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class FastFuse(nn.Module):
    """CPU-oriented fusion network; see the module docstring for the layout.

    Args:
        detail_channels: width of the full-resolution path.
        mid_channels: width at 1/2 and 1/4 resolution.
        base_channels: width at 1/8 resolution.
        base_blocks: number of residual blocks at 1/8 (dilations cycle 1, 2, 4, 8).
        mid_blocks: number of residual blocks at 1/4 (dilations cycle 1, 2).

    Attributes: ``pad_multiple = 1`` (any size), ``supports_phase1 = False`` (no reconstruction phase),
    ``config`` (the constructor kwargs; ``build("fast", **net.config)`` rebuilds it).
    """

    pad_multiple: int = 1
    supports_phase1: bool = False

    def __init__(
        self,
        detail_channels: int = 8,
        mid_channels: int = 24,
        base_channels: int = 64,
        base_blocks: int = 4,
        mid_blocks: int = 2,
    ) -> None:
        super().__init__()
        for key, val in (("detail_channels", detail_channels), ("mid_channels", mid_channels),
                         ("base_channels", base_channels)):
            if int(val) < 2:
                raise ValueError(f"{key} must be >= 2, got {val}")
        if base_blocks < 0 or mid_blocks < 0:
            raise ValueError(f"block counts must be >= 0, got base_blocks={base_blocks}, mid_blocks={mid_blocks}")
        self.config = dict(detail_channels=detail_channels, mid_channels=mid_channels,
                           base_channels=base_channels, base_blocks=base_blocks, mid_blocks=mid_blocks)
        cd, cm, cb = detail_channels, mid_channels, base_channels
        self.stem = nn.Sequential(nn.Conv2d(2, cd, 3, padding=1), _act())
        self.down1 = _down(cd, cm)
        self.down2 = nn.Sequential(_down(cm, cm), *[DSBlock(cm, (1, 2)[i % 2]) for i in range(mid_blocks)])
        self.down3 = nn.Sequential(_down(cm, cb), *[DSBlock(cb, (1, 2, 4, 8)[i % 4]) for i in range(base_blocks)])
        self.lat3 = nn.Conv2d(cb, cm, 1)
        self.fuse2 = DSBlock(cm, 1)
        self.fuse1 = DSBlock(cm, 1)
        self.lat1 = nn.Conv2d(cm, cd, 1)
        self.head_dw = nn.Conv2d(cd, cd, 3, padding=1, groups=cd)
        self.head_pw = nn.Conv2d(cd, cd, 1)
        self.head_act = _act()
        self.head_out = nn.Conv2d(cd, 2, 1)
        nn.init.zeros_(self.head_out.weight)  # start as the plain average: w = 0.5, r = 0
        nn.init.zeros_(self.head_out.bias)

    def _heads(self, ir: Tensor, vis_y: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([ir, vis_y], dim=1)
        f0 = self.stem(x)
        f1 = self.down1(f0)
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        g2 = self.fuse2(_up_to(self.lat3(f3), f2) + f2)
        g1 = self.lat1(self.fuse1(_up_to(g2, f1) + f1))
        h = F.leaky_relu(_up_to(g1, f0) + f0, _SLOPE)
        h = self.head_act(self.head_pw(self.head_dw(h)))
        out = self.head_out(h)
        return torch.sigmoid(out[:, 0:1]), out[:, 1:2]

    def _fuse(self, ir: Tensor, vis_y: Tensor) -> dict[str, Tensor]:
        check_pair(ir, vis_y)
        w, r = self._heads(ir, vis_y)
        raw = w * ir + (1.0 - w) * vis_y + r
        return {"fused": clamp_unit(raw, straight_through=self.training), "weight": w, "residual": r}

    def forward(self, ir: Tensor, vis_y: Tensor) -> Tensor:
        """Fuse (B, 1, H, W) IR and visible-Y tensors in [0, 1] into a (B, 1, H, W) tensor in [0, 1]."""
        return self._fuse(ir, vis_y)["fused"]

    def forward_train(self, ir: Tensor, vis_y: Tensor, phase: int = 2) -> dict[str, Tensor]:
        """Training hook. Phase 2 only: returns ``{"fused", "weight", "residual"}``; ``fast`` has no base/detail
        encoder features, so the trainer skips L_dec. Phase 1 raises ``ValueError`` (``supports_phase1 = False``)."""
        check_phase(phase, self.supports_phase1, "fast")
        return self._fuse(ir, vis_y)


def fast(**kwargs: int) -> FastFuse:
    """The default fast network (≈50k parameters)."""
    return FastFuse(**kwargs)


def fast_s(**kwargs: int) -> FastFuse:
    """A smaller variant for very weak CPUs / edge devices."""
    cfg = dict(detail_channels=6, mid_channels=16, base_channels=32, base_blocks=3, mid_blocks=1)
    cfg.update(kwargs)
    return FastFuse(**cfg)
