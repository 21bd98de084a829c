"""Any-size inference helpers: pad to a multiple and crop back, overlapping tiles with seamless blending.

Everything here works on NumPy ``float32`` planes ``(H, W)`` and a ``run(ir, vis_y) -> fused`` callable on
``(H, W)`` planes (or returning ``(C, H, W)``: each plane padded, tiled and blended alike), so the PyTorch and
ONNX backends share it.

Padding follows BasicSR's pad-to-multiple-and-crop inference (reflect padding at the bottom/right, output cropped
back to the input size exactly). Tiling follows the usual overlap-and-blend scheme: tiles overlap by ``overlap``
pixels and start on multiples of the network's stride (``align``); inside each overlap the two tiles' weights are
complementary raised-cosine ramps (``cos²``/``sin²``) that span only the *middle half* of the overlap, so every
output pixel comes from tile pixels at least ``overlap / 4`` away from the tile's cut edge (where the network sees
zero padding instead of the real neighbourhood). Weights of all tiles sum to 1 everywhere; the result is
normalised by the weight sum anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

PlaneFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an ``(H, W)`` plane at the bottom/right to multiples of ``multiple`` (reflect; edge for tiny planes)."""
    h, w = x.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, ((0, ph), (0, pw)), mode=mode)


def run_padded(run: PlaneFn, ir: np.ndarray, vis_y: np.ndarray, multiple: int) -> np.ndarray:
    """Run ``run`` on planes padded to ``multiple`` and crop the result back to the input size."""
    h, w = ir.shape
    out = run(pad_to_multiple(ir, multiple), pad_to_multiple(vis_y, multiple))
    return out[..., :h, :w]  # (H, W), or (C, H, W) for a run that returns several planes


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """``[start, end)`` spans of tiles of about ``tile`` pixels covering ``[0, length)``.

    Starts are multiples of ``align`` (the network's total stride: a tile then sees the same sampling grid of
    the strided layers as the whole frame would), consecutive tiles overlap by at least ``overlap`` pixels, the
    first starts at 0 and the last ends at ``length`` (it may be up to ``align - 1`` pixels longer than ``tile``).
    """
    if tile >= length:
        return [(0, length)]
    if overlap + align >= tile:
        raise ValueError(f"overlap ({overlap}) + alignment ({align}) must be smaller than the tile size ({tile})")
    eff = overlap + align - 1  # rounding a start down may cost up to align - 1 pixels of overlap
    n = max(2, math.ceil((length - eff) / (tile - eff)))
    starts = [(i * (length - tile) // (n - 1)) // align * align for i in range(n)]
    starts = sorted(set(starts))
    return [(s, s + tile if i + 1 < len(starts) else length) for i, s in enumerate(starts)]


def _ramp_weights(spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """1-D blending weights of each tile (see the module docstring)."""
    weights = []
    for i, (s, e) in enumerate(spans):
        x = np.arange(s, e, dtype=np.float64)
        wgt = np.ones(e - s, dtype=np.float64)
        if i + 1 < len(spans):  # falling ramp across the overlap with the next tile
            a, b = spans[i + 1][0], e
            lo, hi = a + (b - a) / 4.0, b - (b - a) / 4.0
            wgt *= np.cos(0.5 * np.pi * np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)) ** 2
        if i > 0:  # rising ramp across the overlap with the previous tile
            a, b = s, spans[i - 1][1]
            lo, hi = a + (b - a) / 4.0, b - (b - a) / 4.0
            wgt *= np.sin(0.5 * np.pi * np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)) ** 2
        weights.append(wgt.astype(np.float32))
    return weights


def run_tiled(run: PlaneFn, ir: np.ndarray, vis_y: np.ndarray, *, tile: int, overlap: int,
              multiple: int = 1, align: int = 32) -> np.ndarray:
    """Fuse ``(H, W)`` planes tile by tile and blend; the result has the input's size exactly.

    Each tile is padded to ``multiple`` and cropped back (:func:`run_padded`); tile starts are multiples of
    ``align`` (use the network's total stride or a multiple of it). Peak extra memory is two ``(H, W)`` float32
    accumulators plus one tile's network activations.
    """
    if tile < 16:
        raise ValueError(f"tile size must be at least 16 pixels, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    h, w = ir.shape
    if tile >= h and tile >= w:
        return run_padded(run, ir, vis_y, multiple)
    ys, xs = tile_spans(h, tile, overlap, align), tile_spans(w, tile, overlap, align)
    wy, wx = _ramp_weights(ys), _ramp_weights(xs)
    acc: np.ndarray | None = None  # (H, W), or (C, H, W) when ``run`` returns several planes
    norm = np.zeros((h, w), dtype=np.float32)
    for (y0, y1), wyi in zip(ys, wy, strict=True):
        for (x0, x1), wxi in zip(xs, wx, strict=True):
            sl = (slice(y0, y1), slice(x0, x1))
            out = run_padded(run, np.ascontiguousarray(ir[sl]), np.ascontiguousarray(vis_y[sl]), multiple)
            wgt = wyi[:, None] * wxi[None, :]
            if acc is None:
                acc = np.zeros((*out.shape[:-2], h, w), dtype=np.float32)
            acc[(..., *sl)] += out * wgt
            norm[sl] += wgt
    if acc is None or float(norm.min()) <= 0.0:  # cannot happen with the ramps above; guard against silent black seams
        raise RuntimeError("tile weights do not cover the image; report this as a bug")
    acc /= norm
    return acc


def count_tiles(h: int, w: int, tile: int, overlap: int, align: int = 32) -> int:
    """Number of tiles :func:`run_tiled` uses for an ``h`` x ``w`` frame."""
    if tile >= h and tile >= w:
        return 1
    return len(tile_spans(h, tile, overlap, align)) * len(tile_spans(w, tile, overlap, align))
