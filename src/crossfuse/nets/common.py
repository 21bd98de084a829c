"""Small helpers shared by the fusion networks (input checks, parameter counts)."""

from __future__ import annotations

from torch import Tensor, nn


def check_pair(ir: Tensor, vis_y: Tensor) -> None:
    """Raise ``ValueError`` unless ``ir`` and ``vis_y`` are matching (B, 1, H, W) floating tensors.

    Only shapes and dtypes are inspected (never tensor values), so the check is traced away by ONNX export.
    """
    for name, t in (("ir", ir), ("vis_y", vis_y)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] != 1:
            raise ValueError(f"{name} must have shape (B, 1, H, W), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor in [0, 1], got dtype {t.dtype}")
    if ir.shape != vis_y.shape:
        raise ValueError(f"ir and vis_y shapes differ: {tuple(ir.shape)} vs {tuple(vis_y.shape)}")


def check_phase(phase: int, supports_phase1: bool, name: str) -> None:
    """Raise ``ValueError`` for a training phase the network cannot run."""
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 (reconstruction) or 2 (fusion), got {phase!r}")
    if phase == 1 and not supports_phase1:
        raise ValueError(f"network {name!r} has no phase I (reconstruction); train it with phase=2 only")


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def clamp_unit(x: Tensor, straight_through: bool) -> Tensor:
    """Clamp to [0, 1]; with ``straight_through`` the gradient passes as if unclamped (used while training so
    out-of-range pixels are still pulled back by the losses instead of receiving zero gradient)."""
    clamped = x.clamp(0.0, 1.0)
    if straight_through:
        return x + (clamped - x).detach()
    return clamped


__all__ = ["check_pair", "check_phase", "count_parameters", "clamp_unit"]
