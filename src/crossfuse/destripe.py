"""IR destriping: the column and row offsets of an uncooled IR sensor (fixed-pattern noise), taken off before fusion
when they are plainly there.

A stripe is an offset shared by a whole column (or row): the column differs from its neighbours on both sides in every
row. Each pixel's residual is taken against the mean of its :data:`SIDE` left neighbours or of its :data:`SIDE` right
neighbours, whichever residual is smaller in magnitude — at a step edge (a frame border, hazy or not; a building's
side) one side lies on the pixel's own plateau, so edges read ~0 instead of a ramp of false offsets (a two-sided box
mean drew a halo along a black frame, docs/training.md "H56"); constant borders are left out altogether. A column's
offset is the median of its residuals over rows (the median ignores the rows where real structure crosses it); rows
likewise, after the columns. Run on every frame this takes real column structure off clean IR and costs more than it
gives (H54), so it is gated: only a plane whose column offsets spread (their standard deviation) over :data:`GATE`
grey levels is destriped. On the validation IR planes a clean frame's spread is 0.02–3.3 grey levels and a striped
one's 7.6–10.5 (H56). Everything under the gate is returned as it is, bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

SIDE = 7  # px on each side: wider than a stripe, narrow enough to follow the scene
GATE = 5.0  # grey levels (0-255 scale) of column-offset spread above which a plane counts as striped
BORDER_TOL = 1.0 / 255  # a constant border row / column spans at most this (one grey level)


def _offsets(plane: np.ndarray, axis: int) -> np.ndarray:
    """Per column (``axis`` 1) or row (``axis`` 0): the median over the other axis of each pixel's smaller residual
    against its one-sided neighbour means."""
    left = np.zeros(2 * SIDE + 1, np.float32)
    right = left.copy()
    left[:SIDE] = right[SIDE + 1:] = 1.0 / SIDE
    shape = (1, -1) if axis == 1 else (-1, 1)
    r_left = plane - cv2.filter2D(plane, -1, left.reshape(shape), borderType=cv2.BORDER_REFLECT)
    r_right = plane - cv2.filter2D(plane, -1, right.reshape(shape), borderType=cv2.BORDER_REFLECT)
    residual = np.where(np.abs(r_left) < np.abs(r_right), r_left, r_right)
    return np.median(residual, axis=1 - axis)


def column_offsets(plane: np.ndarray) -> np.ndarray:
    """The (W,) column offsets of an (H, W) plane (same units as the plane)."""
    return _offsets(np.ascontiguousarray(plane, dtype=np.float32), axis=1)


def content_box(plane: np.ndarray, tol: float = BORDER_TOL) -> tuple[slice, slice]:
    """The rows and columns of an (H, W) plane inside its constant borders (leading / trailing rows and columns whose
    values span at most ``tol``: letterboxing, the zero fill of a warped frame, a camera's black frame)."""

    def inner(spans: np.ndarray) -> slice:
        live = np.flatnonzero(spans > tol)
        return slice(int(live[0]), int(live[-1]) + 1) if live.size else slice(0, 0)

    return inner(np.ptp(plane, axis=1)), inner(np.ptp(plane, axis=0))


def stripe_spread(plane: np.ndarray) -> float:
    """The standard deviation of the column offsets of an (H, W) plane in [0, 1] inside its constant borders, in grey
    levels (0-255): what :func:`destripe` compares with its gate."""
    rows, cols = content_box(plane)
    inner = plane[rows, cols]
    return float(np.std(column_offsets(inner))) * 255.0 if min(inner.shape) > 2 * SIDE else 0.0


def destripe(plane: np.ndarray, gate: float = GATE) -> tuple[np.ndarray, float]:
    """``(plane', spread)``: an (H, W) IR plane in [0, 1] with its column and then row offsets taken off (float32,
    clipped to [0, 1]) when its :func:`stripe_spread` is over ``gate``, else the plane itself (same object).

    Constant borders (:func:`content_box`) are left out and left as they are: a padded black band has no stripes, and
    taking a column's offset off it would draw the inverse pattern into it."""
    if plane.ndim != 2:
        raise ValueError(f"expected an (H, W) plane, got shape {plane.shape}")
    rows, cols = content_box(plane)
    x = np.array(plane[rows, cols], dtype=np.float32)
    if min(x.shape) <= 2 * SIDE:
        return plane, 0.0
    col_off = _offsets(x, axis=1)
    spread = float(np.std(col_off)) * 255.0
    if spread <= gate:
        return plane, spread
    x -= col_off[None, :]
    x -= _offsets(x, axis=0)[:, None]
    out = np.array(plane, dtype=np.float32)
    out[rows, cols] = np.clip(x, 0.0, 1.0)
    return out, spread
