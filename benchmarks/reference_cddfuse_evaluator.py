"""A deliberately plain re-implementation of how MMIF-CDDFuse ``utils/Evaluator.py`` computes its metrics.

Used only as the speed baseline (and cross-check) in ``benchmarks/bench_metrics.py``; not part of the package.
It follows the reference's computational choices, written independently: float32 images as its reader returns
them, SciPy ``convolve2d`` for every VIF filtering step, boolean-mask NumPy for Qabf, a scikit-learn-style
contingency table (``np.unique`` labels + sparse matrix) for MI in nats, and scikit-image
``structural_similarity`` (``data_range=2``, the 0.19 behaviour) for SSIM. Needs scikit-image (dev extra).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.signal import convolve2d


def en(img: np.ndarray) -> float:
    levels = np.uint8(np.round(img)).ravel()
    p = np.bincount(levels) / levels.size
    return float(-np.sum(p * np.log2(p + (p == 0))))


def sd(img: np.ndarray) -> float:
    return float(np.std(img))


def sf(img: np.ndarray) -> float:
    return float(np.sqrt(np.mean((img[:, 1:] - img[:, :-1]) ** 2) + np.mean((img[1:, :] - img[:-1, :]) ** 2)))


def ag(img: np.ndarray) -> float:
    gx = np.zeros_like(img)
    gy = np.zeros_like(img)
    gx[:, 0], gx[:, -1] = img[:, 1] - img[:, 0], img[:, -1] - img[:, -2]
    gx[:, 1:-1] = (img[:, 2:] - img[:, :-2]) / 2
    gy[0, :], gy[-1, :] = img[1, :] - img[0, :], img[-1, :] - img[-2, :]
    gy[1:-1, :] = (img[2:, :] - img[:-2, :]) / 2
    return float(np.mean(np.sqrt((gx ** 2 + gy ** 2) / 2)))


def _mi_nats(x: np.ndarray, y: np.ndarray) -> float:
    """Contingency-table mutual information in nats, labelled by distinct values (scikit-learn's way)."""
    _, lx = np.unique(x.ravel(), return_inverse=True)
    _, ly = np.unique(y.ravel(), return_inverse=True)
    table = sparse.coo_matrix((np.ones(lx.size), (lx, ly))).tocsr()
    table.sum_duplicates()
    rows, cols, counts = sparse.find(table)
    n = counts.sum()
    pi = np.ravel(table.sum(axis=1))
    pj = np.ravel(table.sum(axis=0))
    p = counts / n
    outer = pi.take(rows).astype(np.float64) * pj.take(cols).astype(np.float64)
    mi = p * (np.log(counts) - math.log(n)) + p * (-np.log(outer) + math.log(pi.sum()) + math.log(pj.sum()))
    return float(max(mi.sum(), 0.0))


def mi(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return _mi_nats(f, a) + _mi_nats(f, b)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - np.mean(x), y - np.mean(y)
    return float(np.sum(dx * dy) / np.sqrt(np.sum(dx ** 2) * np.sum(dy ** 2)))


def scd(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return _corr(a, f - b) + _corr(b, f - a)


def cc(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return (_corr(a, f) + _corr(b, f)) / 2


def mse(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((np.mean((a - f) ** 2) + np.mean((b - f) ** 2)) / 2)


def psnr(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(np.max(f) ** 2 / mse(f, a, b)))


def _matlab_gauss(n: int) -> np.ndarray:
    half = (n - 1) / 2.0
    yy, xx = np.ogrid[-half:half + 1, -half:half + 1]
    h = np.exp(-(xx * xx + yy * yy) / (2.0 * (n / 5.0) ** 2))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def _vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    sigma_nsq, eps = 2.0, 1e-10
    num = den = 0.0
    for scale in range(1, 5):
        win = np.rot90(_matlab_gauss(2 ** (5 - scale) + 1), 2)
        if scale > 1:
            ref = convolve2d(ref, win, mode="valid")[::2, ::2]
            dist = convolve2d(dist, win, mode="valid")[::2, ::2]
        mu1, mu2 = convolve2d(ref, win, mode="valid"), convolve2d(dist, win, mode="valid")
        s1 = convolve2d(ref * ref, win, mode="valid") - mu1 * mu1
        s2 = convolve2d(dist * dist, win, mode="valid") - mu2 * mu2
        s12 = convolve2d(ref * dist, win, mode="valid") - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        m = s1 < eps
        g[m], sv[m], s1[m] = 0, s2[m], 0
        m = s2 < eps
        g[m], sv[m] = 0, 0
        m = g < 0
        sv[m], g[m] = s2[m], 0
        sv[sv <= eps] = eps
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    v = num / den
    return 1.0 if np.isnan(v) else float(v)


def vif(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return _vifp(a, f) + _vifp(b, f)


_H1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float32)
_H3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)


def _grad(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sx, sy = convolve2d(img, _H3, mode="same"), convolve2d(img, _H1, mode="same")
    g = np.sqrt(sx * sx + sy * sy)
    ang = np.zeros_like(img)
    ang[sx == 0] = math.pi / 2
    ang[sx != 0] = np.arctan(sy[sx != 0] / sx[sx != 0])
    return g, ang


def _preserve(a_s: np.ndarray, g_s: np.ndarray, a_f: np.ndarray, g_f: np.ndarray) -> np.ndarray:
    rel = np.zeros_like(a_s)
    rel[g_s > g_f] = g_f[g_s > g_f] / g_s[g_s > g_f]
    rel[g_s == g_f] = g_f[g_s == g_f]
    rel[g_s < g_f] = g_s[g_s < g_f] / g_f[g_s < g_f]
    ori = 1 - np.abs(a_s - a_f) / (math.pi / 2)
    return 0.9994 / (1 + np.exp(-15 * (rel - 0.5))) * (0.9879 / (1 + np.exp(-22 * (ori - 0.8))))


def qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ga, aa = _grad(a)
    gb, ab = _grad(b)
    gf, af = _grad(f)
    qa, qb = _preserve(aa, ga, af, gf), _preserve(ab, gb, af, gf)
    return float(np.sum(qa * ga + qb * gb) / np.sum(ga + gb))


def ssim(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(f, a, data_range=2) + structural_similarity(f, b, data_range=2))


NO_REFERENCE = {"EN": en, "SD": sd, "SF": sf, "AG": ag}
WITH_SOURCES = {"MI": mi, "SCD": scd, "VIF": vif, "Qabf": qabf, "SSIM": ssim, "CC": cc, "PSNR": psnr, "MSE": mse}


def evaluate(name: str, f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """One metric by name on float32 gray images (as the reference reader returns them)."""
    if name in NO_REFERENCE:
        return NO_REFERENCE[name](f)
    return WITH_SOURCES[name](f, a, b)
