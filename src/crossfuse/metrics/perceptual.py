"""Human-perception fusion metrics Qcb (Chen & Blum) and Qcv (Chen & Varshney) for the gray profiles.

Both are Z. Liu's MATLAB implementations (``metricChenBlum.m``, ``metricChen.m``) as shipped in the VIFB toolkit
(``metricsQcb.m``, ``metricsQcv.m``); there is no other reference definition, so the canonical profile scores gray
triplets with the same port as the ``vifb`` profile (:mod:`crossfuse.metrics.vifb_quality`, porting notes in
``docs/metrics_vifb.md``): min-max normalisation to 0..255 with MATLAB rounding, frequency-domain CSF filtering on
``freqspace`` grids, ``filter2`` with zero padding, ``blkproc`` blocks zero-padded at the bottom/right.
Degenerate cases (0/0) get defined values, listed in ``docs/metrics.md``.
"""

from __future__ import annotations

import numpy as np

from crossfuse.metrics import vifb_quality
from crossfuse.metrics.core import as_triplet

__all__ = ["qcb", "qcv"]


def qcb(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qcb (Y. Chen & R. S. Blum, Image Vis. Comput. 27 (2009) 1421-1432): mean over pixels of the
    saliency-weighted contrast preservation of each source in F after DoG contrast-sensitivity filtering.
    Higher is better."""
    return vifb_quality.qcb(*as_triplet(f, a, b))


def qcv(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qcv (H. Chen & P. K. Varshney, Inf. Fusion 8 (2007) 193-207): regional (16x16) saliency-weighted mean
    squared difference between each source and F after Mannos-Sakrison CSF filtering. Lower is better."""
    return vifb_quality.qcv(*as_triplet(f, a, b))
