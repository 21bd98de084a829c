"""The ``cddfuse`` metric profile: MMIF-CDDFuse ``utils/Evaluator.py`` as its authors ran it.

Reference: Z. Zhao et al., "CDDFuse", CVPR 2023, github.com/Zhaozixiang1228/MMIF-CDDFuse ``utils/Evaluator.py``
(the evaluator reused by DDFM, EMMA, CrossFuse and others), with its pinned scikit-image 0.19. Differences from
the canonical profile, all reproduced here:

* images are read as its ``test_IVF.py`` reads them: ``cv2.imread`` (8-bit BGR; 16-bit files are shifted to
  8 bits by OpenCV) -> float32 -> ``COLOR_BGR2GRAY`` -> ``np.round``;
* MI is scikit-learn ``mutual_info_score`` per source, natural log (nats), summed;
* SSIM is scikit-image ``structural_similarity`` defaults on float32 images: 7x7 uniform window, sample
  covariance, ``data_range = 2`` (what 0.19 assumed for float input), border of 3 excluded; SSIM(F,A) + SSIM(F,B);
* PSNR uses ``max(F)`` as the peak: 10 log10(max(F)^2 / MSE).

EN, SD, SF, AG, SCD, CC, MSE, VIF and Qabf are the canonical functions (same definitions). Degenerate inputs get
the library's defined values (correlation with a constant = 0, VIF 0/0 = 1, Qabf 0/0 = 0) where the original
returns NaN with a warning.
"""

from __future__ import annotations

import math

import numpy as np

from crossfuse.io import rgb_to_gray
from crossfuse.metrics import core, structural
from crossfuse.metrics.core import as_triplet
from crossfuse.metrics.registry import Profile

REFERENCE = "MMIF-CDDFuse utils/Evaluator.py (scikit-image 0.19 SSIM, scikit-learn MI in nats)"
COLOUR = "cv2.imread BGR -> float32 -> COLOR_BGR2GRAY -> round (colour scored on BT.601 gray)"

DEFAULT_METRICS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")


def to_gray_cddfuse(img: np.ndarray) -> np.ndarray:
    """One read image (RGB or gray; uint8, uint16 or float 0-255) -> what CDDFuse's reader gives, as float64.

    uint16 is reduced as ``cv2.imread`` does without flags (``>> 8``); a gray image passes through BGR2GRAY of
    three equal channels, i.e. is only rounded.
    """
    x = np.asarray(img)
    if x.dtype == np.uint16:
        x = (x >> 8).astype(np.uint8)
    return rgb_to_gray(x)


def prepare(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``[(F, A, B)]``: one gray float64 triplet read the CDDFuse way."""
    return [(to_gray_cddfuse(fused), to_gray_cddfuse(ir), to_gray_cddfuse(vi))]


def mi_nats(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``mutual_info_score(F, A) + mutual_info_score(F, B)`` (natural log)."""
    return core.mutual_information(f, a, b, base=math.e)


def ssim_skimage019(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """``structural_similarity(F, A) + structural_similarity(F, B)`` as in scikit-image 0.19 on float32 input."""
    f, a, b = as_triplet(f, a, b)
    return sum(structural.ssim_uniform(f, [a, b], data_range=2.0, dtype=np.float32))


def psnr_maxf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """10 log10(max(F)^2 / MSE) (CDDFuse ``Evaluator.PSNR``)."""
    return core.psnr(f, a, b, peak=None)


_SPECS = [
    ("EN", core.entropy, True, False, "Shannon entropy of round(F), bits"),
    ("SD", core.std, True, False, "np.std(F)"),
    ("SF", core.spatial_frequency, True, False, "spatial frequency"),
    ("AG", core.average_gradient, True, False, "average gradient"),
    ("MI", mi_nats, True, True, "sklearn mutual_info_score(F,A) + (F,B), nats"),
    ("SCD", core.scd, True, True, "corr(F-B, A) + corr(F-A, B)"),
    ("VIF", structural.vif, True, True, "VIFF: pixel VIF(A->F) + VIF(B->F)"),
    ("Qabf", structural.qabf, True, True, "Xydeas-Petrovic edge preservation"),
    ("SSIM", ssim_skimage019, True, True, "skimage 0.19 SSIM(F,A) + SSIM(F,B): 7x7 uniform, data_range 2"),
    ("CC", core.cc, True, True, "mean of corr(F,A), corr(F,B)"),
    ("PSNR", psnr_maxf, True, True, "10 log10(max(F)^2 / MSE)"),
    ("MSE", core.mse, False, True, "mean of MSE(F,A), MSE(F,B)"),
]

PROFILE = Profile.from_specs(
    "cddfuse", _SPECS,
    prepare=prepare,
    colour=COLOUR,
    reference=REFERENCE,
    default_metrics=DEFAULT_METRICS,
    conventions=("SSIM, VIF and MI are sums over the two sources (F with IR plus F with VIS): SSIM up to 2, so "
                 "values such as 1.15 are normal; SCD is a sum of two correlations",
                 "MI in nats (natural log); SSIM is scikit-image 0.19's (7x7 uniform window, data_range 2)"),
)
