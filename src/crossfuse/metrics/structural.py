"""Structural and edge-based fusion metrics: SSIM, MS-SSIM, VIF, Qabf, Nabf.

Pure functions on 2-D float64 arrays on the 0-255 scale, argument order ``fn(F, A, B)`` (``A`` = infrared,
``B`` = visible). Porting notes (MATLAB/SciPy semantics -> OpenCV) are in each docstring and in ``docs/metrics.md``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

from crossfuse.metrics.core import as_image, as_triplet, filter_valid, gaussian_window

__all__ = ["ssim_pair", "ssim", "ssim_uniform", "ssim_uniform_pair", "ms_ssim", "vif", "vif_pair", "qabf", "nabf"]

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


def ssim_uniform(f: np.ndarray, sources: list[np.ndarray], *, win: int = 7, data_range: float = 2.0,
                 k1: float = 0.01, k2: float = 0.03, dtype: type = np.float64) -> list[float]:
    """scikit-image ``structural_similarity(F, S)`` with its defaults for each source ``S``: ``win`` x ``win``
    uniform window, sample covariance (``N / (N - 1)``), mean of the map without a ``(win - 1) / 2`` border.

    ``data_range=2`` is what scikit-image 0.19 (pinned by CDDFuse) used for float input. ``dtype=np.float32``
    keeps the computation in float32, as scikit-image does for float32 images (CDDFuse reads its images as
    float32). Uses ``scipy.ndimage.uniform_filter`` and the same operation order as scikit-image, so the values
    agree to the last bit; F's local statistics are computed once for all sources.
    """
    x = np.asarray(f, dtype=dtype)
    ys = [np.asarray(s, dtype=dtype) for s in sources]
    if x.ndim != 2 or any(y.shape != x.shape for y in ys) or min(x.shape) < win:
        raise ValueError(f"SSIM needs 2-D images of one shape, at least {win}x{win}; got {x.shape}, "
                         f"{[y.shape for y in ys]}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    n = win * win
    cov_norm = n / (n - 1.0)
    p = (win - 1) // 2
    h, w = x.shape
    sums = [0.0] * len(ys)
    # Strips of output rows [r0, r1) inside the kept region [p, h - p); each strip is filtered with its p-row halo,
    # so no window reaches the strip's own (reflected) border. Values equal whole-image filtering to the rounding
    # of uniform_filter's running sums, i.e. bit-identical in float32 in practice.
    for r0 in range(p, h - p, _STRIP_ROWS):
        r1 = min(h - p, r0 + _STRIP_ROWS)
        xs = x[r0 - p:r1 + p]
        keep = (slice(p, p + r1 - r0), slice(p, w - p))
        ux = ndimage.uniform_filter(xs, size=win)
        vx = ndimage.uniform_filter(xs * xs, size=win)
        vx -= ux * ux
        vx *= cov_norm
        for i, y in enumerate(ys):
            yst = y[r0 - p:r1 + p]
            uy = ndimage.uniform_filter(yst, size=win)
            vy = ndimage.uniform_filter(yst * yst, size=win)
            vy -= uy * uy
            vy *= cov_norm
            vxy = ndimage.uniform_filter(xs * yst, size=win)
            vxy -= ux * uy
            vxy *= cov_norm
            # scikit-image: ((2 ux uy + C1)(2 vxy + C2)) / ((ux^2 + uy^2 + C1)(vx + vy + C2)), same rounding order
            a1 = 2 * ux * uy + c1
            vxy *= 2
            vxy += c2
            a1 *= vxy
            b1 = ux ** 2 + uy ** 2 + c1
            vy += vx
            vy += c2
            b1 *= vy
            a1 /= b1
            sums[i] += float(np.sum(a1[keep], dtype=np.float64))
    count = (h - 2 * p) * (w - 2 * p)
    return [v / count for v in sums]


def ssim_uniform_pair(x: np.ndarray, y: np.ndarray, **kw) -> float:
    """:func:`ssim_uniform` for one pair (symmetric in its arguments)."""
    return ssim_uniform(x, [y], **kw)[0]


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

_LN10 = math.log(10.0)
_VIF_STRIP_ROWS = 128


def _sep(x: np.ndarray, k1d: np.ndarray, out: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(x, cv2.CV_64F, k1d, k1d, dst=out, borderType=cv2.BORDER_REFLECT)


def _vif_scale(dist: np.ndarray, refs: list[np.ndarray], k1d: np.ndarray, sigma_nsq: float,
               eps: float) -> list[tuple[float, float]]:
    """Numerator and denominator sums of one scale of ``vifp_mscale`` for each reference.

    The statistics are filtered at full size and only the 'valid' part (``r`` = window radius away from the
    border) is summed, which is ``filter2(w, x, 'valid')``; this is done in strips of rows (with a halo) so that
    the temporaries stay small. The reference fixes its maps in place: flat reference
    (``s1 < eps``) -> gain 0 and ``s1`` = 0; flat distorted image (``s2 < eps``) -> gain 0; negative gain -> gain 0;
    noise variance floored at ``eps``. Wherever the gain ends up 0 the numerator term is ``log10(1 + 0) = 0``
    whatever the noise variance, so the same sums come from one ``keep`` mask (no masked assignments; buffers are
    reused, which matters for speed on large images).
    """
    h, w = dist.shape
    r = len(k1d) // 2
    sums = [[0.0, 0.0] for _ in refs]
    buffers = np.empty((6, min(h, _VIF_STRIP_ROWS + 2 * r), w))  # reused by every strip
    # strips of 'valid' output rows [r0, r1) filtered with an r-row halo (exactly the whole-image values)
    for r0 in range(r, h - r, _VIF_STRIP_ROWS):
        r1 = min(h - r, r0 + _VIF_STRIP_ROWS)
        rows = slice(r0 - r, r1 + r)
        crop = (slice(r, r + r1 - r0), slice(r, w - r))
        d = dist[rows]
        tmp, b1, b2, b3, mu2, s2 = buffers[:, :d.shape[0]]
        mu2 = _sep(d, k1d, mu2)
        s2 = _sep(np.multiply(d, d, out=tmp), k1d, s2)
        s2 -= np.multiply(mu2, mu2, out=tmp)
        np.maximum(s2, 0.0, out=s2)
        ok2 = s2 >= eps
        for i, ref_full in enumerate(refs):
            ref = ref_full[rows]
            mu1 = _sep(ref, k1d, b1)
            s1 = _sep(np.multiply(ref, ref, out=tmp), k1d, b2)
            s1 -= np.multiply(mu1, mu1, out=tmp)
            np.maximum(s1, 0.0, out=s1)
            s12 = _sep(np.multiply(ref, d, out=tmp), k1d, b3)
            s12 -= np.multiply(mu1, mu2, out=tmp)
            g = np.add(s1, eps, out=b1)  # mu1 is no longer needed
            np.divide(s12, g, out=g)
            ok1 = s1 >= eps
            keep = g >= 0
            keep &= ok1
            keep &= ok2
            sv = np.multiply(g, s12, out=tmp)
            np.subtract(s2, sv, out=sv)
            np.maximum(sv, eps, out=sv)
            sv += sigma_nsq
            s1 *= ok1
            g *= keep
            t = np.multiply(g, g, out=b3)
            t *= s1
            t /= sv
            sums[i][0] += float(np.log1p(t, out=t)[crop].sum()) / _LN10
            s1 *= 1.0 / sigma_nsq
            sums[i][1] += float(np.log1p(s1, out=s1)[crop].sum()) / _LN10
    return [(nu, de) for nu, de in sums]


def vif_pair(ref: np.ndarray, dist: np.ndarray, **kw: float) -> float:
    """Pixel-domain VIF of ``dist`` against ``ref`` (see :func:`vif`); argument order matters."""
    ref, dist = as_image(ref, "reference image"), as_image(dist, "distorted image")
    return _vif_multi(dist, [ref], **kw)[0]


def _vif_multi(dist: np.ndarray, refs: list[np.ndarray], *, sigma_nsq: float = 2.0,
               eps: float = 1e-10) -> list[float]:
    num = [0.0] * len(refs)
    den = [0.0] * len(refs)
    refs = [np.ascontiguousarray(r) for r in refs]
    dist = np.ascontiguousarray(dist)
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        k1d = gaussian_window(n, n / 5.0)
        if scale > 1:
            dist = np.ascontiguousarray(filter_valid(dist, k1d)[::2, ::2])
            refs = [np.ascontiguousarray(filter_valid(r, k1d)[::2, ::2]) for r in refs]
        if min(dist.shape) < n:
            break  # image too small for this scale; the sums so far define the value
        for i, (nu, de) in enumerate(_vif_scale(dist, refs, k1d, sigma_nsq, eps)):
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

_TG, _KG, _DG = 0.9994, -15.0, 0.5
_TA, _KA, _DA = 0.9879, -22.0, 0.8


def _edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Input: a strip of rows with a one-row halo above and below; output: the maps of its inner rows.) Sobel
    strength and orientation as the Qabf references compute them: ``conv2(x, h, 'same')`` (true convolution, zero
    padding), ``atan(Sy / Sx)`` (not atan2) and ``pi / 2`` where ``Sx == 0``.

    ``conv2`` with ``h3`` equals minus OpenCV's ``Sobel(dx=1)`` correlation and ``conv2`` with ``h1`` equals
    ``Sobel(dy=1)``, both with a zero border (``BORDER_CONSTANT``; the caller adds zero rows at the top and bottom
    of the image); the values are exact integers for integer input.
    """
    sx = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_CONSTANT)[1:-1]
    sy = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_CONSTANT)[1:-1]
    g = np.sqrt(sx * sx + sy * sy)
    # reference Sx = -sx. Where Sx == 0 the numerator becomes |sy| + 1 > 0 over +0.0, so atan gives +pi/2; elsewhere
    # the numerator is unchanged (adding an exact 0).
    zero = sx == 0
    num = np.abs(sy)
    num += 1.0
    num -= sy
    num *= zero
    num += sy
    den = np.negative(sx)
    den += 0.0  # -0.0 -> +0.0
    with np.errstate(divide="ignore"):
        num /= den
    return g, np.arctan(num, out=num)


def _preservation(gs: np.ndarray, as_: np.ndarray, gf: np.ndarray, af: np.ndarray) -> np.ndarray:
    """Edge preservation map Q^{SF} = Q_g * Q_a (Xydeas & Petrovic 2000).

    Relative strength: ``gF / gS`` where ``gS > gF``, ``gS / gF`` where ``gS < gF`` and -- the references' quirk,
    kept -- ``gF`` itself where ``gS == gF`` (computed as ``min / (max + [equal] (1 - max))``). Orientation
    agreement ``1 - |aS - aF| / (pi / 2)``.
    """
    hi = np.maximum(gs, gf)
    eq = gs == gf
    den = 1.0 - hi
    den *= eq
    den += hi
    rel = np.minimum(gs, gf)
    rel /= den
    ang = np.abs(as_ - af)
    ang *= -2.0 / math.pi
    ang += 1.0 - _DA
    ang *= _KA
    qa = np.exp(ang, out=ang)
    qa += 1.0
    rel -= _DG
    rel *= _KG
    qg = np.exp(rel, out=rel)
    qg += 1.0
    qg *= qa
    return np.divide(_TG * _TA, qg, out=qg)


_STRIP_ROWS = 32  # rows per strip: strip-sized temporaries stay in cache and are recycled by the allocator


def _qabf_sums(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``sum(QAF gA + QBF gB)`` and ``sum(gA + gB)``, computed in strips of rows.

    Each strip is filtered with its one-row halo (zero rows and columns outside the image: ``conv2 'same'``), so
    the maps are exactly those of the whole image.
    """
    f, a, b = as_triplet(f, a, b)
    h = f.shape[0]
    num = den = 0.0
    for r0 in range(0, h, _STRIP_ROWS):
        r1 = min(h, r0 + _STRIP_ROWS)
        top, bottom = int(r0 == 0), int(r1 == h)  # zero rows only at the image border
        strips = [cv2.copyMakeBorder(x[r0 - 1 + top:r1 + 1 - bottom], top, bottom, 0, 0, cv2.BORDER_CONSTANT,
                                     value=0.0) for x in (a, b, f)]
        (g_a, a_a), (g_b, a_b), (g_f, a_f) = (_edges(x) for x in strips)
        q_af = _preservation(g_a, a_a, g_f, a_f)
        q_bf = _preservation(g_b, a_b, g_f, a_f)
        num += float(np.sum(q_af * g_a + q_bf * g_b))
        den += float(np.sum(g_a + g_b))
    return num, den


def qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qabf (Xydeas & Petrovic 2000): sum(QAF gA + QBF gB) / sum(gA + gB); Sobel gradients, Tg = 0.9994,
    kg = -15, Dg = 0.5, Ta = 0.9879, ka = -22, Da = 0.8, L = 1. Reproduces VIFB ``metricsQabf.m`` and CDDFuse
    ``Evaluator.Qabf`` on gray images. Sources without any gradient (0/0): 0.0 (nothing preserved)."""
    num, den = _qabf_sums(f, a, b)
    return num / den if den > 0 else 0.0


# Petrovic's later parametrisation, as in Kumar's ``objective_fusion_perform_fn``
_N_TD, _N_LG = 2.0, 1.5
_N_RG, _N_KG, _N_SG = 0.9999, 19.0, 0.5
_N_RA, _N_KA, _N_SA = 0.9995, 22.0, 0.5


def _kumar_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel responses / 8 with mirrored borders (``BORDER_REFLECT_101``, Kumar's "periodic extension"),
    strength and orientation ``atan(Gv / Gh)`` (0 where both are 0, +-pi/2 where only Gh is 0)."""
    gv = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, scale=0.125, borderType=cv2.BORDER_REFLECT_101)
    gh = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, scale=0.125, borderType=cv2.BORDER_REFLECT_101)
    g = np.sqrt(gv * gv + gh * gh)
    ang = np.arctan(np.divide(gv, gh, out=np.zeros_like(gv), where=gh != 0))
    ang = np.where(gh == 0, np.sign(gv) * (math.pi / 2), ang)
    return g, ang


def _kumar_preservation(gs: np.ndarray, as_: np.ndarray, gf: np.ndarray, af: np.ndarray) -> np.ndarray:
    lo, hi = np.minimum(gs, gf), np.maximum(gs, gf)
    rel = np.divide(lo, hi, out=np.zeros_like(lo), where=lo > 0)  # 0 where either strength is 0
    ang = np.abs(np.abs(as_ - af) - math.pi / 2) * (2.0 / math.pi)
    qg = _N_RG / (1.0 + np.exp(-_N_KG * (rel - _N_SG)))
    qa = _N_RA / (1.0 + np.exp(-_N_KA * (ang - _N_SA)))
    return np.sqrt(qg * qa)


def nabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Nabf, fusion artefacts in B. K. Shreyamsha Kumar's modified form (SIViP 7 (2013) 1125-1143; his
    ``objective_fusion_perform_fn``): ``sum(AM ((1 - QAF) wA + (1 - QBF) wB)) / sum(wA + wB)`` with
    ``AM = [gF > gA and gF > gB]`` (the fused edge is stronger than both sources), Petrovic's parameters
    (Q_g: 0.9999, 19, 0.5; Q_a: 0.9995, 22, 0.5; ``Q = sqrt(Q_g Q_a)``), weights ``w = g^1.5`` where
    ``g >= 2`` (Sobel / 8) and 0 elsewhere. Lower is better; 0.0 when no source edge reaches the threshold."""
    f, a, b = as_triplet(f, a, b)
    (g_a, a_a), (g_b, a_b), (g_f, a_f) = (_kumar_edges(x) for x in (a, b, f))
    w_a = np.where(g_a >= _N_TD, g_a ** _N_LG, 0.0)
    w_b = np.where(g_b >= _N_TD, g_b ** _N_LG, 0.0)
    den = float(np.sum(w_a + w_b))
    if den == 0.0:
        return 0.0
    am = (g_f > g_a) & (g_f > g_b)
    art = (1.0 - _kumar_preservation(g_a, a_a, g_f, a_f)) * w_a + (1.0 - _kumar_preservation(g_b, a_b, g_f, a_f)) * w_b
    return float(np.sum(art[am]) / den)
