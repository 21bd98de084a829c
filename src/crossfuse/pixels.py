"""What ``fuse`` does to your pixels before and after the network (one owner of these conventions; docs/fuse.md):
the IR window, the visible luma, the output's colour and dtype, and the optional stretch. :mod:`crossfuse.infer`
uses these on whole planes; the video path and the benchmarks call them directly.

* **Inputs.** ``ir``: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (3 channels are reduced to BT.601 luma);
  ``vis``: ``(H, W)`` gray or ``(H, W, 3)`` RGB. Dtypes ``uint8``, ``uint16`` or float (float is on the 0-255
  scale, as everywhere in crossfuse). Both must have the same height and width.
* **Visible scaling.** uint8 / 255, uint16 / 65535, float / 255 (then clipped to [0, 1]).
* **IR scaling** (``ir_window``, see :func:`resolve_ir_window`): ``"auto"`` (default) keeps 8-bit and 0-255 float IR
  as they are (``/ 255``) and maps **16-bit radiometric IR** (and float IR outside 0-255, e.g. kelvin) through the
  percentile window 0.5-99.5 %; ``"full"`` (the dtype's whole range), ``"minmax"``, ``"p<LO>,<HI>"``
  (percentiles) and ``"fixed:<LO>,<HI>"`` (raw values) choose explicitly. Values outside the window clip to 0 / 1.
  For video, the window is computed once (:func:`resolve_ir_window` on the first frame) and kept for the clip.
* **Colour** (METHOD.md, "Everything runs on one luminance channel"): a colour visible image is converted to YCrCb
  (BT.601 full range, :func:`crossfuse.io.rgb_to_ycrcb`); the network fuses Y with IR; the visible Cr/Cb are put
  back (:func:`crossfuse.io.ycrcb_to_rgb`). Gray in -> gray out, RGB in -> RGB out (``gray=True``: fused Y only).
* **Output dtype** = the visible input's dtype unless ``dtype`` is given: integers are rounded and clipped (never
  truncated); float output is float32 on the 0-255 scale, clipped to [0, 255].
* **No silent stretching.** The fused Y is returned as the network made it; ``stretch=True`` min-max stretches it
  to the full range (the reference code always does this; it inflates SD/EN/SF, METHOD.md §5).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np

from crossfuse import io as cio

DEFAULT_IR_PERCENTILES = (0.5, 99.5)
_STRIP = 256  # rows per strip for colour conversion (bounds temporaries on huge frames)


def parse_ir_window(spec: str | tuple[float, float] | None) -> tuple[str, tuple[float, float] | None]:
    """Parse an IR window spec into ``(kind, values)``; kinds: auto, full, minmax, percentile, fixed.

    Accepted: ``"auto"``, ``"full"``, ``"minmax"``, ``"p0.5,99.5"`` / ``"percentile:0.5,99.5"``,
    ``"fixed:LO,HI"``, or a ``(lo, hi)`` tuple (fixed raw values).
    """
    if spec is None:
        return "auto", None
    if isinstance(spec, (tuple, list)):
        lo, hi = (float(v) for v in spec)
        kind, vals = "fixed", (lo, hi)
    else:
        s = str(spec).strip().lower()
        if s in ("auto", "full", "minmax"):
            return s, None
        m = re.fullmatch(r"(p|percentile:|fixed:)\s*([-+0-9.e]+)\s*,\s*([-+0-9.e]+)", s)
        if not m:
            raise ValueError(f"cannot read IR window {spec!r}; use auto, full, minmax, p0.5,99.5 or fixed:LO,HI")
        kind = "fixed" if m.group(1) == "fixed:" else "percentile"
        try:
            vals = (float(m.group(2)), float(m.group(3)))
        except ValueError:
            raise ValueError(f"cannot read the numbers of IR window {spec!r}") from None
    lo, hi = vals
    if not lo < hi:
        raise ValueError(f"IR window {spec!r}: low ({lo}) must be below high ({hi})")
    if kind == "percentile" and not (0.0 <= lo and hi <= 100.0):
        raise ValueError(f"IR window {spec!r}: percentiles must lie in [0, 100]")
    return kind, vals


def _subsample(x: np.ndarray, max_pixels: int = 1 << 20) -> np.ndarray:
    step = max(1, int(math.ceil(math.sqrt(x.size / max_pixels))))
    return x[::step, ::step]


def resolve_ir_window(ir: np.ndarray, spec: str | tuple[float, float] | None = "auto") -> tuple[float, float]:
    """The raw-value window ``(lo, hi)`` that maps ``ir`` to [0, 1] under ``spec`` (see the module docstring).

    Percentiles are taken on an evenly strided subsample of at most ~1 M pixels (exact for smaller frames).
    A flat frame (``lo == hi``) gets ``hi = lo + 1``.
    """
    kind, vals = parse_ir_window(spec)
    stored = np.asarray(ir).dtype
    plane = None if kind == "fixed" else _ir_plane(ir)  # video calls this per frame with a fixed window
    if kind == "auto":
        if stored == np.uint16 or (stored.kind == "f" and (plane.min() < 0 or plane.max() > 255)):
            kind, vals = "percentile", DEFAULT_IR_PERCENTILES
        else:
            kind = "full"
    if kind == "full":
        lo, hi = 0.0, 65535.0 if stored == np.uint16 else 255.0
    elif kind == "fixed":
        lo, hi = vals  # type: ignore[misc]
    elif kind == "minmax":
        lo, hi = float(plane.min()), float(plane.max())
    else:
        lo, hi = (float(v) for v in np.percentile(_subsample(plane), vals))
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------------- arrays


def _ir_plane(ir: np.ndarray) -> np.ndarray:
    ir = np.asarray(ir)
    if ir.ndim == 3 and ir.shape[2] == 1:
        ir = ir[:, :, 0]
    if ir.ndim == 3 and ir.shape[2] == 3:
        if cio.channels_equal(ir):
            return ir[:, :, 0]
        return cio.luma(ir)  # BT.601 luma, same units as the input
    if ir.ndim != 2:
        raise ValueError(f"IR image must be (H, W), (H, W, 1) or (H, W, 3), got shape {ir.shape}")
    return ir


def _check_dtype(img: np.ndarray, name: str) -> None:
    if not (img.dtype in (np.uint8, np.uint16) or img.dtype.kind == "f"):
        raise ValueError(f"{name} image must be uint8, uint16 or float, got {img.dtype}")
    if img.dtype.kind == "f":
        if not np.isfinite(img).all():
            raise ValueError(f"{name} image contains NaN or infinite values")
        if name == "visible" and img.size and float(img.max()) <= 1.0:
            warnings.warn("float visible image has max <= 1, but float images are taken on the 0-255 scale: "
                          "multiply by 255 (the result would be nearly black)", stacklevel=4)


def normalize_ir(ir: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """IR -> float32 (H, W) in [0, 1]: ``(ir - lo) / (hi - lo)``, clipped."""
    lo, hi = window
    plane = _ir_plane(ir).astype(np.float32)
    plane -= np.float32(lo)
    plane *= np.float32(1.0 / (hi - lo))
    return np.clip(plane, 0.0, 1.0, out=plane)


def vis_scale(vis: np.ndarray) -> float:
    """Full-scale value of a visible image: 255 (uint8, float), 65535 (uint16)."""
    return 65535.0 if vis.dtype == np.uint16 else 255.0


def _vis_unit(vis: np.ndarray, rows: slice) -> np.ndarray:
    return np.clip(vis[rows].astype(np.float32) / np.float32(vis_scale(vis)), 0.0, 1.0)


def visible_y(vis: np.ndarray) -> np.ndarray:
    """Visible luma Y (BT.601, :func:`crossfuse.io.rgb_to_ycrcb`) as float32 (H, W) in [0, 1]; gray as it is."""
    out = np.empty(vis.shape[:2], dtype=np.float32)
    for r0 in range(0, vis.shape[0], _STRIP):
        rows = slice(r0, r0 + _STRIP)
        v = _vis_unit(vis, rows)
        out[rows] = cio.rgb_to_ycrcb(v, scale=1.0)[..., 0] if v.ndim == 3 else v
    return out


def visible_dark(vis: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The visible dark channel (per-pixel minimum over colour channels) as float32 (H, W) in [0, 1]; for a gray
    frame its luma ``y`` (:func:`visible_y`) is its dark channel."""
    if vis.ndim == 2 or vis.shape[2] == 1:
        return y
    lowest = np.minimum(np.minimum(vis[..., 0], vis[..., 1]), vis[..., 2])  # in the input's dtype: scaling is monotone
    return _vis_unit(lowest, slice(None))


def compose_output(fused_y: np.ndarray, vis: np.ndarray, *, gray: bool = False, dtype: Any = np.uint8) -> np.ndarray:
    """Fused Y in [0, 1] (+ the visible image's Cr/Cb unless ``gray``) -> output of ``dtype``, strip by strip.

    uint8/uint16 are rounded and clipped; float32 is on the 0-255 scale, clipped.
    """
    dtype = np.dtype(dtype)
    colour = vis.ndim == 3 and not gray
    out = np.empty(vis.shape[:2] + ((3,) if colour else ()), dtype=dtype)
    for r0 in range(0, vis.shape[0], _STRIP):
        rows = slice(r0, r0 + _STRIP)
        y = fused_y[rows]
        if colour:
            ycc = cio.rgb_to_ycrcb(_vis_unit(vis, rows), scale=1.0)
            ycc[..., 0] = y
            val = np.clip(cio.ycrcb_to_rgb(ycc, scale=1.0), 0.0, 1.0)
        else:
            val = y
        if dtype == np.uint8:
            out[rows] = np.clip(np.round(val * 255.0), 0, 255)
        elif dtype == np.uint16:
            out[rows] = np.clip(np.round(val * 65535.0), 0, 65535)
        else:
            out[rows] = val * 255.0
    return out


def _out_dtype(vis: np.ndarray, dtype: Any) -> np.dtype:
    if dtype is None:
        return np.dtype(vis.dtype) if vis.dtype in (np.uint8, np.uint16) else np.dtype(np.float32)
    d = np.dtype(dtype)
    if d not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"output dtype must be uint8, uint16 or float32, got {d}")
    return d


def stretch_window(fused_y: np.ndarray) -> tuple[float, float]:
    """Min and max of a fused Y plane: the window ``stretch=True`` maps to [0, 1]."""
    return float(fused_y.min()), float(fused_y.max())


def apply_stretch(fused_y: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    if hi <= lo:
        return fused_y
    return np.clip((fused_y - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)
