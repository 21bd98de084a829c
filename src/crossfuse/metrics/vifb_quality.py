"""VIFB toolkit metrics, part 2: the structural/perceptual indices (Qabf, Qcb, Qcv, SSIM).

Reproduces ``metricsQabf.m``, ``metricsQcb.m``, ``metricsQcv.m`` and ``metricsSsim.m`` of the VIFB MATLAB toolkit
(xingchenzhang/VIFB; Qcb and Qcv are Z. Liu's ``metricChenBlum.m`` / ``metricChen.m`` from
zhengliu6699/imageFusionMetrics). Same conventions as :mod:`crossfuse.metrics.vifb_stats`: float64 arrays of 8-bit
values, ``fn(F, A, B)`` with A = IR, B = VIS, colour dispatch by :func:`~crossfuse.metrics.vifb_stats.per_channel`.
Porting notes: ``docs/metrics_vifb.md``.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from scipy import fft as sfft

from crossfuse.metrics.core import filter_valid, gaussian_window
from crossfuse.metrics.vifb_stats import SourceSplit, per_channel, rgb2gray

# ----------------------------------------------------------------------------------------------- helpers


def _normalize1(x: np.ndarray) -> np.ndarray:
    """Z. Liu's ``normalize1``: min-max rescale to 0..255, rounded half away from zero; an all-zero image is
    returned as it is. A constant non-zero image (0/0 = NaN in MATLAB) is mapped to zeros here."""
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.zeros_like(x) if lo != 0 else x
    return np.floor((x - lo) / (hi - lo) * 255 + 0.5)  # MATLAB round of values >= 0


def _radius(h: int, w: int, su: float, sv: float) -> np.ndarray:
    """``r = sqrt(u^2 + v^2)`` on MATLAB's ``freqspace([h, w], 'meshgrid')`` grid scaled by ``u*su, v*sv``,
    returned *unshifted* (``ifftshift`` applied) so it multiplies ``fft2`` output directly."""
    u = (np.arange(w) - w // 2) * (2.0 / w) * su
    v = (np.arange(h) - h // 2) * (2.0 / h) * sv
    return np.fft.ifftshift(np.sqrt(u[None, :] ** 2 + v[:, None] ** 2))


@lru_cache(maxsize=8)
def _qcb_csf(h: int, w: int) -> np.ndarray:
    """Chen-Blum's DoG contrast sensitivity function (f0 15.3870, f1 1.3456, a 0.7622) on the ``freqspace`` grid
    scaled by W/30, H/30."""
    r = _radius(h, w, w / 30.0, h / 30.0)
    csf = np.exp(-((r / 15.3870) ** 2)) - 0.7622 * np.exp(-((r / 1.3456) ** 2))
    csf.setflags(write=False)
    return csf


@lru_cache(maxsize=8)
def _qcv_csf(h: int, w: int) -> np.ndarray:
    """Mannos-Sakrison CSF ``2.6 (0.0192 + 0.144 r) exp(-(0.144 r)^1.1)`` on the ``freqspace`` grid scaled by
    W/8, H/8 (the .m also builds Daly's and Ahumada's filters but uses this one)."""
    r = _radius(h, w, w / 8.0, h / 8.0)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    csf.setflags(write=False)
    return csf


def _freq_filter(x: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    """``ifft2(ifftshift(fftshift(fft2(x)) .* S))`` with ``transfer = ifftshift(S)``. ``S`` is exactly
    point-symmetric, so the result is real (MATLAB returns a real array there too) and the half spectrum of a
    real FFT suffices."""
    half = transfer[:, : x.shape[1] // 2 + 1]
    return sfft.irfft2(sfft.rfft2(x) * half, s=x.shape)


def _correlate(x: np.ndarray, kernel: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """MATLAB ``filter2(kernel, x, 'same')`` (correlation; zero padding with the default border)."""
    return cv2.filter2D(np.ascontiguousarray(x), cv2.CV_64F, kernel, borderType=border)


def _correlate_sep(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``filter2(g * g', x, 'same')`` with zero padding, for a separable kernel."""
    return cv2.sepFilter2D(np.ascontiguousarray(x), cv2.CV_64F, g, g, borderType=cv2.BORDER_CONSTANT)


def _safe_div(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


# ----------------------------------------------------------------------------------------------- Qabf


_QABF_H1 = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_QABF_H3 = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _qabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel strength and orientation as in the .m: ``conv2(., h, 'same')`` (true convolution, zero padding),
    ``atan(Sy / Sx)`` (not atan2) and ``pi/2`` where ``Sx == 0``."""
    sx = _correlate(x, _QABF_H3[::-1, ::-1])  # conv2 = correlation with the flipped kernel
    sy = _correlate(x, _QABF_H1[::-1, ::-1])
    g = np.sqrt(sx * sx + sy * sy)
    zero = sx == 0
    ang = np.arctan(np.divide(sy, np.where(zero, 1.0, sx)))
    ang[zero] = np.pi / 2
    return g, ang


def _qabf_edge_preservation(g_s: np.ndarray, a_s: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    tg, kg, dg, ta, ka, da = 0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8
    # relative strength: min/max ratio, but where the two strengths are *equal* the .m sets it to g_F itself
    # (not 1) -- 0 where both are 0; kept.
    rel = _safe_div(np.minimum(g_s, g_f), np.maximum(g_s, g_f), 0.0)
    equal = g_s == g_f
    rel[equal] = g_f[equal]
    orient = 1.0 - np.abs(a_s - a_f) / (np.pi / 2)
    return tg / (1.0 + np.exp(kg * (rel - dg))) * (ta / (1.0 + np.exp(ka * (orient - da))))


def _qabf_source(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # the .m casts to double, converts colour with rgb2gray on the double (no rounding) and scales by 255
    # (255 * im2double of a double array) -- the factor only matters through the equal-strength quirk.
    return _qabf_edges(255.0 * rgb2gray(s, uint8=False))


def _qabf_combine(f: np.ndarray, e1: tuple[np.ndarray, np.ndarray], e2: tuple[np.ndarray, np.ndarray]) -> float:
    (g1, a1), (g2, a2) = e1, e2
    gf, af = _qabf_edges(255.0 * f)
    den = float((g1 + g2).sum())
    if den == 0:  # both sources constant: 0/0 in MATLAB; no source edge to preserve
        return 0.0
    num = (_qabf_edge_preservation(g1, a1, gf, af) * g1 + _qabf_edge_preservation(g2, a2, gf, af) * g2).sum()
    return float(num / den)


QABF_SPLIT = SourceSplit(_qabf_source, _qabf_combine)


def qabf(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsQabf.m``: Xydeas-Petrovic Q^{AB/F} (Tg 0.9994, kg -15, Dg 0.5, Ta 0.9879, ka -22, Da 0.8), source
    gradient magnitudes as weights; per channel, averaged. Higher is better, 1 at most."""
    return per_channel(QABF_SPLIT, fused, a, b)


# ----------------------------------------------------------------------------------------------- SSIM


_SSIM_WINDOW = gaussian_window(11, 1.5)  # fspecial('gaussian', 11, 1.5) as its 1-D separable factor


def _ssim_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = filter_valid(x, _SSIM_WINDOW)
    return mu, filter_valid(x * x, _SSIM_WINDOW) - mu * mu


def _ssim_source(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = rgb2gray(s, uint8=True)
    return (s, *_ssim_stats(s))


def _ssim_1(s_state: tuple[np.ndarray, np.ndarray, np.ndarray], f: np.ndarray,
            f_stats: tuple[np.ndarray, np.ndarray]) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    (s, mu_s, var_s), (mu_f, var_f) = s_state, f_stats
    cov = filter_valid(s * f, _SSIM_WINDOW) - mu_s * mu_f
    num = (2 * mu_s * mu_f + c1) * (2 * cov + c2)
    den = (mu_s * mu_s + mu_f * mu_f + c1) * (var_s + var_f + c2)
    return float((num / den).mean())


def _ssim_combine(f: np.ndarray, st1: tuple, st2: tuple) -> float:
    f_stats = _ssim_stats(f)  # shared by the two sources
    return _ssim_1(st1, f, f_stats) + _ssim_1(st2, f, f_stats)


SSIM_SPLIT = SourceSplit(_ssim_source, _ssim_combine)


def ssim(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsSsim.m``: ``SSIM(VI, F) + SSIM(IR, F)`` (so at most 2), Wang et al. with an 11x11 Gaussian window
    (sigma 1.5), K = (0.01, 0.03), L = 255, 'valid' region, mean of the map; per channel, averaged.
    Gray fused + colour source: ``rgb2gray`` of the ``uint8`` source (rounded). Images need >= 11x11 pixels."""
    if min(fused.shape[:2]) < 11:
        raise ValueError(f"VIFB SSIM needs images of at least 11x11 pixels, got {fused.shape[:2]}")
    return per_channel(SSIM_SPLIT, fused, a, b)


# ----------------------------------------------------------------------------------------------- Qcb


@lru_cache(maxsize=2)
def _gauss31(sigma: float) -> np.ndarray:
    """1-D factor of Z. Liu's ``gaussian2d``: 31x31 on -15..15, ``exp(-(x^2+y^2)/(2 s^2)) / (2 pi s^2)``,
    *not* normalised to sum 1 (the factor cancels in the contrast ratio; kept anyway)."""
    x = np.arange(-15, 16, dtype=np.float64)
    return np.exp(-(x * x) / (2 * sigma * sigma)) / np.sqrt(2 * np.pi * sigma * sigma)


def _qcb_contrast(x: np.ndarray) -> np.ndarray:
    """Local contrast ``abs(filter2(G_s2, x, 'same') ./ filter2(G_s4, x, 'same') - 1)`` then the masking
    response ``C^3 / (C^2 + 1e-4)`` (k = h = 1, p = 3, q = 2, Z = 1e-4). Where the wide filter gives exactly 0
    (e.g. an all-zero image) the contrast is taken as 0 (MATLAB: 0/0 = NaN)."""
    num, den = _correlate_sep(x, _gauss31(2.0)), _correlate_sep(x, _gauss31(4.0))
    c = np.abs(_safe_div(num, den, 1.0) - 1.0)
    c2 = c * c
    return c2 * c / (c2 + 1e-4)


def _qcb_map(x: np.ndarray) -> np.ndarray:
    """Normalise, CSF-filter, local contrast: the per-image part of Chen-Blum."""
    return _qcb_contrast(_freq_filter(_normalize1(x), _qcb_csf(*x.shape)))


def _qcb_combine(f: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> float:
    cf = _qcb_map(f)
    # contrast preservation: the smaller over the larger response (1 where both are 0)
    q1f = np.where(c1 < cf, _safe_div(c1, cf, 1.0), _safe_div(cf, c1, 1.0))
    q2f = np.where(c2 < cf, _safe_div(c2, cf, 1.0), _safe_div(cf, c2, 1.0))
    # saliency weights (equal where both source responses are 0)
    w_den = c1 * c1 + c2 * c2
    lam1 = _safe_div(c1 * c1, w_den, 0.5)
    lam2 = _safe_div(c2 * c2, w_den, 0.5)
    return float((lam1 * q1f + lam2 * q2f).mean())


# a colour source with a gray fused image: rounded rgb2gray (MATLAB would error here; documented)
QCB_SPLIT = SourceSplit(lambda s: _qcb_map(rgb2gray(s, uint8=True)), _qcb_combine)


def qcb(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsQcb.m`` (Chen-Blum): images min-max normalised to 0..255 and rounded, filtered by a DoG contrast
    sensitivity function in the frequency domain (``freqspace`` grid scaled by W/30, H/30; f0 15.3870,
    f1 1.3456, a 0.7622), local contrast from 31x31 Gaussians (sigma 2 and 4, 'same' with zero padding),
    contrast preservation weighted by source saliency; per channel, averaged. Higher is better."""
    return per_channel(QCB_SPLIT, fused, a, b)


# ----------------------------------------------------------------------------------------------- Qcv

_QCV_SX = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_QCV_WIN = 16


def _pow5(x: np.ndarray) -> np.ndarray:
    """``x.^alpha`` with the toolkit's alpha = 5, by multiplication (a float power is several times slower)."""
    x2 = x * x
    return x2 * x2 * x


def _block_sum(x: np.ndarray, n: int) -> np.ndarray:
    """``blkproc(x, [n n], [0 0], @(b) sum(b(:)))``: blkproc zero-pads the array to a multiple of the block size."""
    h, w = x.shape
    hp, wp = -(-h // n) * n, -(-w // n) * n
    padded = np.zeros((hp, wp), dtype=np.float64)
    padded[:h, :w] = x
    return padded.reshape(hp // n, n, wp // n, n).sum(axis=(1, 3))


def _qcv_strength(x: np.ndarray) -> np.ndarray:
    """Sobel magnitude with ``filter2`` (correlation), 'same', zero padding."""
    gx, gy = _correlate(x, _QCV_SX), _correlate(x, _QCV_SX.T)
    return np.sqrt(gx * gx + gy * gy)


def _qcv_source(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # a colour source with a gray fused image: rounded rgb2gray (MATLAB would error here; documented)
    s = _normalize1(rgb2gray(s, uint8=True))
    return s, _block_sum(_pow5(_qcv_strength(s)), _QCV_WIN)  # regional saliency


def _qcv_combine(f: np.ndarray, st1: tuple[np.ndarray, np.ndarray], st2: tuple[np.ndarray, np.ndarray]) -> float:
    (s1, lam1), (s2, lam2) = st1, st2
    f = _normalize1(f)
    mannos = _qcv_csf(*f.shape)
    # blkproc of mean2(x.^2): the zero padding of partial blocks counts in the mean (sum / 256)
    d1 = _block_sum(_freq_filter(s1 - f, mannos) ** 2, _QCV_WIN) / _QCV_WIN**2
    d2 = _block_sum(_freq_filter(s2 - f, mannos) ** 2, _QCV_WIN) / _QCV_WIN**2
    den = float((lam1 + lam2).sum())
    if den == 0:  # both sources flat: 0/0 in MATLAB; weigh the two sources equally instead
        return float((d1 + d2).mean() / 2)
    return float((lam1 * d1 + lam2 * d2).sum() / den)


QCV_SPLIT = SourceSplit(_qcv_source, _qcv_combine)


def qcv(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsQcv.m`` (Chen-Varshney): images min-max normalised to 0..255 and rounded; regional saliency =
    16x16 block sums of (Sobel strength)^5; regional distortion = 16x16 block means of the squared
    Mannos-Sakrison-CSF-filtered difference (``freqspace`` grid scaled by W/8, H/8); the saliency-weighted mean
    distortion; per channel, averaged. Lower is better, 0 for a fused image equal to both sources."""
    return per_channel(QCV_SPLIT, fused, a, b)
