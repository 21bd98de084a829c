"""Statistical fusion metrics as pure functions on 2-D float64 arrays on the 0-255 scale.

Argument order everywhere: ``fn(F)`` for no-reference metrics, ``fn(F, A, B)`` for metrics that need the sources
(``A`` = infrared, ``B`` = visible). Definitions follow ``../shared/docs/METRICS.md`` (canonical) unless a keyword
selects a reference's variant; the profile modules (:mod:`crossfuse.metrics.canonical`,
:mod:`crossfuse.metrics.cddfuse`) bind those keywords.

Conventions for degenerate input (documented in ``docs/metrics.md``; no NaN, no warnings):

* a correlation with a constant signal is ``0`` (CC, SCD);
* PSNR of a zero MSE is ``+inf`` (the textbook value); with a zero peak (CDDFuse's ``max(F)``) it is ``-inf``;
* histograms take values rounded to the nearest integer and clipped to 0..255 (8-bit semantics).

Filtering helpers (:func:`filter_valid`, :func:`gaussian_window`) live here too; the structural metrics in
:mod:`crossfuse.metrics.structural` use them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "entropy", "std", "spatial_frequency", "average_gradient", "edge_intensity",
    "mutual_information", "mutual_information_pair", "cross_entropy", "correlation", "cc", "scd",
    "mse", "rmse", "psnr", "hist256", "gaussian_window", "filter_valid", "crushed_dark_percent",
]

# --------------------------------------------------------------------------------------------------- helpers


def as_image(x: np.ndarray, role: str = "image") -> np.ndarray:
    """A 2-D float64 array, or a :class:`ValueError` naming ``role`` and the shape."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{role} must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"{role} is too small for fusion metrics: shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def as_triplet(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(F, A, B)`` as 2-D float64 arrays of one shape, or a :class:`ValueError` naming the sizes."""
    f, a, b = as_image(f, "fused image"), as_image(a, "infrared image"), as_image(b, "visible image")
    if not f.shape == a.shape == b.shape:
        raise ValueError(f"size mismatch: fused {f.shape}, infrared {a.shape}, visible {b.shape} (H, W)")
    return f, a, b


def to_uint8_levels(x: np.ndarray) -> np.ndarray:
    """Values rounded to the nearest integer and clipped to 0..255, as ``intp`` histogram indices."""
    return np.clip(np.rint(x), 0, 255).astype(np.intp)


def hist256(x: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histogram of the rounded, clipped 8-bit values."""
    h = np.bincount(to_uint8_levels(x).ravel(), minlength=256).astype(np.float64)
    return h / h.sum()


def _plogp(p: np.ndarray, log) -> float:
    p = p[p > 0]
    return float(-(p * log(p)).sum())


def gaussian_window(n: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB's ``fspecial('gaussian', n, sigma)`` (the 2-D window is ``outer(g, g)``).

    ``fspecial`` also zeroes values below ``eps * max``; for the windows used here (n <= 17, sigma >= n / 5) no
    value is that small, so the 2-D window is exactly separable.
    """
    r = (n - 1) / 2.0
    x = np.arange(n, dtype=np.float64) - r
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def filter_valid(x: np.ndarray, k1d: np.ndarray) -> np.ndarray:
    """Separable symmetric filtering, 'valid' part only (MATLAB ``filter2(w, x, 'valid')`` with ``w = k k^T``).

    For a symmetric kernel correlation and convolution agree, so this is also SciPy's
    ``convolve2d(x, rot90(w, 2), mode='valid')``. Computed with ``cv2.sepFilter2D`` in float64; the border mode
    does not matter because the border rows and columns are cropped.
    """
    r = len(k1d) // 2
    y = cv2.sepFilter2D(x, cv2.CV_64F, k1d, k1d, borderType=cv2.BORDER_REFLECT)
    return y[r:y.shape[0] - r, r:y.shape[1] - r]


# --------------------------------------------------------------------------------------------------- no-reference


def entropy(f: np.ndarray) -> float:
    """EN: Shannon entropy (bits) of the 256-bin histogram of ``F`` rounded to 8-bit levels.

    Matches CDDFuse ``Evaluator.EN`` (``np.uint8(np.round(F))`` + ``bincount``) for values in 0..255.
    """
    return _plogp(hist256(as_image(f)), np.log2)


def std(f: np.ndarray) -> float:
    """SD: population standard deviation of ``F`` (``np.std``; VIFB calls it ``Variance``)."""
    return float(np.std(as_image(f)))


def spatial_frequency(f: np.ndarray) -> float:
    """SF = sqrt(RF^2 + CF^2): RF^2 the mean squared horizontal neighbour difference, CF^2 the vertical one
    (Eskicioglu & Fisher 1995; CDDFuse ``Evaluator.SF``)."""
    x = as_image(f)
    rf = np.mean(np.square(np.diff(x, axis=1)))
    cf = np.mean(np.square(np.diff(x, axis=0)))
    return float(np.sqrt(rf + cf))


def average_gradient(f: np.ndarray) -> float:
    """AG: mean of sqrt((Gx^2 + Gy^2) / 2), central differences inside, one-sided at the borders
    (``np.gradient`` semantics; CDDFuse ``Evaluator.AG``)."""
    gy, gx = np.gradient(as_image(f))
    return float(np.mean(np.sqrt((gx * gx + gy * gy) * 0.5)))


def edge_intensity(f: np.ndarray) -> float:
    """EI: mean Sobel gradient magnitude, replicated borders (VIFB ``metricsEdge_intensity``:
    ``imfilter(F, fspecial('sobel'), 'replicate')`` and its transpose)."""
    x = as_image(f)
    gx = cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return float(np.mean(np.sqrt(gx * gx + gy * gy)))


# --------------------------------------------------------------------------------------------------- information


def _labels(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer labels of the values: the 8-bit levels when all values are integers in 0..255 (the usual case),
    otherwise the ranks of the distinct values (scikit-learn's contingency semantics)."""
    r = x.ravel()
    lab = r.astype(np.intp)
    if np.array_equal(lab, r) and lab.min() >= 0 and lab.max() <= 255:
        return lab, 256
    uniq, inv = np.unique(r, return_inverse=True)
    return inv.astype(np.intp), len(uniq)


def _mi_from_labels(lx: np.ndarray, nx: int, ly: np.ndarray, ny: int, base: float) -> float:
    joint = np.bincount(lx * ny + ly, minlength=nx * ny).reshape(nx, ny)
    px = joint.sum(axis=1)
    py = joint.sum(axis=0)
    i, j = np.nonzero(joint)
    cij = joint[i, j].astype(np.float64)
    n = float(cij.sum())
    terms = np.log(cij) - np.log(px[i].astype(np.float64)) - np.log(py[j].astype(np.float64))
    mi = (float(np.dot(cij, terms)) / n) + math.log(n)
    return max(mi, 0.0) / math.log(base)


def mutual_information_pair(x: np.ndarray, y: np.ndarray, *, base: float = 2.0) -> float:
    """MI(X; Y) from the joint histogram of the values (plug-in estimate), in ``log base`` units.

    Integer images 0..255 use 256 x 256 bins. With ``base=e`` this equals scikit-learn's
    ``mutual_info_score(x.ravel(), y.ravel())`` (which labels each distinct value; non-integer values are
    labelled the same way here). Never negative.
    """
    lx, nx = _labels(np.asarray(x, dtype=np.float64))
    ly, ny = _labels(np.asarray(y, dtype=np.float64))
    return _mi_from_labels(lx, nx, ly, ny, base)


def mutual_information(f: np.ndarray, a: np.ndarray, b: np.ndarray, *, base: float = 2.0) -> float:
    """MI = MI(F, A) + MI(F, B); bits by default (canonical), ``base=math.e`` for nats (CDDFuse)."""
    f, a, b = as_triplet(f, a, b)
    lf, nf = _labels(f)
    return sum(_mi_from_labels(lf, nf, *_labels(s), base) for s in (a, b))


def cross_entropy(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """CE: mean over the sources of sum p_S log2(p_S / p_F) over the 8-bit levels where both histograms are
    non-zero (VIFB ``metricsCross_entropy``; a relative entropy, lower is better)."""
    f, a, b = as_triplet(f, a, b)
    pf = hist256(f)
    out = 0.0
    for s in (a, b):
        ps = hist256(s)
        m = (ps > 0) & (pf > 0)
        out += float(np.sum(ps[m] * np.log2(ps[m] / pf[m])))
    return out / 2.0


# --------------------------------------------------------------------------------------------------- correlation


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two arrays; ``0`` when either is constant (documented convention).

    Computed from raw sums (``sum(x y) - n mean(x) mean(y)``, via ``np.dot``): exact for the integer-valued images
    metrics see; a variance below ``1e-12`` of the raw second moment counts as constant.
    """
    xr = np.ascontiguousarray(x, dtype=np.float64).ravel()
    yr = np.ascontiguousarray(y, dtype=np.float64).ravel()
    n = xr.size
    mx, my = xr.mean(), yr.mean()
    xx, yy = float(np.dot(xr, xr)), float(np.dot(yr, yr))
    sxx = xx - n * mx * mx
    syy = yy - n * my * my
    if sxx <= 1e-12 * xx or syy <= 1e-12 * yy:
        return 0.0
    return float((np.dot(xr, yr) - n * mx * my) / math.sqrt(sxx * syy))


def cc(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """CC: mean of corr(F, A) and corr(F, B) (CDDFuse ``Evaluator.CC``)."""
    f, a, b = as_triplet(f, a, b)
    return (correlation(f, a) + correlation(f, b)) / 2.0


def scd(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """SCD (Aslantas & Bendes 2015): corr(F - B, A) + corr(F - A, B) (CDDFuse ``Evaluator.SCD``)."""
    f, a, b = as_triplet(f, a, b)
    return correlation(f - b, a) + correlation(f - a, b)


# --------------------------------------------------------------------------------------------------- error


def mse(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """MSE: mean of MSE(F, A) and MSE(F, B) on the 0-255 scale (CDDFuse ``Evaluator.MSE``)."""
    f, a, b = as_triplet(f, a, b)
    return float((np.mean(np.square(a - f)) + np.mean(np.square(b - f))) / 2.0)


def rmse(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """RMSE = sqrt(MSE) with MSE as in :func:`mse` (so that PSNR = 20 log10(255 / RMSE))."""
    return math.sqrt(mse(f, a, b))


def psnr(f: np.ndarray, a: np.ndarray, b: np.ndarray, *, peak: float | None = 255.0) -> float:
    """PSNR = 10 log10(peak^2 / MSE), MSE from :func:`mse`.

    ``peak=255`` is the canonical definition; ``peak=None`` uses ``max(F)`` as CDDFuse ``Evaluator.PSNR`` does.
    ``+inf`` when MSE is 0; ``-inf`` when the peak is 0 (and MSE is not).
    """
    e = mse(f, a, b)
    p = float(np.max(f)) if peak is None else float(peak)
    if e == 0.0:
        return math.inf
    if p == 0.0:
        return -math.inf
    return 10.0 * math.log10(p * p / e)


def crushed_dark_percent(f: np.ndarray, a: np.ndarray, b: np.ndarray, *, margin: float = 10.0) -> float:
    """% of pixels of ``f`` more than ``margin`` darker than both sources (the crushed-dark statistic of
    docs/protocol.md; ``margin`` in the images' units: 10 grey levels on the 0-255 scale). Not a fusion-quality
    metric: a fusion darker than both of its inputs has lost what both showed."""
    f, a, b = (np.asarray(x, dtype=np.float64) for x in (f, a, b))
    return float(100.0 * np.mean(f < np.minimum(a, b) - margin))
