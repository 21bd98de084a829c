"""Scoring arrays (:func:`compute_metrics`) and folders of image triplets (:func:`evaluate`).

``compute_metrics`` is what the trainer and ``crossfuse fuse`` call on arrays; ``evaluate`` pairs ``ir/``, ``vi/``
and ``fused/`` folders by file stem, scores each triplet (optionally in worker processes) and returns an
:class:`EvalResult` holding per-image rows, mean and standard deviation per metric, and the skipped triplets with
their reasons. ``crossfuse eval`` is a thin shell over ``evaluate``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossfuse import io as cio
from crossfuse.io import ImageError, PairingError, check_same_size, match_folders, read_image, write_bytes_atomic
from crossfuse.metrics.registry import Profile, conventions, get_profile

__all__ = ["EvalResult", "compute_metrics", "evaluate", "resolve_metrics"]


# --------------------------------------------------------------------------------------------------- arrays


def _profile(profile: str | Profile) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def resolve_metrics(profile: str | Profile, metrics: list[str] | tuple[str, ...] | str | None = None) -> list[str]:
    """Metric names of ``profile`` in the order asked (``None`` = the profile's defaults; a string may be
    comma-separated). Names match exactly, else case-insensitively; an unknown name raises :class:`KeyError`
    listing the valid ones."""
    prof = _profile(profile)
    if metrics is None:
        return list(prof.default_metrics or prof.metrics)
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",")]
    folded = {name.lower(): name for name in prof.metrics}
    out: list[str] = []
    for raw in metrics:
        name = raw.strip()
        if not name:
            continue
        key = name if name in prof.metrics else folded.get(name.lower())
        if key is None:
            raise KeyError(f"unknown metric {name!r} in profile {prof.name!r}; valid metrics: "
                           f"{', '.join(prof.metrics)}")
        if key not in out:
            out.append(key)
    if not out:
        raise KeyError(f"no metric names given; valid metrics for profile {prof.name!r}: {', '.join(prof.metrics)}")
    return out


def _check_image(x: np.ndarray, role: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 3 and arr.shape[2] in (1, 4):
        arr = arr[:, :, 0] if arr.shape[2] == 1 else arr[:, :, :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"{role} image must be (H, W) or (H, W, 3), got shape {arr.shape}")
    if arr.dtype.kind not in "uif" or arr.dtype == np.bool_:
        raise ValueError(f"{role} image has unsupported dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{role} image contains NaN or infinite values")
    if arr.dtype.kind in "fi" or arr.dtype.itemsize > 2:  # uint8 / uint16 are in range by construction
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -0.5 or hi > 255.5:
            raise ValueError(f"{role} image has values from {lo:g} to {hi:g}; metrics take uint8, uint16 or "
                             "float images on the 0-255 scale")
    return arr


def compute_metrics(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray, profile: str | Profile = "cddfuse",
                    metrics: list[str] | tuple[str, ...] | str | None = None) -> dict[str, float]:
    """Score one triplet of arrays; returns ``{metric: value}`` in the order asked.

    Arrays as :func:`crossfuse.io.read_image` returns them: uint8, uint16 or float on the 0-255 scale (other
    values are refused with a :class:`ValueError` naming the range: they would score as garbage or exhaust memory
    in histogram metrics), ``(H, W)`` or ``(H, W, 3)`` RGB, all of one height and width. The profile's
    ``prepare`` turns them into float64 gray triplets (or per-channel triplets); a metric's value is the mean over
    those.
    """
    prof = _profile(profile)
    names = resolve_metrics(prof, metrics)
    arrays = {"infrared": _check_image(ir, "infrared"), "visible": _check_image(vi, "visible"),
              "fused": _check_image(fused, "fused")}
    sizes = {k: v.shape[:2] for k, v in arrays.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{k} {s[1]}x{s[0]}" for k, s in sizes.items())
        raise ValueError(f"size mismatch: {desc} (W x H)")
    triplets = prof.prepare(arrays["infrared"], arrays["visible"], arrays["fused"])
    out: dict[str, float] = {}
    for name in names:
        spec = prof.metrics[name]
        vals = [spec.fn(f, a, b) if spec.needs_sources else spec.fn(f) for f, a, b in triplets]
        out[name] = float(np.mean(vals))
    return out


# --------------------------------------------------------------------------------------------------- results


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population std; with infinities (PSNR of identical images) the mean is the infinity and the std
    0 when all values are equal, else inf -- never NaN from arithmetic on infinities."""
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=np.float64)
    if np.all(np.isfinite(arr)):
        return float(arr.mean()), float(arr.std())
    if np.all(arr == arr[0]):
        return float(arr[0]), 0.0
    pos, neg = bool(np.any(arr == math.inf)), bool(np.any(arr == -math.inf))
    mean = math.inf if pos and not neg else -math.inf if neg and not pos else math.nan
    return mean, math.inf


def _json_number(v: float) -> float | str:
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


@dataclass
class EvalResult:
    """Per-image metric values of one evaluation, the summary, and what was skipped (with reasons)."""

    profile: str
    reference: str
    colour: str
    metrics: list[str]
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    conventions: list[str] = field(default_factory=list)  # how to read the numbers (metrics.registry)

    @property
    def n(self) -> int:
        return len(self.rows)

    def values(self, metric: str) -> list[float]:
        return [vals[metric] for _, vals in self.rows]

    @property
    def mean(self) -> dict[str, float]:
        return {m: _mean_std(self.values(m))[0] for m in self.metrics}

    @property
    def std(self) -> dict[str, float]:
        return {m: _mean_std(self.values(m))[1] for m in self.metrics}

    def summary(self) -> dict:
        """JSON-ready summary (non-finite numbers as the strings ``"inf"``, ``"-inf"``, ``"nan"``)."""
        return {
            "profile": self.profile,
            "reference": self.reference,
            "colour": self.colour,
            "conventions": list(self.conventions),
            "folders": self.folders,
            "metrics": list(self.metrics),
            "n": self.n,
            "skipped": [{"image": name, "reason": reason} for name, reason in self.skipped],
            "mean": {m: _json_number(v) for m, v in self.mean.items()},
            "std": {m: _json_number(v) for m, v in self.std.items()},
        }

    def csv_text(self) -> str:
        rows = ({"image": name, **{m: float(vals[m]) for m in self.metrics}} for name, vals in self.rows)
        return cio.csv_text(rows, ["image", *self.metrics])

    def to_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Per-image CSV (header ``image,<metric>,...``), written atomically."""
        return write_bytes_atomic(path, self.csv_text(), overwrite=overwrite)

    def to_json(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """The :meth:`summary` as JSON, written atomically."""
        return write_bytes_atomic(path, json.dumps(self.summary(), indent=2) + "\n", overwrite=overwrite)

    def table(self) -> str:
        """A readable summary table naming the profile, its reference and the colour handling."""
        prof = get_profile(self.profile)
        lines = [f"profile: {self.profile} -- {self.reference}", f"colour:  {self.colour}",
                 f"images:  {self.n} evaluated, {len(self.skipped)} skipped", ""]
        width = max([len(m) for m in self.metrics] + [6])
        lines.append(f"{'metric':<{width}}  {'mean':>12}  {'std':>12}  better")
        mean, sd = self.mean, self.std
        for m in self.metrics:
            better = "higher" if prof.metrics[m].higher_is_better else "lower"
            lines.append(f"{m:<{width}}  {mean[m]:>12.6g}  {sd[m]:>12.6g}  {better}")
        lines += ["", "notes:"] + [f"  {note}" for note in self.conventions]
        if self.skipped:
            lines += ["", "skipped:"] + [f"  {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- folders


def _score_item(item: tuple[str, dict[str, Path], str, list[str]]) -> tuple[str, dict[str, float] | None, str]:
    """Worker: read one triplet and score it; errors become a reason string naming the files."""
    stem, paths, profile, names = item
    try:
        arrays = {role: (paths[role], read_image(paths[role], keep_channels=True)) for role in ("ir", "vi", "fused")}
        check_same_size(arrays)
        vals = compute_metrics(arrays["ir"][1], arrays["vi"][1], arrays["fused"][1], profile, names)
        return stem, vals, ""
    except (ImageError, ValueError, OSError) as exc:
        return stem, None, str(exc)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def evaluate(ir_dir: str | os.PathLike, vi_dir: str | os.PathLike, fused_dir: str | os.PathLike,
             profile: str = "cddfuse", metrics: list[str] | tuple[str, ...] | str | None = None, jobs: int = 1,
             progress: bool = True, shard: tuple[int, int] | None = None) -> EvalResult:
    """Score every triplet of ``ir_dir``, ``vi_dir`` and ``fused_dir`` matched by file stem (extensions may differ).

    Unpaired files, unreadable images and size mismatches are skipped with a reason (``result.skipped``); a
    missing folder or folders without a single complete triplet raise :class:`crossfuse.io.PairingError`, an
    unknown profile or metric :class:`KeyError`. ``jobs > 1`` scores images in that many worker processes.
    ``shard=(rank, world)`` scores only every ``world``-th triplet from ``rank`` (:mod:`crossfuse.shard`).
    """
    prof = get_profile(profile)
    names = resolve_metrics(prof, metrics)
    folders = {"ir": str(ir_dir), "vi": str(vi_dir), "fused": str(fused_dir)}
    matched = match_folders(folders)
    result = EvalResult(profile=prof.name, reference=prof.reference, colour=prof.colour, metrics=names,
                        folders=folders, conventions=conventions(prof))
    for problem in matched.problems:
        stem, _, reason = problem.partition(": ")
        result.skipped.append((stem, reason or problem))
    if not matched.items:
        raise PairingError(f"no complete ir/vi/fused triplets in {', '.join(folders.values())} "
                           f"({len(matched.problems)} unpaired files)")
    work = [(stem, paths, prof.name, names) for stem, paths in matched.items]
    if shard is not None:
        work = work[shard[0]::shard[1]]
    from tqdm import tqdm

    bar = tqdm(total=len(work), desc=f"eval [{prof.name}]", unit="img", disable=not progress)
    try:
        if jobs <= 1 or len(work) == 1:
            outcomes = []
            for item in work:
                outcomes.append(_score_item(item))
                bar.update()
        else:
            # "spawn": forking a process that already runs OpenCV/BLAS threads can deadlock the children
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=ctx,
                                     initializer=_init_worker) as pool:
                outcomes = []
                for out in pool.map(_score_item, work, chunksize=max(1, len(work) // (8 * jobs))):
                    outcomes.append(out)
                    bar.update()
    finally:
        bar.close()
    for stem, vals, reason in outcomes:
        if vals is None:
            result.skipped.append((stem, reason))
        else:
            result.rows.append((stem, vals))
    result.skipped.sort()
    return result
