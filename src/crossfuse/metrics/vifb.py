"""The ``vifb`` metric profile: the VIFB MATLAB toolkit's 13 metrics, reproduced.

Reference: X. Zhang, P. Ye, G. Xiao, "VIFB: A Visible and Infrared Image Fusion Benchmark", CVPRW 2020;
xingchenzhang/VIFB ``compute_metrics.m`` + ``metrics/metrics*.m``. The toolkit calls
``metrics<Name>(imread(VI), imread(IR), imread(fused))`` on the raw ``uint8`` arrays and every metric handles
colour itself; the implementations live in :mod:`crossfuse.metrics.vifb_stats` and
:mod:`crossfuse.metrics.vifb_quality`, the porting notes and the calibration table in ``docs/metrics_vifb.md``.

Colour handling. The toolkit's colour rules are not one "average over channels" for all metrics (Spatial_frequency
scores the channels side by side as one ``H x 3W`` matrix; a gray fused image makes some metrics round the
sources' ``rgb2gray`` and others not), so :func:`prepare` returns **one** triplet ``(F, A, B)`` holding the whole
images -- ``(H, W, 3)`` float64 where colour, ``(H, W)`` where gray -- and each metric applies the toolkit's rule
itself (:func:`~crossfuse.metrics.vifb_stats.per_channel`). The profile-wide mean over the triplet list is then the
toolkit's value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from crossfuse.io import to_uint8
from crossfuse.metrics import vifb_quality as q
from crossfuse.metrics import vifb_stats as s
from crossfuse.metrics.registry import MetricSpec, Profile

_SPECS = [
    # name, fn, higher_is_better, needs_sources, description, short alias
    ("Avg_gradient", s.avg_gradient, True, False, "average gradient, per channel, sum/((H-1)(W-1))", "AG"),
    ("Cross_entropy", s.cross_entropy, False, True, "mean of KL(p_VI||p_F), KL(p_IR||p_F), bits", "CE"),
    ("Edge_intensity", s.edge_intensity, True, False, "mean Sobel magnitude, replicate borders", "EI"),
    ("Entropy", s.entropy, True, False, "Shannon entropy of F, bits, per channel", "EN"),
    ("Mutinf", s.mutinf, True, True, "MI(VI,F) + MI(IR,F) on min-max normalised images, nats", "MI"),
    ("Psnr", s.psnr, True, True, "20 log10(255/sqrt(e)), e = the toolkit's L2-norm/N 'mse'", "PSNR"),
    ("Qabf", q.qabf, True, True, "Xydeas-Petrovic edge preservation", None),
    ("Qcb", q.qcb, True, True, "Chen-Blum perceptual contrast preservation", None),
    ("Qcv", q.qcv, False, True, "Chen-Varshney regional CSF-weighted distortion", None),
    ("Rmse", s.rmse, False, True, "mean of the toolkit's 'mse' (L2 norm / pixel count) over the sources", "RMSE"),
    ("Spatial_frequency", s.spatial_frequency, True, False, "SF of the channels laid side by side", "SF"),
    ("Ssim", q.ssim, True, True, "SSIM(VI,F) + SSIM(IR,F), 11x11 Gaussian, 'valid'", "SSIM"),
    # VIFB calls it Variance; it is the population standard deviation (VIFB's "SD").
    ("Variance", s.variance, True, False, "standard deviation of F (VIFB 'SD'), per channel", "SD"),
]

METRIC_NAMES: tuple[str, ...] = tuple(spec[0] for spec in _SPECS)
ALIASES: dict[str, str] = {alias: name for name, *_, alias in _SPECS if alias is not None}


def _metrics() -> dict[str, MetricSpec]:
    table: dict[str, MetricSpec] = {}
    for name, fn, hib, src, desc, alias in _SPECS:
        table[name] = MetricSpec(name, fn, hib, src, f"VIFB metrics{name}.m: {desc}")
        if alias is not None:
            table[alias] = MetricSpec(alias, fn, hib, src, f"alias of VIFB {name}: {desc}")
    return table


def _as_8bit(img: np.ndarray, role: str) -> np.ndarray:
    """The toolkit scores 8-bit images: uint8 is used as is, anything else is quantised (rounded, clipped)."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"vifb profile: {role} image must be (H, W) or (H, W, 3), got shape {arr.shape}")
    return to_uint8(arr).astype(np.float64)


def prepare(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One triplet ``(F, A=IR, B=VI)`` with the whole images as float64 0-255 (see the module docstring).

    Accepts what :func:`crossfuse.io.read_image` returns (with or without ``keep_channels``): a gray source read
    as one channel scores exactly as the toolkit's three identical channels would.
    """
    f, a, b = _as_8bit(fused, "fused"), _as_8bit(ir, "infrared"), _as_8bit(vi, "visible")
    for role, x in (("infrared", a), ("visible", b)):
        if x.shape[:2] != f.shape[:2]:
            raise ValueError(f"vifb profile: {role} image is {x.shape[1]}x{x.shape[0]} but the fused image is "
                             f"{f.shape[1]}x{f.shape[0]} (W x H); sizes must match")
    if min(f.shape[:2]) < 2:
        raise ValueError(f"vifb profile: images must be at least 2x2 pixels, got {f.shape[1]}x{f.shape[0]} (W x H)")
    return [(f, a, b)]


def _resolve(metrics: list[str] | tuple[str, ...] | None) -> list[str]:
    table = PROFILE.metrics
    names = list(metrics) if metrics is not None else list(METRIC_NAMES)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise KeyError(f"unknown vifb metric(s) {', '.join(unknown)}; valid metrics: {', '.join(table)}")
    return names


def score(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray,
          metrics: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
    """All (or the named) VIFB metrics of one triplet, as the toolkit reports them."""
    table = PROFILE.metrics
    (f, a, b), = prepare(ir, vi, fused)
    return {n: table[n].fn(f, a, b) if table[n].needs_sources else table[n].fn(f) for n in _resolve(metrics)}


# The two-source metrics whose source-side work is worth sharing between fused images of one pair.
_SPLITS = {"Qabf": q.QABF_SPLIT, "Qcb": q.QCB_SPLIT, "Qcv": q.QCV_SPLIT, "Ssim": q.SSIM_SPLIT,
           "Mutinf": s.MUTINF_SPLIT}


def score_methods(ir: np.ndarray, vi: np.ndarray, fused: Mapping[str, np.ndarray],
                  metrics: list[str] | tuple[str, ...] | None = None) -> dict[str, dict[str, float]]:
    """:func:`score` for several fused images of one source pair (``{name: fused}``, e.g. one per method, as in a
    VIFB-style benchmark), computing every source-only map (Qabf edges, Qcb contrast, Qcv saliency, SSIM and MI
    source statistics) once per pair instead of once per fused image. Same numbers as :func:`score`, bit for bit.
    """
    names = _resolve(metrics)
    table = PROFILE.metrics
    states: dict[tuple[str, int, int], tuple] = {}  # (metric, fused ndim, channel) -> the two source states
    out: dict[str, dict[str, float]] = {}
    for key, img in fused.items():
        (f, a, b), = prepare(ir, vi, img)
        vals: dict[str, float] = {}
        for n in names:
            name = ALIASES.get(n, n)
            split = _SPLITS.get(name)
            if split is None:
                vals[n] = table[n].fn(f, a, b) if table[n].needs_sources else table[n].fn(f)
                continue
            per = []
            for k, (fk, ak, bk) in enumerate(s.channel_triplets(f, a, b)):
                if (name, f.ndim, k) not in states:
                    states[(name, f.ndim, k)] = (split.source(ak), split.source(bk))
                per.append(split.combine(fk, *states[(name, f.ndim, k)]))
            vals[n] = float(np.mean(per))
        out[key] = vals
    return out


PROFILE = Profile(
    name="vifb",
    metrics=_metrics(),
    prepare=prepare,
    colour=("VIFB MATLAB toolkit: colour fused images scored per RGB channel against the matching source "
            "channel (a gray source used for every channel) and averaged; Spatial_frequency on the channels "
            "side by side; gray fused images against rgb2gray sources"),
    reference="VIFB MATLAB toolkit, xingchenzhang/VIFB metrics/*.m (Zhang et al., CVPRW 2020)",
    default_metrics=METRIC_NAMES,
    conventions=("Ssim and Mutinf are sums over the two sources (F with VIS plus F with IR): Ssim up to 2; "
                 "Cross_entropy and Rmse are means over the two sources",
                 "Mutinf in nats, Entropy in bits; colour fused images are scored per RGB channel and averaged"),
)
