"""Metric registry: one explicit table of profiles, each a table of metrics.

A *profile* names which reference a number reproduces (``canonical``, ``vifb``, ``cddfuse``). Each profile module
exposes one ``PROFILE`` object; this file lists those modules explicitly (no folder scanning) and imports a profile
only when it is first asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# fn(F) for no-reference metrics, fn(F, A, B) for metrics that need the sources (A = IR, B = VIS),
# on float64 arrays on the 0-255 scale: 2-D, or (H, W, 3) where a profile's prepare passes whole colour
# images (vifb, whose metrics apply the toolkit's own per-metric colour rule).
MetricFn = Callable[..., float]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: MetricFn
    higher_is_better: bool
    needs_sources: bool
    description: str = ""


@dataclass(frozen=True)
class Profile:
    """A set of metric definitions plus how images are turned into the 2-D arrays they score.

    ``prepare(ir, vi, fused)`` receives the arrays as read by :func:`crossfuse.io.read_image` (uint8/uint16,
    ``(H, W)`` or ``(H, W, 3)`` RGB) and returns a list of ``(F, A, B)`` float64 triplets; a metric's value is the
    mean over the list (one triplet for gray profiles, one per RGB channel where a reference scores colour
    channel by channel). ``colour`` describes that handling in words, for reports; ``conventions`` are the
    sentences a reader of the numbers needs (which metrics are sums over the two sources, units), printed under
    every table of this profile and stored in its JSON summaries together with :data:`SUMMARY_CONVENTIONS`.
    """

    name: str
    metrics: dict[str, MetricSpec]
    prepare: Callable[[np.ndarray, np.ndarray, np.ndarray], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]
    colour: str
    reference: str
    default_metrics: tuple[str, ...] = field(default=())
    conventions: tuple[str, ...] = field(default=())

    @classmethod
    def from_specs(cls, name: str, specs: list[tuple[str, MetricFn, bool, bool, str]], **kw) -> Profile:
        """A profile from rows ``(name, fn, higher_is_better, needs_sources, description)``; ``kw``: the other
        fields."""
        return cls(name=name, metrics={n: MetricSpec(n, fn, hib, src, d) for n, fn, hib, src, d in specs}, **kw)


# How summaries over images are formed (crossfuse.metrics.evaluate), the same for every profile.
SUMMARY_CONVENTIONS = ("mean and std over images; std is the population standard deviation (ddof = 0), so one image "
                       "shows std 0",)


_PROFILE_MODULES = {
    "canonical": "crossfuse.metrics.canonical",
    "vifb": "crossfuse.metrics.vifb",
    "cddfuse": "crossfuse.metrics.cddfuse",
}


def conventions(profile: str | Profile) -> list[str]:
    """The reading notes of a profile's numbers: its own conventions, then :data:`SUMMARY_CONVENTIONS`."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return [*prof.conventions, *SUMMARY_CONVENTIONS]


def list_profiles() -> list[str]:
    return list(_PROFILE_MODULES)


def get_profile(name: str) -> Profile:
    if name not in _PROFILE_MODULES:
        raise KeyError(f"unknown metric profile {name!r}; valid profiles: {', '.join(_PROFILE_MODULES)}")
    try:
        module = importlib.import_module(_PROFILE_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name != _PROFILE_MODULES[name]:
            raise
        raise KeyError(f"metric profile {name!r} is not available in this installation") from None
    return module.PROFILE


def get_metric(name: str, profile: str = "canonical") -> MetricSpec:
    prof = get_profile(profile)
    if name not in prof.metrics:
        raise KeyError(f"unknown metric {name!r} in profile {profile!r}; valid metrics: {', '.join(prof.metrics)}")
    return prof.metrics[name]


def list_metrics(profile: str = "canonical") -> list[str]:
    return list(get_profile(profile).metrics)
