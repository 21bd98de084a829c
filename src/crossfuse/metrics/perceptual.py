"""Human-perception fusion metrics Qcb (Chen & Blum) and Qcv (Chen & Varshney), gray images.

Both follow Z. Liu's MATLAB implementations (``metricChenBlum.m``, ``metricChen.m``) as included in the VIFB toolkit
(``metricsQcb.m``, ``metricsQcv.m``): images min-max normalised to 0..255 and rounded, frequency-domain CSF
filtering on MATLAB ``freqspace`` grids, ``filter2`` (correlation, zero padding) for the spatial filters and
``blkproc`` blocks zero-padded at the bottom/right. The complex intermediate results of the frequency filtering are
kept complex, as MATLAB does. Degenerate cases (0/0) get defined values, listed per function.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from crossfuse.metrics.core import as_triplet

__all__ = ["qcb", "qcv", "normalize_minmax"]


def normalize_minmax(x: np.ndarray) -> np.ndarray:
    """Liu's ``normalize1``: min-max to 0..255, rounded; an all-zero image stays zero, a constant one becomes 0."""
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.zeros_like(x, dtype=np.float64)
    return np.round((x - lo) / (hi - lo) * 255.0)


def _freq_radius(h: int, w: int, scale_u: float, scale_v: float) -> np.ndarray:
    """``r = sqrt(u^2 + v^2)`` on MATLAB's ``freqspace([h w], 'meshgrid')`` grid scaled by ``scale_u`` (columns)
    and ``scale_v`` (rows), returned ``ifftshift``-ed so that it multiplies ``fft2`` output directly."""
    fu = (np.arange(w) - w // 2) * (2.0 / w) * scale_u
    fv = (np.arange(h) - h // 2) * (2.0 / h) * scale_v
    r = np.sqrt(fu[None, :] ** 2 + fv[:, None] ** 2)
    return np.fft.ifftshift(r)


def _freq_filter(x: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    return np.fft.ifft2(np.fft.fft2(x) * transfer)


def _gauss_same(x: np.ndarray, sigma: float) -> np.ndarray:
    """``filter2(G, x, 'same')`` with Liu's unnormalised 31x31 Gaussian ``exp(-r^2 / 2s^2) / (2 pi s^2)``, on the
    real and imaginary parts (separable, zero padding)."""
    t = np.arange(-15, 16, dtype=np.float64)
    g = np.exp(-(t * t) / (2.0 * sigma * sigma))
    gy = g / (2.0 * math.pi * sigma * sigma)
    out = np.empty_like(x)
    out.real = cv2.sepFilter2D(np.ascontiguousarray(x.real), cv2.CV_64F, g, gy, borderType=cv2.BORDER_CONSTANT)
    out.imag = cv2.sepFilter2D(np.ascontiguousarray(x.imag), cv2.CV_64F, g, gy, borderType=cv2.BORDER_CONSTANT)
    return out


def _safe_ratio(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.result_type(num, den, np.float64))
    np.divide(num, den, out=out, where=den != 0)
    return out


def _qcb_contrast(x: np.ndarray) -> np.ndarray:
    """Masked contrast ``C^p / (h C^q + Z)`` with ``C = |G_2 * x / G_4 * x - 1|``, p = 3, q = 2, Z = 1e-4
    (``C = 0`` where the wide Gaussian response is 0)."""
    c = np.abs(_safe_ratio(_gauss_same(x, 2.0), _gauss_same(x, 4.0), 1.0) - 1.0)
    return c ** 3 / (c ** 2 + 1e-4)


def _qcb_1(f: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
    h, w = f.shape
    r = _freq_radius(h, w, w / 30.0, h / 30.0)
    sd = np.exp(-(r / 15.3870) ** 2) - 0.7622 * np.exp(-(r / 1.3456) ** 2)
    cp1, cp2, cpf = (_qcb_contrast(_freq_filter(normalize_minmax(x), sd)) for x in (s1, s2, f))
    # preservation: the smaller over the larger contrast; 1 where both are 0
    q1 = _safe_ratio(np.minimum(cp1, cpf), np.maximum(cp1, cpf), 1.0)
    q2 = _safe_ratio(np.minimum(cp2, cpf), np.maximum(cp2, cpf), 1.0)
    w1, w2 = cp1 * cp1, cp2 * cp2
    lam1 = _safe_ratio(w1, w1 + w2, 0.5)
    return float(np.mean(lam1 * q1 + (1.0 - lam1) * q2))


def qcb(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qcb (Y. Chen & R. S. Blum, Image Vis. Comput. 27 (2009) 1421-1432): mean over pixels of the
    saliency-weighted contrast preservation of each source in F after DoG contrast-sensitivity filtering
    (f0 = 15.3870, f1 = 1.3456, a = 0.7622 on a grid scaled by size/30; Gaussians sigma = 2 and 4).
    Higher is better. 0/0 conventions: preservation 1 where source and fused contrasts are both 0, saliency
    weights 1/2 each where both sources have zero contrast."""
    f, a, b = as_triplet(f, a, b)
    return _qcb_1(f, a, b)


def _block_reduce(x: np.ndarray, n: int) -> np.ndarray:
    """Sums over ``n x n`` blocks, the image zero-padded at the bottom/right to whole blocks (``blkproc``)."""
    h, w = x.shape
    hp, wp = -(-h // n) * n, -(-w // n) * n
    pad = np.zeros((hp, wp), dtype=x.dtype)
    pad[:h, :w] = x
    return pad.reshape(hp // n, n, wp // n, n).sum(axis=(1, 3))


def _sobel_strength(x: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_CONSTANT)
    gy = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_CONSTANT)
    return cv2.magnitude(gx, gy)


def _qcv_1(f: np.ndarray, s1: np.ndarray, s2: np.ndarray, *, window: int = 16, alpha: float = 5.0) -> float:
    f, s1, s2 = normalize_minmax(f), normalize_minmax(s1), normalize_minmax(s2)
    lam1 = _block_reduce(_sobel_strength(s1) ** alpha, window)
    lam2 = _block_reduce(_sobel_strength(s2) ** alpha, window)
    h, w = f.shape
    r = _freq_radius(h, w, w / 8.0, h / 8.0)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))  # Mannos-Sakrison
    d1 = _block_reduce(_freq_filter(s1 - f, csf) ** 2, window) / (window * window)
    d2 = _block_reduce(_freq_filter(s2 - f, csf) ** 2, window) / (window * window)
    total = float(np.sum(lam1 + lam2))
    if total == 0.0:  # no source edges at all: plain mean of the regional distortions
        return float(np.real(np.mean(d1 + d2) / 2.0))
    return float(np.real(np.sum(lam1 * d1 + lam2 * d2)) / total)


def qcv(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qcv (H. Chen & P. K. Varshney, Inf. Fusion 8 (2007) 193-207): regional (16x16) saliency-weighted
    (sum of Sobel strength^5) mean squared difference between each source and F after Mannos-Sakrison CSF
    filtering (grid scaled by size/8). Lower is better. Sources without edges: unweighted mean."""
    f, a, b = as_triplet(f, a, b)
    return _qcv_1(f, a, b)
