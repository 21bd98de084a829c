"""Restormer building blocks used by the ``paper`` network (Zamir et al., "Restormer", CVPR 2022), in the
configuration CDDFuse (Zhao et al., CVPR 2023, github Zhaozixiang1228/MMIF-CDDFuse ``net.py``) and CrossFuse use:
bias-free convolutions, LayerNorm with bias over channels, and two attention/FFN variants — the standard
transformer block (MDTA + gated-dconv FFN) and CDDFuse's lighter "base" block (dense 3×3 conv on qkv, FFN with
expansion 1 and a depthwise conv grouped in pairs). Written from the papers' descriptions; parameter counts match
the reference exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor, with weight and bias (eps 1e-5, biased variance),
    i.e. Restormer's ``WithBias_LayerNorm`` applied per pixel."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(dim=1, keepdim=True)
        var = (x - mu).pow(2).mean(dim=1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


def transposed_attention(q: Tensor, k: Tensor, v: Tensor, heads: int, temperature: Tensor) -> Tensor:
    """Restormer's channel ("transposed") attention: per head, softmax(norm(q) norm(k)ᵀ · t) v over the channel axis,
    with q, k L2-normalised along the pixels. Inputs (B, C, H, W), C divisible by ``heads``; cost linear in H·W."""
    b, c, h, w = q.shape
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in (q, k, v))
    q = F.normalize(q, dim=-1)
    k = F.normalize(k, dim=-1)
    attn = torch.softmax((q @ k.transpose(-2, -1)) * temperature, dim=-1)
    return (attn @ v).reshape(b, c, h, w)


class MDTA(nn.Module):
    """Multi-Dconv-head Transposed Attention: 1×1 qkv, depthwise 3×3 on qkv, channel attention, 1×1 out."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dw = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        return self.out(transposed_attention(q, k, v, self.heads, self.temperature))


class GatedDconvFFN(nn.Module):
    """Gated-Dconv feed-forward: 1×1 to 2·hidden, depthwise 3×3 (``dw_groups`` groups), GELU(x1)·x2, 1×1 back.

    The standard Restormer FFN is fully depthwise (``dw_groups = 2·hidden``); CDDFuse's base-head MLP groups the
    3×3 conv by ``hidden`` (pairs of channels), which ``pair_groups=True`` reproduces."""

    def __init__(self, dim: int, expansion: float, pair_groups: bool = False) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.inp = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        groups = hidden if pair_groups else hidden * 2
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=groups, bias=False)
        self.out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dw(self.inp(x)).chunk(2, dim=1)
        return self.out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """Restormer block: x + MDTA(LN(x)); x + FFN(LN(x)) (FFN expansion 2 in the reference)."""

    def __init__(self, dim: int, heads: int, expansion: float) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = MDTA(dim, heads)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GatedDconvFFN(dim, expansion)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class DenseQKVAttention(nn.Module):
    """CDDFuse's base-head attention: 1×1 qkv, *dense* 3×3 conv on qkv, channel attention, 1×1 out."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv1 = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv2 = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, bias=False)
        self.proj = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv2(self.qkv1(x)).chunk(3, dim=1)
        return self.proj(transposed_attention(q, k, v, self.heads, self.scale))


class BaseBlock(nn.Module):
    """The low-frequency ("base") head: a light transformer block with dense-qkv attention and an FFN of
    expansion 1 (pair-grouped depthwise conv). Used as the encoder's base head and as the base fusion layer."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = DenseQKVAttention(dim, heads)
        self.norm2 = ChannelLayerNorm(dim)
        self.mlp = GatedDconvFFN(dim, 1.0, pair_groups=True)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
