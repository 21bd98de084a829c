"""Visible veil removal: the lifted black level of a hazy or washed-out visible frame, taken off before fusion.

A veil (haze, glare, a camera that lifts its blacks) adds a near-uniform offset to every pixel of the visible frame,
so that even its darkest regions are grey. Its level is estimated the way the dark-channel prior does (He et al.,
CVPR 2009), but for the whole frame: ``floor`` = the ``percentile``-th percentile of the ``window``-px local minimum of
the dark channel (the per-pixel minimum over colour channels). A frame with black regions (enough that 1 % of its
15-px local minimum is black) has ``floor`` = 0 and is left as it is; a veiled one gets
``y' = (y - s floor) / (1 - s floor)`` for a strength ``s`` in [0, 1]: black moves to black, white stays white.

The level is one number per frame, so :class:`crossfuse.infer.Fuser` applies it to the whole visible plane before
any tiling (per-tile levels would leave seams). A network declares its strength as ``vis_veil``
(``crossfuse.nets.fast``; 0 = off); why crossfuse-robust9 uses 0.75: docs/training.md "H44–H46". With
``data.veil = true`` the trainer levels its crops the same way (:func:`lift_veil_batch`; off by default: training
with the step did worse on validation than applying it only at inference, H49).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

WINDOW = 15  # px: larger than fine texture, so a dark object of this size counts as "dark"
PERCENTILE = 1.0  # robust to a few isolated dark pixels (noise, dead pixels)


def veil_floor(dark: np.ndarray, window: int = WINDOW, percentile: float = PERCENTILE) -> float:
    """The veil level in [0, 1) of a frame from its dark channel ``dark`` ((H, W) in [0, 1])."""
    if dark.ndim != 2:
        raise ValueError(f"dark channel must be an (H, W) plane, got shape {dark.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    local_min = cv2.erode(np.ascontiguousarray(dark, dtype=np.float32), np.ones((window, window), np.uint8))
    return float(np.clip(np.percentile(local_min, percentile), 0.0, 0.999))


def lift_veil(y: np.ndarray, floor: float) -> np.ndarray:
    """``(y - floor) / (1 - floor)`` clipped to [0, 1], float32 (``floor`` already scaled by the strength)."""
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"veil floor must be in [0, 1), got {floor}")
    if floor == 0.0:
        return np.asarray(y, dtype=np.float32)
    return np.clip((np.asarray(y, dtype=np.float32) - floor) / (1.0 - floor), 0.0, 1.0)


def lift_veil_batch(y: torch.Tensor, strength: float) -> torch.Tensor:
    """Training: each sample of a (B, 1, H, W) luma batch in [0, 1] levelled by ``strength`` times its own veil floor
    (estimated from Y: training crops carry no colour channels). No gradient flows into the level."""
    import torch

    floors = [strength * veil_floor(sample[0].detach().float().cpu().numpy()) for sample in y]
    f = torch.tensor(floors, dtype=y.dtype, device=y.device).view(-1, 1, 1, 1)
    return ((y - f) / (1 - f)).clamp(0, 1)


__all__ = ["veil_floor", "lift_veil", "lift_veil_batch", "WINDOW", "PERCENTILE"]
