"""IR destriping: the column and row offsets of an uncooled IR sensor (fixed-pattern noise), taken off before fusion
when they are plainly there.

A stripe is an offset shared by a whole column (or row). Each column's offset is estimated as the median over rows of
the plane minus its ``window``-px horizontal box mean (the median ignores the rows where real structure crosses the
column); the row offsets likewise, after the columns. Run on every frame, this takes real column structure off clean
IR as well and costs more than it gives (docs/training.md "H54"), so it is gated: only a plane whose column offsets
spread (their standard deviation) over :data:`GATE` grey levels is destriped. On the validation IR planes a clean
frame's spread is 0.04–2.5 grey levels (one 211-row RoadScene frame with real column structure: 7.5) and a striped
one's 9.7–11.7; why 8: docs/training.md "H55". Everything under the gate is returned as it is, bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

WINDOW = 15  # px: wider than a stripe, narrow enough to follow the scene
GATE = 8.0  # grey levels (0-255 scale) of column-offset spread above which a plane counts as striped
BORDER_TOL = 1.0 / 255  # a border row / column spans at most this (one grey level)


def _offsets(plane: np.ndarray, window: int, axis: int) -> np.ndarray:
    """Median over the other axis of the plane minus its box mean along ``axis`` (1: columns, 0: rows)."""
    size = (window, 1) if axis == 1 else (1, window)
    residual = plane - cv2.blur(plane, size, borderType=cv2.BORDER_REFLECT)
    return np.median(residual, axis=1 - axis)


def column_offsets(plane: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """The (W,) column offsets of a float32 (H, W) plane (same units as the plane)."""
    return _offsets(np.ascontiguousarray(plane, dtype=np.float32), window, axis=1)


def stripe_spread(plane: np.ndarray, window: int = WINDOW) -> float:
    """The standard deviation of the column offsets of an (H, W) plane in [0, 1] inside its constant borders, in grey
    levels (0-255): what :func:`destripe` compares with its gate."""
    rows, cols = content_box(plane)
    inner = plane[rows, cols]
    return float(np.std(column_offsets(inner, window))) * 255.0 if min(inner.shape) >= window else 0.0


def content_box(plane: np.ndarray, tol: float = BORDER_TOL) -> tuple[slice, slice]:
    """The rows and columns of an (H, W) plane inside its constant borders (leading / trailing rows and columns whose
    values span at most ``tol``: letterboxing, the zero fill of a warped frame, a camera's black frame)."""

    def inner(spans: np.ndarray) -> slice:
        live = np.flatnonzero(spans > tol)
        return slice(int(live[0]), int(live[-1]) + 1) if live.size else slice(0, 0)

    return inner(np.ptp(plane, axis=1)), inner(np.ptp(plane, axis=0))


def destripe(plane: np.ndarray, gate: float = GATE, window: int = WINDOW) -> tuple[np.ndarray, float]:
    """``(plane', spread)``: an (H, W) IR plane in [0, 1] with its column and then row offsets taken off (float32,
    clipped to [0, 1]) when its :func:`stripe_spread` is over ``gate``, else the plane itself (same object).

    Constant borders (:func:`content_box`) are left out of the estimate and left as they are: a box mean across a
    black border would read the border's edge as a ramp of column offsets."""
    if plane.ndim != 2:
        raise ValueError(f"expected an (H, W) plane, got shape {plane.shape}")
    rows, cols = content_box(plane)
    x = np.array(plane[rows, cols], dtype=np.float32)
    if min(x.shape) < window:
        return plane, 0.0
    col_off = _offsets(x, window, axis=1)
    spread = float(np.std(col_off)) * 255.0
    if spread <= gate:
        return plane, spread
    x -= col_off[None, :]
    x -= _offsets(x, window, axis=0)[:, None]
    out = np.array(plane, dtype=np.float32)
    out[rows, cols] = np.clip(x, 0.0, 1.0)
    return out, spread
