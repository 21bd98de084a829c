"""``paper``: the CrossFuse paper's fusion network (= CDDFuse's, Zhao et al., CVPR 2023), METHOD.md §3.

Full resolution, no down-sampling, 1,188,272 parameters with the reference widths (dim 64, 8 heads)::

    encoder (shared by IR and VIS):  x ─ 3×3 conv 1→64 ─ 4 × Restormer block ─┬─ base head  (BaseBlock)   → Φ_B
                                                                              └─ detail head (3 couplings) → Φ_D
    fusion layers:                   B_F = BaseBlock(Φ_B^V + Φ_B^I);  D_F = DetailHead₁(Φ_D^V + Φ_D^I)
    decoder:                         concat(B, D) ─ 1×1 128→64 ─ 4 × Restormer block ─ 3×3 64→32 ─ LReLU ─
                                     3×3 32→1 ─ (+ residual image) ─ sigmoid

Phase I (reconstruction) decodes each modality from its own encoder features with the residual = that modality's
input; phase II (fusion) decodes the fused features with the residual = VIS Y. The cost is dominated by the dense
3×3 conv on qkv in the two base blocks (≈ 0.66 MMAC per pixel each); expect tens of seconds per megapixel on a CPU.
All convolutions are padded "same", so any H, W works (``pad_multiple = 1``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossfuse.nets.common import check_pair, check_phase
from crossfuse.nets.invertible import DetailHead
from crossfuse.nets.restormer import BaseBlock, TransformerBlock


class PaperEncoder(nn.Module):
    """Shared encoder: ``x`` (B, 1, H, W) → ``(base, detail)`` features, each (B, dim, H, W)."""

    def __init__(self, dim: int, heads: int, blocks: int, expansion: float, detail_nodes: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, dim, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, expansion) for _ in range(blocks)])
        self.base = BaseBlock(dim, heads)
        self.detail = DetailHead(dim, detail_nodes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.blocks(self.embed(x))
        return self.base(f), self.detail(f)


class PaperDecoder(nn.Module):
    """Decoder: ``(residual, base, detail)`` → image in (0, 1) = sigmoid(head(blocks(1×1(concat))) + residual)."""

    def __init__(self, dim: int, heads: int, blocks: int, expansion: float) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(2 * dim, dim, 1, bias=False)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, expansion) for _ in range(blocks)])
        self.head = nn.Sequential(
            nn.Conv2d(dim, dim // 2, 3, padding=1, bias=False),
            nn.LeakyReLU(0.01),
            nn.Conv2d(dim // 2, 1, 3, padding=1, bias=False),
        )

    def forward(self, residual: Tensor, base: Tensor, detail: Tensor) -> Tensor:
        f = self.blocks(self.reduce(torch.cat([base, detail], dim=1)))
        return torch.sigmoid(self.head(f) + residual)


class PaperNet(nn.Module):
    """The paper's network with the training hooks the crossfuse trainer uses.

    Args (reference values are the defaults): ``dim`` 64, ``heads`` 8, ``encoder_blocks`` 4, ``decoder_blocks`` 4,
    ``ffn_expansion`` 2.0, ``detail_nodes`` 3 (encoder's detail head), ``fuse_detail_nodes`` 1 (detail fusion layer).

    Hooks:
        ``encode(x) -> (base, detail)``: shared-encoder features, (B, dim, H, W) each — Φ_B, Φ_D of L_dec.
        ``fuse_features(base_vis, detail_vis, base_ir, detail_ir) -> (base, detail)``: the fusion layers.
        ``decode(residual, base, detail) -> image``.
        ``reconstruct(x) -> x_hat``: phase I for one modality (decoder on its own features, residual = x).
        ``forward_train(ir, vis_y, phase) -> dict``: phase 1 → ``rec_vis``, ``rec_ir``; phase 2 → ``fused``;
        both also return ``base_vis``, ``base_ir``, ``detail_vis``, ``detail_ir``.
    """

    pad_multiple: int = 1
    supports_phase1: bool = True

    def __init__(
        self,
        dim: int = 64,
        heads: int = 8,
        encoder_blocks: int = 4,
        decoder_blocks: int = 4,
        ffn_expansion: float = 2.0,
        detail_nodes: int = 3,
        fuse_detail_nodes: int = 1,
    ) -> None:
        super().__init__()
        if dim < 2 or dim % heads or dim % 2:
            raise ValueError(f"dim must be even and divisible by heads, got dim={dim}, heads={heads}")
        if min(encoder_blocks, decoder_blocks, detail_nodes, fuse_detail_nodes) < 0:
            raise ValueError("block and node counts must be >= 0")
        self.config = dict(dim=dim, heads=heads, encoder_blocks=encoder_blocks, decoder_blocks=decoder_blocks,
                           ffn_expansion=float(ffn_expansion), detail_nodes=detail_nodes,
                           fuse_detail_nodes=fuse_detail_nodes)
        self.encoder = PaperEncoder(dim, heads, encoder_blocks, ffn_expansion, detail_nodes)
        self.fuse_base = BaseBlock(dim, heads)
        self.fuse_detail = DetailHead(dim, fuse_detail_nodes)
        self.decoder = PaperDecoder(dim, heads, decoder_blocks, ffn_expansion)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Shared-encoder ``(base, detail)`` features of one (B, 1, H, W) image."""
        return self.encoder(x)

    def fuse_features(self, base_vis: Tensor, detail_vis: Tensor, base_ir: Tensor, detail_ir: Tensor
                      ) -> tuple[Tensor, Tensor]:
        """Fusion layers: base block on the summed base features, 1-node detail head on the summed details."""
        return self.fuse_base(base_vis + base_ir), self.fuse_detail(detail_vis + detail_ir)

    def decode(self, residual: Tensor, base: Tensor, detail: Tensor) -> Tensor:
        """Decoder output in (0, 1) with ``residual`` (B, 1, H, W) added before the sigmoid."""
        return self.decoder(residual, base, detail)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Phase I: rebuild ``x`` from its own features (residual = ``x``)."""
        return self.decode(x, *self.encode(x))

    def forward_train(self, ir: Tensor, vis_y: Tensor, phase: int = 2) -> dict[str, Tensor]:
        """Everything the losses need for ``phase`` 1 (reconstruction) or 2 (fusion); see the class docstring."""
        check_phase(phase, self.supports_phase1, "paper")
        if not torch.jit.is_tracing():
            check_pair(ir, vis_y)
        base_vis, detail_vis = self.encode(vis_y)
        base_ir, detail_ir = self.encode(ir)
        out = {"base_vis": base_vis, "base_ir": base_ir, "detail_vis": detail_vis, "detail_ir": detail_ir}
        if phase == 1:
            out["rec_vis"] = self.decode(vis_y, base_vis, detail_vis)
            out["rec_ir"] = self.decode(ir, base_ir, detail_ir)
        else:
            out["fused"] = self.decode(vis_y, *self.fuse_features(base_vis, detail_vis, base_ir, detail_ir))
        return out

    def forward(self, ir: Tensor, vis_y: Tensor) -> Tensor:
        """Fuse (B, 1, H, W) IR and visible-Y tensors in [0, 1] into a (B, 1, H, W) tensor in (0, 1)."""
        return self.forward_train(ir, vis_y, phase=2)["fused"]


def paper(**kwargs) -> PaperNet:
    """The paper's network (reference widths by default: 1,188,272 parameters)."""
    return PaperNet(**kwargs)
