"""Statistics of a robustness run: means per (condition, method), mean ranks, drops from clean input, and the
paired bootstrap confidence interval of the difference between two methods.

Ranks as in ``PEERS_ROBUST.md``: per condition, each ranked metric (higher is better) ranks the methods on their
means (1 = best; exact ties share the mean of their ranks), and a method's rank is the mean over the metrics. The
means are used at full precision: PEERS_ROBUST.md's ranks break ties of its 3-decimal values the same way (haze@1:
crossfuse-fast and MMDRFuse both show SSIM 0.914 but get different SSIM ranks).
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict

import numpy as np
from scipy.stats import rankdata

BOOTSTRAP_RESAMPLES = 2000


def group_rows(rows: list[dict]) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """``{(condition, method): {image: row}}``."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(dict)
    for r in rows:
        out[(r["condition"], r["method"])][r["image"]] = r
    return out


def summarize(rows: list[dict], metrics: list[str], extra: tuple[str, ...] = ()) -> list[dict]:
    """One row per (condition, method) in first-seen order: ``n`` and the mean of each metric."""
    out = []
    for (cond, method), images in group_rows(rows).items():
        row: dict = {"condition": cond, "method": method, "n": len(images)}
        for m in (*metrics, *extra):
            vals = [v[m] for v in images.values() if m in v and math.isfinite(v[m])]
            row[m] = float(np.mean(vals)) if vals else math.nan
        out.append(row)
    return out


def mean_ranks(summary: list[dict], rank_metrics: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """``{(condition, method): mean rank}`` over ``rank_metrics`` among the methods of each condition (1 = best)."""
    by_cond: dict[str, list[dict]] = defaultdict(list)
    for row in summary:
        by_cond[row["condition"]].append(row)
    ranks: dict[tuple[str, str], float] = {}
    for cond, rows in by_cond.items():
        per_metric = []
        for m in rank_metrics:
            vals = np.array([r[m] if math.isfinite(r[m]) else -math.inf for r in rows])
            per_metric.append(rankdata(-vals, method="average"))
        mean = np.mean(per_metric, axis=0)
        ranks.update({(cond, r["method"]): float(v) for r, v in zip(rows, mean)})
    return ranks


def drops(summary: list[dict], metrics: tuple[str, ...], clean: str = "clean") -> dict[tuple[str, str], dict]:
    """``{(condition, method): {metric: relative change in % from the method's clean-input mean}}`` (negative =
    worse); conditions of a method without a clean row get no entry."""
    base = {r["method"]: r for r in summary if r["condition"] == clean}
    out = {}
    for r in summary:
        ref = base.get(r["method"])
        if ref is None or r["condition"] == clean:
            continue
        out[(r["condition"], r["method"])] = {
            m: 100.0 * (r[m] - ref[m]) / abs(ref[m]) if ref[m] not in (0.0,) and math.isfinite(ref[m]) else math.nan
            for m in metrics}
    return out


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired images and its percentile bootstrap CI (images resampled with replacement,
    the same resample for both methods)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(d.mean()), float(lo), float(hi)


def compare(rows: list[dict], reference: str, metrics: tuple[str, ...]) -> list[dict]:
    """Paired bootstrap of ``reference`` minus every other method, per condition and metric, on the images both
    scored. Seeded from (condition, methods, metric), so the numbers are reproducible."""
    groups = group_rows(rows)
    out = []
    for (cond, method), imgs in groups.items():
        ref = groups.get((cond, reference))
        if method == reference or ref is None:
            continue
        common = sorted(set(ref) & set(imgs))
        for m in metrics:
            seed = zlib.crc32(f"{cond}|{reference}|{method}|{m}".encode())
            mean, lo, hi = paired_bootstrap(np.array([ref[s][m] for s in common]),
                                            np.array([imgs[s][m] for s in common]), seed=seed)
            out.append({"condition": cond, "a": reference, "b": method, "metric": m, "n": len(common),
                        "diff": mean, "ci_low": lo, "ci_high": hi})
    return out
