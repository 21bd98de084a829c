"""VIFB toolkit metrics, part 1: the statistics (AG, CE, EI, EN, MI, PSNR, RMSE, SF, Variance).

Each public function reproduces one ``metrics/metrics<Name>.m`` of the VIFB MATLAB toolkit (xingchenzhang/VIFB,
Zhang, Ye and Xiao, CVPRW 2020) as ``compute_metrics.m`` calls it: ``metrics<Name>(imgVI, imgIR, fused)`` on the
arrays ``imread`` returns. Here the argument order is the project's ``fn(F, A, B)`` with ``A`` = IR, ``B`` = VIS;
every VIFB metric is symmetric in the two sources, so only the naming changes.

Arrays are float64 holding 8-bit values (0-255 integers), ``(H, W)`` or ``(H, W, C)``. Colour handling follows the
toolkit (see :func:`per_channel`): a colour fused image is scored channel by channel against the matching source
channels (a one-channel source is used for every channel) and the channel scores are averaged; a one-channel fused
image is scored against sources that are converted to gray with MATLAB ``rgb2gray`` -- rounded where MATLAB
converts a ``uint8`` array, not rounded where the toolkit had already cast to ``double`` (that differs per metric,
and the functions below say which). Porting notes for every metric: ``docs/metrics_vifb.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from crossfuse.metrics import core

# MATLAB rgb2gray weights (first row of the inverse NTSC transform), to full double precision.
_RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


# ----------------------------------------------------------------------------------------------- shared helpers


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero (NumPy's ``round`` goes to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def rgb2gray(img: np.ndarray, *, uint8: bool) -> np.ndarray:
    """MATLAB ``rgb2gray`` on an ``(H, W, 3)`` array; 2-D input is returned unchanged.

    ``uint8=True`` reproduces a ``uint8`` input (result rounded half away from zero and saturated to 0-255),
    ``uint8=False`` a ``double`` input (no rounding).
    """
    if img.ndim == 2:
        return img
    g = img[..., 0] * _RGB2GRAY[0] + img[..., 1] * _RGB2GRAY[1] + img[..., 2] * _RGB2GRAY[2]
    return np.clip(matlab_round(g), 0, 255) if uint8 else g


def channel_triplets(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """The toolkit's colour dispatch, shared by all of its two-source metrics.

    One-channel ``fused``: one triplet with the sources as they are (the metric converts a colour source to gray).
    ``C``-channel ``fused``: ``(fused[..., k], a[..., k], b[..., k])`` for each ``k``, a one-channel source standing
    in for every ``k`` (the toolkit's ``b1 == 1`` branch; it would fail on a gray visible image with a colour
    infrared one, which is served the same way here).
    """
    if fused.ndim == 2:
        return [(fused, a, b)]
    return [(fused[..., k], a if a.ndim == 2 else a[..., k], b if b.ndim == 2 else b[..., k])
            for k in range(fused.shape[2])]


def per_channel(inner: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
                fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Mean of ``inner(f, s1, s2)`` over :func:`channel_triplets` (the toolkit averages channel scores)."""
    return float(np.mean([inner(*t) for t in channel_triplets(fused, a, b)]))


@dataclass(frozen=True)
class SourceSplit:
    """A two-source metric written as ``combine(f, source(s1), source(s2))``.

    ``source`` does all the work that depends on one source channel only (gray conversion included), so that
    scoring several fused images of one pair (:func:`crossfuse.metrics.vifb.score_methods`) computes it once.
    Calling the object scores one channel triplet.
    """

    source: Callable[[np.ndarray], Any]
    combine: Callable[[np.ndarray, Any, Any], float]

    def __call__(self, f: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
        return self.combine(f, self.source(s1), self.source(s2))


def _channels(fused: np.ndarray) -> list[np.ndarray]:
    return [fused] if fused.ndim == 2 else [fused[..., k] for k in range(fused.shape[2])]


def _hist256(x: np.ndarray) -> np.ndarray:
    """Counts of the integer values 0..255 (the toolkit's hand-written histogram loops)."""
    return np.bincount(x.astype(np.int64).ravel(), minlength=256)[:256].astype(np.float64)


# ----------------------------------------------------------------------------------------------- no-reference


def avg_gradient(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """``metricsAvg_gradient.m``: per channel, MATLAB ``gradient`` (central differences inside, one-sided at the
    borders), ``sum(sqrt((gx^2 + gy^2) / 2)) / ((H - 1)(W - 1))`` -- all H*W pixels summed but divided by
    (H-1)(W-1), a quirk kept -- then the mean over channels."""
    vals = []
    for f in _channels(fused):
        gy, gx = np.gradient(f)
        vals.append(np.sqrt((gx * gx + gy * gy) / 2.0).sum() / ((f.shape[0] - 1) * (f.shape[1] - 1)))
    return float(np.mean(vals))


def edge_intensity(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """``metricsEdge_intensity.m``: ``imfilter`` (correlation) with ``fspecial('sobel')`` and its transpose,
    replicate borders, mean of ``sqrt(gx^2 + gy^2)`` over all pixels and channels -- per channel exactly
    :func:`crossfuse.metrics.core.edge_intensity`."""
    return float(np.mean([core.edge_intensity(f) for f in _channels(fused)]))


def entropy(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """``metricsEntropy.m``: Shannon entropy in bits of the 256-bin histogram of ``floor(F)``, per channel, averaged
    over channels (not MATLAB's ``entropy``, which would convert colour to gray)."""
    vals = []
    for f in _channels(fused):
        p = _hist256(np.floor(f)) / f.size
        p = p[p > 0]
        vals.append(-(p * np.log2(p)).sum())
    return float(np.mean(vals))


def spatial_frequency(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """``metricsSpatial_frequency.m``: ``sqrt(RF + CF)``, ``RF``/``CF`` the sums of squared horizontal/vertical
    neighbour differences divided by the pixel count.

    Quirk reproduced: the ``.m`` takes ``[m, n] = size(fused)``, which for an ``H x W x C`` array gives
    ``n = W*C``, and indexes ``fused(i, j)`` -- so a colour image is scored as one ``H x (W*C)`` matrix with the
    channels side by side (the two seams between channels count as edges). It is *not* a mean over channels.
    """
    m = fused if fused.ndim == 2 else np.concatenate(_channels(fused), axis=1)
    n = m.size
    rf = np.square(np.diff(m, axis=1)).sum() / n
    cf = np.square(np.diff(m, axis=0)).sum() / n
    return float(np.sqrt(rf + cf))


def variance(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """``metricsVariance.m``: despite the name, the population *standard deviation* of each channel, averaged over
    channels (VIFB's "SD"; per channel :func:`crossfuse.metrics.core.std`)."""
    return float(np.mean([core.std(f) for f in _channels(fused)]))


# ----------------------------------------------------------------------------------------------- two-source


def cross_entropy(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsCross_entropy.m``: mean of the relative entropies ``sum p_S log2(p_S / p_F)`` of the two sources'
    256-bin histograms against the fused one (bins empty on either side skipped); per channel (on these 8-bit
    values exactly :func:`crossfuse.metrics.core.cross_entropy`), averaged.
    Gray fused + colour source: ``rgb2gray`` of the ``uint8`` source (rounded)."""
    def one(f: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
        return core.cross_entropy(f, rgb2gray(s1, uint8=True), rgb2gray(s2, uint8=True))
    return per_channel(one, fused, a, b)


def _minmax_255(x: np.ndarray) -> np.ndarray:
    """The MI helper's normalisation: min-max to [0, 1] (all zeros if constant), ``int16(x * 255)`` (rounded half
    away from zero), as integer bin indices 0..255."""
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.zeros(x.shape, dtype=np.int64)
    return np.floor((x - lo) / (hi - lo) * 255 + 0.5).astype(np.int64)  # values >= 0: half away from zero


def _mutinf_1(i: np.ndarray, j: np.ndarray) -> float:
    """MI in nats of two images already turned into bin indices by :func:`_minmax_255` (raveled)."""
    joint = np.bincount(i * 256 + j, minlength=256 * 256).astype(np.float64)
    n = joint.sum()

    def h(counts: np.ndarray) -> float:
        p = counts[counts > 0] / n
        return float(-(p * np.log(p)).sum())

    return h(np.bincount(i, minlength=256)) + h(np.bincount(j, minlength=256)) - h(joint)


def _mutinf_combine(f: np.ndarray, i1: np.ndarray, i2: np.ndarray) -> float:
    jf = _minmax_255(f).ravel()
    return _mutinf_1(i1, jf) + _mutinf_1(i2, jf)


MUTINF_SPLIT = SourceSplit(lambda s: _minmax_255(rgb2gray(s, uint8=True)).ravel(), _mutinf_combine)


def mutinf(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsMutinf.m``: ``MI(VI, F) + MI(IR, F)`` in **nats** (natural log) from 256x256 joint histograms of
    the min-max normalised images (each rescaled to 0..255 and rounded); per channel, averaged.
    Gray fused + colour source: ``rgb2gray`` of the ``uint8`` source (rounded)."""
    return per_channel(MUTINF_SPLIT, fused, a, b)


def _vifb_mse(s: np.ndarray, f: np.ndarray) -> float:
    """The toolkit's ``mse`` helper: ``sqrt(sum((S - F)^2)) / (H*W)`` -- the L2 norm of the difference divided by
    the pixel count, *not* a mean squared error (quirk kept)."""
    return float(np.sqrt(np.square(s - f).sum()) / s.size)


def _vifb_mse_2(f: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
    """Mean of :func:`_vifb_mse` over the two sources of one channel (colour sources: unrounded ``rgb2gray``)."""
    return (_vifb_mse(rgb2gray(s1, uint8=False), f) + _vifb_mse(rgb2gray(s2, uint8=False), f)) / 2.0


def rmse(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsRmse.m``: mean of the toolkit's ``mse`` helper (:func:`_vifb_mse`) over the two sources; per channel,
    averaged. Gray fused + colour source: ``rgb2gray`` of the already-``double`` source (not rounded)."""
    return per_channel(_vifb_mse_2, fused, a, b)


def psnr(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``metricsPsnr.m``: ``20 log10(255 / sqrt(e))`` with ``e`` the mean of the toolkit's ``mse`` helper over the
    two sources (so ``PSNR = 20 log10(255) - 10 log10(RMSE)`` per channel); per channel, averaged (the PSNRs, not
    the errors). Identical images give ``inf``. Gray fused + colour source: ``rgb2gray`` not rounded."""
    def one(f: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
        e = _vifb_mse_2(f, s1, s2)
        return float("inf") if e == 0 else 20.0 * np.log10(255.0 / np.sqrt(e))
    return per_channel(one, fused, a, b)
