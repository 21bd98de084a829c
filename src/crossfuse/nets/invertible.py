"""The high-frequency ("detail") head of the ``paper`` network: invertible affine-coupling nodes (as in CDDFuse,
Zhao et al., CVPR 2023, after Dinh et al.'s RealNVP couplings) whose sub-networks are MobileNetV2 inverted-residual
blocks (Sandler et al., CVPR 2018) without normalisation. Written from the papers' descriptions."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class InvertedResidual(nn.Module):
    """1×1 expand → ReLU6 → reflect-padded depthwise 3×3 → ReLU6 → 1×1 project (no bias, no norm, no skip)."""

    def __init__(self, channels: int, expand: int = 2) -> None:
        super().__init__()
        hidden = channels * expand
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU6(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(hidden, hidden, 3, groups=hidden, bias=False),
            nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class CouplingNode(nn.Module):
    """One affine-coupling node on a (z1, z2) channel split: mix with a 1×1 conv (with bias), then
    ``z2 += φ(z1)``; ``z1 = z1·exp(ρ(z2)) + η(z2)``."""

    def __init__(self, half: int) -> None:
        super().__init__()
        self.phi = InvertedResidual(half)
        self.rho = InvertedResidual(half)
        self.eta = InvertedResidual(half)
        self.mix = nn.Conv2d(2 * half, 2 * half, 1, bias=True)

    def forward(self, z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = self.mix(torch.cat([z1, z2], dim=1)).chunk(2, dim=1)
        z2 = z2 + self.phi(z1)
        z1 = z1 * torch.exp(self.rho(z2)) + self.eta(z2)
        return z1, z2


class DetailHead(nn.Module):
    """``n_nodes`` coupling nodes on a ``dim`` = 2·half channel tensor (split in halves, re-joined at the end)."""

    def __init__(self, dim: int, n_nodes: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"detail head needs an even width, got {dim}")
        self.nodes = nn.ModuleList(CouplingNode(dim // 2) for _ in range(n_nodes))

    def forward(self, x: Tensor) -> Tensor:
        z1, z2 = x.chunk(2, dim=1)
        for node in self.nodes:
            z1, z2 = node(z1, z2)
        return torch.cat([z1, z2], dim=1)
