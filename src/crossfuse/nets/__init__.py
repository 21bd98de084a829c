"""Fusion networks behind one explicit registry.

``build(name, **kwargs)`` returns an ``nn.Module`` with the crossfuse network contract:

- ``forward(ir, vis_y) -> fused``: (B, 1, H, W) float tensors in [0, 1] → (B, 1, H, W) in [0, 1];
- ``pad_multiple: int``: inputs must have H and W divisible by it (callers pad with reflect and crop back);
- ``config: dict``: the kwargs it was built with, so ``build(name, **net.config)`` rebuilds it;
- ``supports_phase1: bool`` and ``forward_train(ir, vis_y, phase) -> dict`` for the trainer (see docs/networks.md).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from crossfuse.nets import fast as _fast
from crossfuse.nets import paper as _paper

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "paper": _paper.paper,
    "fast": _fast.fast,
    "fast-s": _fast.fast_s,
}


def list_networks() -> list[str]:
    """Names accepted by :func:`build`, sorted."""
    return sorted(_REGISTRY)


def build(name: str, **kwargs) -> nn.Module:
    """Build the network registered as ``name`` with constructor ``kwargs``.

    Raises ``KeyError`` naming the valid networks when ``name`` is unknown, ``TypeError``/``ValueError`` for bad
    kwargs.
    """
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown network {name!r}; valid names: {', '.join(list_networks())}") from None
    return factory(**kwargs)


__all__ = ["build", "list_networks"]
