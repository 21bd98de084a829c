"""Structural and edge-based fusion metrics: SSIM, MS-SSIM, VIF, Qabf, Nabf.

Pure functions on 2-D float64 arrays on the 0-255 scale, argument order ``fn(F, A, B)`` (``A`` = infrared,
``B`` = visible). Porting notes (MATLAB/SciPy semantics -> OpenCV) are in each docstring and in ``docs/metrics.md``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

from crossfuse.metrics.core import as_image, as_triplet, filter_same, filter_valid, gaussian_window

__all__ = ["ssim_pair", "ssim", "ssim_uniform_pair", "ms_ssim", "vif", "vif_pair", "qabf", "nabf", "qabf_maps"]

# --------------------------------------------------------------------------------------------------- SSIM


def _ssim_terms(x: np.ndarray, y: np.ndarray, k1d: np.ndarray, c1: float, c2: float) -> tuple[np.ndarray, np.ndarray]:
    """Luminance and contrast-structure maps of Wang et al. with a separable window, 'valid' region."""
    mx, my = filter_valid(x, k1d), filter_valid(y, k1d)
    mxx, myy, mxy = mx * mx, my * my, mx * my
    vx = filter_valid(x * x, k1d) - mxx
    vy = filter_valid(y * y, k1d) - myy
    cxy = filter_valid(x * y, k1d) - mxy
    lum = (2.0 * mxy + c1) / (mxx + myy + c1)
    cs = (2.0 * cxy + c2) / (vx + vy + c2)
    return lum, cs


def ssim_pair(x: np.ndarray, y: np.ndarray, *, win: int = 11, sigma: float = 1.5, k1: float = 0.01,
              k2: float = 0.03, data_range: float = 255.0) -> float:
    """SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, reference ``ssim.m``): Gaussian window ``win`` x ``win``,
    population statistics, 'valid' region, mean of the map. Symmetric in its arguments."""
    x, y = as_image(x), as_image(y)
    if min(x.shape) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win} pixels, got {x.shape}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    lum, cs = _ssim_terms(x, y, gaussian_window(win, sigma), c1, c2)
    return float(np.mean(lum * cs))


def ssim(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Canonical SSIM = SSIM(F, A) + SSIM(F, B) (11x11 Gaussian, sigma 1.5, L = 255, 'valid')."""
    f, a, b = as_triplet(f, a, b)
    return ssim_pair(f, a) + ssim_pair(f, b)


def ssim_uniform_pair(x: np.ndarray, y: np.ndarray, *, win: int = 7, data_range: float = 2.0,
                      k1: float = 0.01, k2: float = 0.03, dtype: type = np.float64) -> float:
    """scikit-image ``structural_similarity`` with its defaults: ``win`` x ``win`` uniform window, sample
    covariance (``N / (N - 1)``), mean of the map without a ``(win - 1) / 2`` border.

    ``data_range=2`` is what scikit-image 0.19 (pinned by CDDFuse) used for float input. ``dtype=np.float32``
    keeps the computation in float32, as current scikit-image does for float32 images (CDDFuse reads its images as
    float32). Uses ``scipy.ndimage.uniform_filter`` like scikit-image, so results agree to rounding.
    """
    x = np.asarray(x, dtype=dtype)
    y = np.asarray(y, dtype=dtype)
    if x.ndim != 2 or x.shape != y.shape or min(x.shape) < win:
        raise ValueError(f"SSIM needs two 2-D images of one shape, at least {win}x{win}; got {x.shape}, {y.shape}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    n = win * win
    cov_norm = n / (n - 1.0)
    ux = ndimage.uniform_filter(x, size=win)
    uy = ndimage.uniform_filter(y, size=win)
    uxx = ndimage.uniform_filter(x * x, size=win)
    uyy = ndimage.uniform_filter(y * y, size=win)
    uxy = ndimage.uniform_filter(x * y, size=win)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    p = (win - 1) // 2
    return float(np.mean(s[p:s.shape[0] - p, p:s.shape[1] - p], dtype=np.float64))


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_pair(x: np.ndarray, y: np.ndarray, *, data_range: float = 255.0) -> float:
    """MS-SSIM (Wang, Simoncelli & Bovik 2003): 5 scales, weights :data:`MS_SSIM_WEIGHTS`, 11x11 Gaussian
    (sigma 1.5), 'valid' maps, 2x2 mean pooling between scales.

    Conventions: scales whose image is smaller than the window are dropped and the remaining weights renormalised
    (small images); negative contrast-structure means are clipped to 0 so the product stays real.
    """
    x, y = as_image(x), as_image(y)
    k1d = gaussian_window(11, 1.5)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values, weights = [], []
    for level, w in enumerate(MS_SSIM_WEIGHTS):
        if min(x.shape) < 11:
            break
        lum, cs = _ssim_terms(x, y, k1d, c1, c2)
        last = level == len(MS_SSIM_WEIGHTS) - 1 or min(x.shape) // 2 < 11
        values.append(float(np.mean(lum * cs)) if last else float(np.mean(cs)))
        weights.append(w)
        if last:
            break
        h, wd = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
        x = cv2.resize(x[:h, :wd], (wd // 2, h // 2), interpolation=cv2.INTER_AREA)
        y = cv2.resize(y[:h, :wd], (wd // 2, h // 2), interpolation=cv2.INTER_AREA)
    if not values:
        raise ValueError(f"MS-SSIM needs images of at least 11x11 pixels, got {x.shape}")
    wts = np.asarray(weights) / np.sum(weights)
    return float(np.prod(np.maximum(values, 0.0) ** wts))


def ms_ssim(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM(F, A) + MS-SSIM(F, B) on the 0-255 scale."""
    f, a, b = as_triplet(f, a, b)
    return ms_ssim_pair(f, a) + ms_ssim_pair(f, b)


# --------------------------------------------------------------------------------------------------- VIF


def _vif_sums(ref: np.ndarray, dist: np.ndarray, k1d: np.ndarray, mu2: np.ndarray, s2: np.ndarray,
              sigma_nsq: float, eps: float) -> tuple[float, float]:
    """Numerator and denominator sums of one scale of ``vifp_mscale`` (given the distorted image's statistics).

    The masks reproduce the reference's sequence of in-place fixes: flat reference (``s1 < eps``) -> gain 0,
    noise = ``s2``; flat distorted image (``s2 < eps``) -> gain 0, noise 0; negative gain -> gain 0, noise =
    ``s2``; noise floored at ``eps``.
    """
    mu1 = filter_valid(ref, k1d)
    s1 = np.maximum(filter_valid(ref * ref, k1d) - mu1 * mu1, 0.0)
    s12 = filter_valid(ref * dist, k1d) - mu1 * mu2
    g = s12 / (s1 + eps)
    sv = s2 - g * s12
    flat1 = s1 < eps
    flat2 = s2 < eps
    # after the flat-reference fix the gain is 0 there; a negative gain can only remain where neither is flat
    neg = (g < 0) & ~flat1 & ~flat2
    np.copyto(sv, s2, where=flat1 | neg)
    np.copyto(sv, 0.0, where=flat2 & ~neg)
    np.copyto(g, 0.0, where=flat1 | flat2 | neg)
    np.copyto(s1, 0.0, where=flat1)
    np.maximum(sv, eps, out=sv)
    num = float(np.sum(np.log10(1.0 + g * g * s1 / (sv + sigma_nsq))))
    den = float(np.sum(np.log10(1.0 + s1 / sigma_nsq)))
    return num, den


def vif_pair(ref: np.ndarray, dist: np.ndarray, **kw: float) -> float:
    """Pixel-domain VIF of ``dist`` against ``ref`` (see :func:`vif`); argument order matters."""
    ref, dist = as_image(ref, "reference image"), as_image(dist, "distorted image")
    return _vif_multi(dist, [ref], **kw)[0]


def _vif_multi(dist: np.ndarray, refs: list[np.ndarray], *, sigma_nsq: float = 2.0,
               eps: float = 1e-10) -> list[float]:
    num = [0.0] * len(refs)
    den = [0.0] * len(refs)
    refs = list(refs)
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        k1d = gaussian_window(n, n / 5.0)
        if scale > 1:
            dist = filter_valid(dist, k1d)[::2, ::2]
            refs = [filter_valid(r, k1d)[::2, ::2] for r in refs]
        if min(dist.shape) < n:
            break  # image too small for this scale; the sums so far define the value
        mu2 = filter_valid(dist, k1d)
        s2 = np.maximum(filter_valid(dist * dist, k1d) - mu2 * mu2, 0.0)
        for i, r in enumerate(refs):
            nu, de = _vif_sums(r, dist, k1d, mu2, s2, sigma_nsq, eps)
            num[i] += nu
            den[i] += de
    # 0/0 (a source without any variance): 1.0, the convention of CDDFuse's evaluator.
    return [nu / de if de > 0 else 1.0 for nu, de in zip(num, den)]


def vif(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """VIF = VIF(A -> F) + VIF(B -> F): pixel-domain VIF of Sheikh & Bovik (``vifp_mscale.m``), sources as
    references.

    4 scales, Gaussian windows N = 17, 9, 5, 3 with sigma = N / 5; at scales 2-4 the images are first filtered
    ('valid') with that scale's window and decimated by 2; statistics with 'valid' filtering; sigma_n^2 = 2 on the
    0-255 scale; numerator and denominator summed over scales before dividing. Reproduces CDDFuse ``VIFF``
    (SciPy ``convolve2d(x, rot90(w, 2), 'valid')`` == ``filter2(w, x, 'valid')`` for these symmetric windows).
    """
    f, a, b = as_triplet(f, a, b)
    va, vb = _vif_multi(f, [a, b])
    return va + vb


# --------------------------------------------------------------------------------------------------- Qabf / Nabf

_SOBEL_H1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)  # y response
_SOBEL_H3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)  # x response
_TG, _KG, _DG = 0.9994, -15.0, 0.5
_TA, _KA, _DA = 0.9879, -22.0, 0.8


def _edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel strength and orientation as the Qabf references compute them: ``conv2(x, h, 'same')`` (true
    convolution, zero padding), ``atan(Sy / Sx)`` (not atan2) and ``pi / 2`` where ``Sx == 0``.

    ``conv2`` with ``h3`` equals minus OpenCV's ``Sobel(dx=1)`` correlation and ``conv2`` with ``h1`` equals
    ``Sobel(dy=1)``, both with a zero border (``BORDER_CONSTANT``); the values are exact integers for integer input.
    """
    sx = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_CONSTANT)
    np.negative(sx, out=sx)
    sy = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_CONSTANT)
    g = cv2.magnitude(sx, sy)
    zero = sx == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.arctan(sy / sx)
    np.copyto(a, math.pi / 2, where=zero)
    return g, a


def _preservation(gs: np.ndarray, as_: np.ndarray, gf: np.ndarray, af: np.ndarray) -> np.ndarray:
    """Edge preservation map Q^{SF} = Q_g * Q_a (Xydeas & Petrovic 2000).

    Relative strength: ``gF / gS`` where ``gS > gF``, ``gS / gF`` where ``gS < gF`` and -- the references' quirk,
    kept -- ``gF`` itself where ``gS == gF``. Orientation agreement ``1 - |aS - aF| / (pi / 2)``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.minimum(gs, gf) / np.maximum(gs, gf)
    np.copyto(rel, gf, where=gs == gf)
    ang = np.abs(as_ - af)
    ang *= -2.0 / math.pi
    ang += 1.0 - _DA
    qa = np.exp(_KA * ang)
    qa += 1.0
    rel -= _DG
    rel *= _KG
    qg = np.exp(rel)
    qg += 1.0
    qg *= qa
    return np.divide(_TG * _TA, qg, out=qg)


def qabf_maps(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Gradient strengths ``gA, gB, gF`` and preservation maps ``QAF, QBF`` shared by Qabf and Nabf."""
    f, a, b = as_triplet(f, a, b)
    g_a, a_a = _edges(a)
    g_b, a_b = _edges(b)
    g_f, a_f = _edges(f)
    return {"gA": g_a, "gB": g_b, "gF": g_f,
            "QAF": _preservation(g_a, a_a, g_f, a_f), "QBF": _preservation(g_b, a_b, g_f, a_f)}


def qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qabf (Xydeas & Petrovic 2000): sum(QAF gA + QBF gB) / sum(gA + gB); Sobel gradients, Tg = 0.9994,
    kg = -15, Dg = 0.5, Ta = 0.9879, ka = -22, Da = 0.8, L = 1. Reproduces VIFB ``metricsQabf.m`` and CDDFuse
    ``Evaluator.Qabf`` on gray images. Sources without any gradient (0/0): 0.0 (nothing preserved)."""
    m = qabf_maps(f, a, b)
    den = float(np.sum(m["gA"] + m["gB"]))
    if den == 0.0:
        return 0.0
    return float(np.sum(m["QAF"] * m["gA"] + m["QBF"] * m["gB"]) / den)


def nabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Nabf, the fusion-artefact measure in Kumar's modified form (B. K. Shreyamsha Kumar, SIViP 2013):
    sum(AM * ((1 - QAF) gA + (1 - QBF) gB)) / sum(gA + gB), AM = 1 where gF > gA and gF > gB (the fused
    gradient exceeds both sources), with Qabf's preservation maps. Lower is better; 0.0 without source
    gradients."""
    m = qabf_maps(f, a, b)
    den = float(np.sum(m["gA"] + m["gB"]))
    if den == 0.0:
        return 0.0
    am = (m["gF"] > m["gA"]) & (m["gF"] > m["gB"])
    art = (1.0 - m["QAF"]) * m["gA"] + (1.0 - m["QBF"]) * m["gB"]
    return float(np.sum(art[am]) / den)
