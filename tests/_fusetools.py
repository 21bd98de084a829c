"""Test support for the fusion tests (not a test module): a seeded random-init network with a non-trivial head.

The shipped networks zero-initialise their output convolution, so an untrained net returns the plain average of
the sources, which would make tiling/ONNX/colour tests pass for any blending. ``random_net`` fills every all-zero
parameter with seeded noise so the output depends on context like a trained network's does.
"""

from __future__ import annotations

import torch

from crossfuse.nets import build


def random_net(name: str = "fast", seed: int = 0, std: float = 0.02) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build(name).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in net.parameters():
            if not bool(p.any()):
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return net
