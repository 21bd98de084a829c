"""Fusion metrics with named reference profiles (``canonical``, ``vifb``, ``cddfuse``).

* :func:`compute_metrics` scores one ``(ir, vi, fused)`` triplet of arrays;
* :func:`evaluate` scores folders of triplets matched by file stem and returns an :class:`EvalResult`;
* the registry (:func:`get_profile`, :func:`get_metric`, :func:`list_metrics`, :func:`list_profiles`) lists what
  each profile computes; the metric functions themselves live in :mod:`~crossfuse.metrics.core`,
  :mod:`~crossfuse.metrics.structural` and :mod:`~crossfuse.metrics.perceptual`.

Importing this package loads NumPy, OpenCV and SciPy only (no torch); profiles are imported when first used.
"""

from __future__ import annotations

from crossfuse.metrics.evaluate import EvalResult, compute_metrics, evaluate, resolve_metrics
from crossfuse.metrics.registry import MetricSpec, Profile, get_metric, get_profile, list_metrics, list_profiles

__all__ = [
    "EvalResult", "MetricSpec", "Profile", "compute_metrics", "evaluate", "get_metric", "get_profile",
    "list_metrics", "list_profiles", "resolve_metrics",
]
