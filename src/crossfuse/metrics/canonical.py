"""The ``canonical`` metric profile: the project's definitions (``../shared/docs/METRICS.md``).

All metrics are computed in float64 on 8-bit gray levels 0-255: a colour image is scored on its BT.601 luma
(OpenCV ``BGR2GRAY``: ``Y = 0.299 R + 0.587 G + 0.114 B``), every image is rounded to integer levels (never
truncated) and 16-bit images are scaled by 1/257 first. Two-source metrics take ``(F, A = IR, B = VIS)``.
"""

from __future__ import annotations

import numpy as np

from crossfuse.io import rgb_to_gray, to_float255
from crossfuse.metrics import core, perceptual, structural
from crossfuse.metrics.registry import Profile

REFERENCE = "crossfuse canonical definitions (METRICS.md; MI in bits, SSIM 11x11 Gaussian L=255 'valid')"
COLOUR = "colour images scored on BT.601 luma Y (OpenCV BGR2GRAY), rounded to 8-bit levels; 16-bit / 257"

DEFAULT_METRICS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")


def to_gray255(img: np.ndarray) -> np.ndarray:
    """One read image (uint8/uint16/float 0-255, gray or RGB) -> rounded float64 gray levels 0-255."""
    x = to_float255(np.asarray(img))
    return np.clip(rgb_to_gray(x), 0.0, 255.0)


def prepare(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``[(F, A, B)]``: one gray float64 triplet (see the module docstring)."""
    return [(to_gray255(fused), to_gray255(ir), to_gray255(vi))]


_SPECS = [
    # name, fn, higher_is_better, needs_sources, description
    ("EN", core.entropy, True, False, "Shannon entropy of F, bits, 256 bins"),
    ("SD", core.std, True, False, "population standard deviation of F"),
    ("SF", core.spatial_frequency, True, False, "spatial frequency sqrt(RF^2 + CF^2)"),
    ("AG", core.average_gradient, True, False, "average gradient, central differences, one-sided at borders"),
    ("EI", core.edge_intensity, True, False, "mean Sobel magnitude, replicated borders"),
    ("MI", core.mutual_information, True, True, "MI(F,A) + MI(F,B), bits, 256x256 joint histograms"),
    ("CE", core.cross_entropy, False, True, "mean of KL(p_A||p_F), KL(p_B||p_F), bits (VIFB cross entropy)"),
    ("SCD", core.scd, True, True, "corr(F-B, A) + corr(F-A, B)"),
    ("CC", core.cc, True, True, "mean of corr(F,A), corr(F,B)"),
    ("VIF", structural.vif, True, True, "pixel VIF(A->F) + VIF(B->F), vifp_mscale, sigma_n^2 = 2"),
    ("Qabf", structural.qabf, True, True, "Xydeas-Petrovic edge preservation (Sobel, conv2 semantics)"),
    ("Nabf", structural.nabf, False, True, "fusion artefacts, Kumar's modified Nabf"),
    ("SSIM", structural.ssim, True, True, "SSIM(F,A) + SSIM(F,B), 11x11 Gaussian sigma 1.5, L=255, 'valid'"),
    ("MS-SSIM", structural.ms_ssim, True, True, "MS-SSIM(F,A) + MS-SSIM(F,B), 5 scales, L=255"),
    ("PSNR", core.psnr, True, True, "10 log10(255^2 / MSE)"),
    ("MSE", core.mse, False, True, "mean of MSE(F,A), MSE(F,B)"),
    ("RMSE", core.rmse, False, True, "sqrt(MSE)"),
    ("Qcb", perceptual.qcb, True, True, "Chen-Blum contrast preservation"),
    ("Qcv", perceptual.qcv, False, True, "Chen-Varshney regional CSF-weighted distortion"),
]

PROFILE = Profile.from_specs(
    "canonical", _SPECS,
    prepare=prepare,
    colour=COLOUR,
    reference=REFERENCE,
    default_metrics=DEFAULT_METRICS,
    conventions=("SSIM, MS-SSIM, VIF and MI are sums over the two sources (F with IR plus F with VIS): SSIM up "
                 "to 2; SCD is a sum of two correlations; CC, MSE and CE are means over the two sources",
                 "MI and EN in bits"),
)
