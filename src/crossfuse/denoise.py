"""Gated denoising of a plainly noisy source plane before fusion.

The noise level of a plane is read from its finest diagonal Haar band: each 2x2 block gives ``(a - b - c + d) / 2``,
which cancels smooth content, edges along either axis and column / row offsets (stripes), so what is left is mostly
white noise; ``sigma = median(|HH|) / 0.6745`` (Donoho & Johnstone's robust MAD estimate, with the Haar wavelet).
On the validation planes of docs/protocol.md a clean 8-bit plane reads 0–1.48 grey levels (the median of an 8-bit
band moves in steps of 0.74) and a Gaussian-noise one 8.2–17.1; :data:`GATE` is the geometric mean of 1.48 and 8.15
(H58). Over the gate the plane is denoised by OpenCV's non-local means with ``h = sigma`` (H58: ``h = 0.6 sigma``
left blotchy noise the network passed on) over an 11-px search window (H62: 21 px took 3x the time and ranked lower);
under the gate the plane is returned as it is, bit for bit, so clean frames are untouched.

Noise a camera's own processing has spread over neighbouring pixels hardly reaches the finest band, so the estimate
above reads it as 1-3 grey levels whatever its level. Such frames are found by the network instead (its visible
restoration share, :class:`crossfuse.infer.Fuser`'s spread-noise gate, H74); their level is read one Haar scale
coarser by :func:`spread_noise_level`, which the spread noise does reach.
"""

from __future__ import annotations

import cv2
import numpy as np

from crossfuse.io import quantize

GATE = 3.5  # grey levels (0-255 scale) of estimated noise above which a plane counts as noisy
STRENGTH = 1.0  # non-local means filter strength h, in units of the estimated noise level
PATCH, SEARCH = 7, 11  # non-local means patch and search window (px); 11 is ~3x faster than 21 and ranked better (H62)


def _cropped(plane_u8: np.ndarray, multiple: int) -> np.ndarray | None:
    """An (H, W) plane as float64, cropped to multiples of ``multiple`` (``None`` when nothing is left)."""
    x = np.asarray(plane_u8)
    if x.ndim != 2:
        raise ValueError(f"expected an (H, W) plane, got shape {x.shape}")
    h, w = x.shape[0] // multiple * multiple, x.shape[1] // multiple * multiple
    return None if h == 0 or w == 0 else x[:h, :w].astype(np.float64)


def _diagonal_band(x: np.ndarray) -> np.ndarray:
    """The diagonal Haar band of an even-sized plane: ``(a - b - c + d) / 2`` per 2x2 block."""
    return (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0


def noise_sigma(plane_u8: np.ndarray) -> float:
    """The white-noise level (grey levels) of an 8-bit (H, W) plane: the MAD of its finest diagonal Haar band."""
    x = _cropped(plane_u8, 2)
    return 0.0 if x is None else float(np.median(np.abs(_diagonal_band(x))) / 0.6745)


def spread_noise_level(plane_u8: np.ndarray, cell: int = 8, percentile: float = 10.0) -> float:
    """A noise level (grey levels) of an 8-bit (H, W) plane that noise spread over neighbouring pixels reaches: the
    ``percentile``-th percentile, over ``cell`` x ``cell`` cells, of the local std of the diagonal Haar band of the
    plane's 2x2 means, times 2 (white noise of std s gives that band std s / 2). The low percentile reads the
    flattest cells, where little texture leaks into this coarser band. Meant for a plane already judged noisy: on
    clean textured planes it reads up to ~12 (RoadScene-train)."""
    x = _cropped(plane_u8, 4)
    if x is None:
        return 0.0
    hh = _diagonal_band((x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]) / 4.0)
    bh, bw = max(hh.shape[0] // cell, 1), max(hh.shape[1] // cell, 1)
    ch, cw = min(cell, hh.shape[0]), min(cell, hh.shape[1])
    cells = hh[:bh * ch, :bw * cw].reshape(bh, ch, bw, cw).std(axis=(1, 3))
    return 2.0 * float(np.percentile(cells, percentile))


def _nlm(plane_u8: np.ndarray, level: float) -> np.ndarray:
    """Non-local means on an 8-bit plane with ``h = STRENGTH * level`` (at least 1 grey level), float32 in [0, 1]."""
    h = float(STRENGTH * max(level, 1.0))
    out = cv2.fastNlMeansDenoising(plane_u8, None, h=h, templateWindowSize=PATCH, searchWindowSize=SEARCH)
    return out.astype(np.float32) / np.float32(255.0)


def denoise_spread(plane: np.ndarray) -> tuple[np.ndarray, float]:
    """``(plane', level)``: an (H, W) plane in [0, 1] judged to carry spread noise, denoised as :func:`denoise` does
    with ``level`` = the larger of :func:`noise_sigma` and :func:`spread_noise_level` of its 8-bit version."""
    u8 = quantize(np.asarray(plane) * 255.0)
    level = max(noise_sigma(u8), spread_noise_level(u8))
    return _nlm(u8, level), level


def denoise(plane: np.ndarray, gate: float = GATE, level: float | None = None) -> tuple[np.ndarray, float]:
    """``(plane', sigma)``: an (H, W) plane in [0, 1] through non-local means (float32, ``h = STRENGTH * sigma``, on
    its 8-bit version) when its :func:`noise_sigma` is over ``gate``, else the plane itself (same object). A negative
    ``gate`` denoises whatever the estimate (a video clip decided by its first frame). ``level`` (grey levels, > 0):
    the noise level is known - denoise with ``h = STRENGTH * level`` whatever the gate and the estimate (which misses
    noise spread over neighbouring pixels, e.g. by a camera's own processing); ``sigma`` is still the estimate."""
    if level is not None and not level > 0:
        raise ValueError(f"noise level must be > 0 grey levels, got {level}")
    u8 = quantize(np.asarray(plane) * 255.0)
    sigma = noise_sigma(u8)
    if level is None and sigma <= gate:
        return plane, sigma
    return _nlm(u8, sigma if level is None else level), sigma
