"""Top-K Selective Vision Alignment (CrossFuse, Shi et al. TCSVT 2025, section III-B; ``METHOD.md`` section 1).

Pipeline (:func:`align`): cut target and external datasets into grid patches (:mod:`crossfuse.patches`), compute the
target's per-channel statistics on its *training split*, score every external patch by a distance to them, keep the
K nearest, fit one gamma per RGB channel so the kept set's channel means equal the target's, apply it, convert the
visible patches to Y. :func:`save_alignment` writes ``patches.npz``, ``report.json`` and ``histograms.png``.

Reproduces the reference script ``top_k_alignment.py`` (github CidanShi/CrossFuse) with these documented choices:

* Candidate order: external datasets in the order given, images by stem, then patch ``y``, then ``x``. Selection is
  a *stable* sort by distance, so ties keep candidate order - the reference's ``sorted(range(n), key=d)`` on the
  same candidate list. With the ``mean`` distance the arithmetic is the reference's, operation for operation
  (per-patch means ``sum / P**2``, target mean = mean of patch means, ``|dB| + |dG| + |dR|`` summed in that order),
  so the distances are bit-identical and so is the selection.
* Gamma: ``out = 255 (in / 255) ** (1 / gamma_c)``. Default solver ``"exact"``: per channel, Brent's method on the
  continuous mean (monotone in gamma), then - if the *rounded* output's mean is more than 0.5 grey levels off -
  bisection on the rounded-LUT mean (monotone non-decreasing in gamma; each step moves it by at most one level, so
  0.5 is always reachable unless the gamma bounds bind). Applied as ``np.round`` of the float result -> uint8.
  Solver ``"paper"``: the reference's joint Nelder-Mead from (0.5, 0.5, 0.5) on the L1 error of the means with a
  *truncating* uint8 LUT, applied with that truncating LUT.
* Statistics from the target's training split only (the reference leaks the test split into them).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import brentq, minimize

from crossfuse.io import luma_u8, read_stem_list, temp_beside
from crossfuse.patches import (
    Candidates,
    PairedDataset,
    channel_histograms,
    coverage_histogram,
    extract_candidates,
    load_pairs,
)

GAMMA_BOUNDS = (0.05, 20.0)
DISTANCES = ("mean", "meanstd", "hist")
SOLVERS = ("exact", "paper")
HIST_BINS = 32


class GammaBoundWarning(UserWarning):
    """A fitted gamma hit the bounds: the target mean is out of reach of a gamma curve on this patch set."""


# ------------------------------------------------------------------------------------------------ statistics


def target_means(cands: Candidates) -> np.ndarray:
    """Mean over patches of each patch's channel mean (RGB, 0-255), as the reference ``compute_channel_means``."""
    if len(cands) == 0:
        raise ValueError("no target patches")
    return cands.sums.sum(axis=0) / float(cands.patch * cands.patch) / len(cands)


def distances(external: Candidates, target: Candidates, kind: str = "mean") -> np.ndarray:
    """Distance of every external patch to the target statistics (smaller = closer).

    * ``mean``: ``sum_c |m_c - mu_c|`` over channel means (the paper's L1), summed in B, G, R order as the reference.
    * ``meanstd``: ``sum_c |m_c - mu_c| + |s_c - sigma_c|`` with ``s`` the patch standard deviation and ``sigma`` the
      mean of the target patches' standard deviations.
    * ``hist``: ``sum_c TV(h_c, H_c)`` - total variation (half L1, 0-1) between the patch's normalised 32-bin
      channel histogram and the mean of the target patches' histograms.
    """
    if kind == "mean":
        ad = np.abs(external.means - target_means(target))
        return (ad[:, 2] + ad[:, 1]) + ad[:, 0]
    if kind == "meanstd":
        mu, sigma = target_means(target), target.stds.mean(axis=0)
        return np.abs(external.means - mu).sum(axis=1) + np.abs(external.stds - sigma).sum(axis=1)
    if kind == "hist":
        ref = channel_histograms(target, HIST_BINS).mean(axis=0)
        return 0.5 * np.abs(channel_histograms(external, HIST_BINS) - ref).sum(axis=(1, 2))
    raise KeyError(f"unknown distance {kind!r}; valid names: {', '.join(DISTANCES)}")


def select_top_k(d: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest distances, ties in candidate order (stable sort)."""
    return np.argsort(d, kind="stable")[:k]


def resolve_k(k: int | None, k_fraction: float | None, n: int, counts: dict[str, int]) -> int:
    """K from a count or a fraction of the ``n`` candidates (``max(1, round(f n))``); errors name the counts."""
    if k is not None and k_fraction is not None:
        raise ValueError("give K as a count or as a fraction, not both")
    if k_fraction is not None:
        if not 0 < k_fraction <= 1:
            raise ValueError(f"K fraction must be in (0, 1], got {k_fraction}")
        k = max(1, int(round(k_fraction * n)))
    if k is None or k < 1:
        raise ValueError(f"K must be a positive count, got {k}")
    if k > n:
        per = ", ".join(f"{name}: {c}" for name, c in counts.items())
        raise ValueError(f"K={k} is larger than the {n} candidate patches ({per}); lower K or the stride")
    return int(k)


# ------------------------------------------------------------------------------------------------ gamma


def gamma_lut(gamma: float, rounding: str = "round") -> np.ndarray:
    """uint8 LUT of ``255 (v / 255) ** (1 / gamma)``; ``rounding`` ``"round"`` (np.round) or ``"truncate"`` (the
    reference's ``np.array(table, np.uint8)``, values computed with Python floats as it does)."""
    if rounding == "truncate":
        inv = 1 / gamma
        return np.array([((i / 255) ** inv) * 255 for i in range(256)], dtype=np.float64).astype(np.uint8)
    v = 255.0 * (np.arange(256) / 255.0) ** (1.0 / gamma)
    return np.clip(np.round(v), 0, 255).astype(np.uint8)


def pixel_histograms(vis: np.ndarray) -> np.ndarray:
    """Counts of each value 0-255 per channel of ``(..., 3)`` uint8 pixels: ``(3, 256)`` int64."""
    flat = np.ascontiguousarray(vis).reshape(-1, 1, 3)
    out = np.zeros((3, 256), dtype=np.int64)
    for start in range(0, flat.shape[0], 1 << 22):  # cv2.calcHist counts in float32: exact below 2**24 per chunk
        chunk = flat[start:start + (1 << 22)]
        for c in range(3):
            out[c] += cv2.calcHist([chunk], [c], None, [256], [0, 256]).ravel().astype(np.int64)
    return out


def _mean_from_hist(hist: np.ndarray, lut: np.ndarray) -> float:
    return float(hist @ lut.astype(np.int64)) / float(hist.sum())


def solve_gamma_channel(hist: np.ndarray, target: float, bounds: tuple[float, float] = GAMMA_BOUNDS,
                        tol: float = 0.5) -> tuple[float, bool]:
    """Gamma of one channel so the rounded corrected mean is within ``tol`` of ``target``; ``(gamma, bound_hit)``.

    Brent's method on the continuous mean over ``log gamma``, then bisection on the rounded-LUT mean (a
    non-decreasing step function of gamma, each step at most one grey level); the gamma whose rounded mean is closest
    to the target among the continuous root and the two ends of the quantised crossing is returned.
    """
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    v = np.arange(256) / 255.0
    w = hist / hist.sum()

    def cont(lg: float) -> float:
        return float(w @ (255.0 * v ** math.exp(-lg))) - target

    def quant(lg: float) -> float:
        return _mean_from_hist(hist, gamma_lut(math.exp(lg))) - target

    f_lo, f_hi = cont(lo), cont(hi)
    if f_lo > 0 or f_hi < 0:  # out of reach: the nearer bound
        return (bounds[0] if f_lo > 0 else bounds[1]), True
    lg = lo if f_lo == 0 else hi if f_hi == 0 else brentq(cont, lo, hi, xtol=1e-12, rtol=1e-14, maxiter=200)
    best, err = lg, abs(quant(lg))
    a, b = lo, hi  # bisection on the rounded mean (non-decreasing in gamma): quant(a) <= 0 < quant(b)
    if quant(a) <= 0 < quant(b):
        for _ in range(200):
            m = 0.5 * (a + b)
            if quant(m) <= 0:
                a = m
            else:
                b = m
            if b - a < 1e-12:
                break
        for cand in (a, b):  # the continuous root unless a bracket end of the quantised crossing is closer
            if abs(quant(cand)) < err:
                best, err = cand, abs(quant(cand))
    return (bounds[0] if best == lo else bounds[1] if best == hi else math.exp(best)), err > tol


def solve_gamma_exact(hist: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """Per-channel exact gammas (RGB) for pixel histograms ``(3, 256)`` and target means ``(3,)``."""
    out = [solve_gamma_channel(hist[c], float(target[c])) for c in range(3)]
    return np.array([g for g, _ in out]), [b for _, b in out]


def paper_loss(gammas_bgr: np.ndarray, hist: np.ndarray, target: np.ndarray, patch: int, n: int) -> float:
    """The reference's Nelder-Mead objective for gammas in its B, G, R order: ``sum |mean - mu|`` (B, G, R order)
    with the truncating LUT; the means are the reference's (sum of patch means ``T / P**2``, divided by ``n``).
    A non-positive gamma gives ``inf`` (the reference would fail there)."""
    loss = 0
    for j, c in enumerate((2, 1, 0)):
        g = float(gammas_bgr[j])
        if not g > 0:
            return math.inf
        total = int(hist[c] @ gamma_lut(g, "truncate").astype(np.int64))
        loss += abs(total / float(patch * patch) / n - float(target[c]))
    return float(loss)


def solve_gamma_paper(hist: np.ndarray, target: np.ndarray, patch: int, n: int) -> tuple[np.ndarray, dict]:
    """The reference solver: ``scipy.optimize.minimize(method="Nelder-Mead")`` from ``[0.5, 0.5, 0.5]`` (BGR);
    returns RGB gammas and the optimiser's summary."""
    res = minimize(paper_loss, np.array([0.5, 0.5, 0.5]), args=(hist, target, patch, n), method="Nelder-Mead")
    info = {"nit": int(res.nit), "nfev": int(res.nfev), "loss": float(res.fun), "success": bool(res.success)}
    return np.asarray(res.x, dtype=np.float64)[::-1].copy(), info


def apply_gamma(vis: np.ndarray, gamma: np.ndarray, rounding: str = "round") -> np.ndarray:
    """Apply per-channel (RGB) gammas to ``(..., 3)`` uint8 pixels through uint8 LUTs (``cv2.LUT``)."""
    if vis.size == 0:
        return vis.copy()
    lut = np.stack([gamma_lut(float(g), rounding) for g in gamma], axis=-1).reshape(256, 1, 3)
    flat = np.ascontiguousarray(vis).reshape(-1, vis.shape[-2], 3)
    return cv2.LUT(flat, lut).reshape(vis.shape)


# ------------------------------------------------------------------------------------------------ pipeline


@dataclass
class AlignResult:
    """Aligned external patches (selection order) and the report; ``target``/``external`` keep the candidates."""

    vis_rgb: np.ndarray  # (K, P, P, 3) uint8, gamma-corrected
    vis_y: np.ndarray  # (K, P, P) uint8
    ir: np.ndarray  # (K, P, P) uint8
    ids: list[str]
    gamma: np.ndarray  # (3,) RGB
    report: dict
    target: Candidates = field(repr=False)
    external: Candidates = field(repr=False)
    selection: np.ndarray = field(repr=False)


def _colour_check(ds: PairedDataset) -> None:
    gray = [im.stem for im in ds.images if im.gray]
    if len(gray) == len(ds.images):
        raise ValueError(f"{ds.folder}: no colour images in vi/ (all {len(gray)} are gray); colour alignment needs "
                         "RGB visible images")
    if gray:
        warnings.warn(f"{ds.folder}: {len(gray)} gray visible image(s) used as 3 equal channels: "
                      + ", ".join(gray[:5]), stacklevel=3)


def _describe_list(stems) -> str | None:
    if stems is None:
        return None
    return f"{len(stems)} stems given" if isinstance(stems, (list, tuple)) else str(stems)


def _as_dataset(d, **kw) -> PairedDataset:
    return d if isinstance(d, PairedDataset) else load_pairs(d, **kw)


def _load_for_align(target: str | os.PathLike | PairedDataset, externals, patch: int, stride: int, distance: str,
                    solver: str, split, exclude, skip_unpaired: bool) -> tuple[PairedDataset, list[PairedDataset]]:
    """The argument checks of :func:`align` and its datasets (target filtered by ``split`` / ``exclude``)."""
    if distance not in DISTANCES:
        raise KeyError(f"unknown distance {distance!r}; valid names: {', '.join(DISTANCES)}")
    if solver not in SOLVERS:
        raise KeyError(f"unknown solver {solver!r}; valid names: {', '.join(SOLVERS)}")
    if isinstance(externals, (str, os.PathLike, PairedDataset)):
        externals = [externals]
    if not externals:
        raise ValueError("give at least one external dataset")
    if not (isinstance(patch, int) and isinstance(stride, int) and patch >= 1 and stride >= 1):
        raise ValueError(f"patch and stride must be positive integers, got patch={patch!r}, stride={stride!r}")
    if isinstance(target, PairedDataset) and (split is not None or exclude is not None):
        raise ValueError("split/exclude apply when the target is read from a folder; filter the loaded dataset "
                         "with load_pairs(include=..., exclude=...) instead")

    def as_list(s: list[str] | str | os.PathLike | None) -> list[str] | None:
        return None if s is None else list(s) if isinstance(s, (list, tuple)) else read_stem_list(s)

    tgt = _as_dataset(target, include=as_list(split), exclude=as_list(exclude), skip_unpaired=skip_unpaired,
                      lazy_ir=True)
    exts = [_as_dataset(e, skip_unpaired=skip_unpaired, lazy_ir=True) for e in externals]
    names = [e.name for e in exts]
    if len(set(names)) != len(names):
        raise ValueError(f"external datasets must have distinct folder names, got {names}")
    for ds in (tgt, *exts):
        _colour_check(ds)
    return tgt, exts


def _solve(hist: np.ndarray, mu: np.ndarray, solver: str, patch: int, kk: int) -> tuple[np.ndarray, str, dict]:
    """``(gamma, rounding, solver_info)`` from the chosen solver (a bound hit of the exact one is warned about)."""
    if solver != "exact":
        gamma, solver_info = solve_gamma_paper(hist, mu, patch, kk)
        return gamma, "truncate", solver_info
    gamma, bound_hit = solve_gamma_exact(hist, mu)
    if any(bound_hit):
        ch = [c for c, b in zip("RGB", bound_hit) if b]
        warnings.warn(f"gamma for channel(s) {', '.join(ch)} hit the bounds {GAMMA_BOUNDS}: the target mean is "
                      "out of reach of a gamma curve on the selected patches", GammaBoundWarning, stacklevel=3)
    return gamma, "round", {"bound_hit": dict(zip("RGB", bound_hit))}


def align(target: str | os.PathLike | PairedDataset, externals, patch: int = 64, stride: int = 200,
          k: int | None = 1000, *, k_fraction: float | None = None, distance: str = "mean", solver: str = "exact",
          split: list[str] | str | os.PathLike | None = None, exclude: list[str] | str | os.PathLike | None = None,
          skip_unpaired: bool = False) -> AlignResult:
    """Select the K external patches nearest to the target's colour statistics and gamma-align them.

    ``target`` / ``externals`` are dataset folders (``ir/`` + ``vi/``) or loaded :class:`PairedDataset`s;
    ``split`` (stems or a manifest file) restricts the target to its training split, ``exclude`` drops target stems
    (e.g. a test list). ``k`` is a count, or pass ``k=None, k_fraction=f``. See the module docstring for the order
    of candidates, the tie rule and the solvers.
    """
    t0 = time.perf_counter()
    tgt, exts = _load_for_align(target, externals, patch, stride, distance, solver, split, exclude, skip_unpaired)
    names = [e.name for e in exts]
    t1 = time.perf_counter()
    squares = distance == "meanstd"
    tc = extract_candidates(tgt.images, patch, stride, squares)
    ec = extract_candidates([im for e in exts for im in e.images], patch, stride, squares)
    ds_of = ec.dataset_of()
    counts = {e.name: int((ds_of == e.name).sum()) for e in exts}
    if len(tc) == 0:
        raise ValueError(f"{tgt.folder}: no target patches")
    kk = resolve_k(k, k_fraction, len(ec), counts)
    t2 = time.perf_counter()
    d = distances(ec, tc, distance)
    sel = select_top_k(d, kk)
    t3 = time.perf_counter()
    vis, ir = ec.pixels(sel)
    mu = target_means(tc)
    hist = pixel_histograms(vis)
    gamma, rounding, solver_info = _solve(hist, mu, solver, patch, kk)
    t4 = time.perf_counter()
    vis_after = apply_gamma(vis, gamma, rounding)
    vis_y = luma_u8(vis_after)
    t5 = time.perf_counter()
    luts = np.stack([gamma_lut(float(g), rounding) for g in gamma]).astype(np.int64)
    after = (hist * luts).sum(axis=1) / float(patch * patch) / kk  # mean of the corrected patches' means
    ids = ec.ids(sel)
    report = {
        "settings": {"patch": patch, "stride": stride, "k": k, "k_fraction": k_fraction, "distance": distance,
                     "solver": solver, "rounding": rounding, "gamma_bounds": list(GAMMA_BOUNDS),
                     "target": str(tgt.folder), "externals": [str(e.folder) for e in exts],
                     "split": _describe_list(split), "exclude": _describe_list(exclude),
                     "order": "stable sort by distance; ties in candidate order (dataset order, stem, y, x)"},
        "distance": distance,
        "solver": solver,
        "solver_info": solver_info,
        "k": kk,
        "n_candidates": len(ec),
        "n_target_patches": len(tc),
        "n_target_images": len(tgt.images),
        "candidates_per_dataset": counts,
        "selected_per_dataset": {n: int(sum(i.startswith(n + "/") for i in ids)) for n in names},
        "target_means": mu.tolist(),
        "external_means_before": (ec.means.mean(axis=0)).tolist(),
        "selected_means_before": (ec.means[sel].mean(axis=0)).tolist(),
        "selected_means_after": after.tolist(),
        "mean_error_after": (after - mu).tolist(),
        "gamma": gamma.tolist(),
        "distance_range": [float(d[sel].min()), float(d[sel].max())] if kk else None,
        "skipped_unpaired": {ds.name: ds.skipped for ds in (tgt, *exts) if ds.skipped},
        "timings_s": {"load": t1 - t0, "patches": t2 - t1, "select": t3 - t2, "solve": t4 - t3,
                      "apply": t5 - t4, "total": t5 - t0},
        "selected": ids,
    }
    return AlignResult(vis_after, vis_y, ir, ids, gamma, report, tc, ec, sel)


# ------------------------------------------------------------------------------------------------ output


def plot_histograms(result: AlignResult, path: str | os.PathLike) -> None:
    """Three channel histograms (target, external before, selected after) as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {"target (train split)": coverage_histogram(result.target),
              "external, before": coverage_histogram(result.external),
              "selected, after gamma": pixel_histograms(result.vis_rgb)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    for c, (ax, name) in enumerate(zip(axes, ("R", "G", "B"))):
        for (label, h), style in zip(curves.items(), ("-", "--", "-")):
            coarse = h[c].reshape(64, 4).sum(axis=1)  # 64 bins of 4 levels: a gamma curve leaves combs at 1 level
            ax.step(np.arange(0, 256, 4), coarse / max(1, coarse.sum()), style, where="post", label=label, lw=1.2)
        ax.set_title(f"{name} (gamma {result.gamma[c]:.3f})")
        ax.set_xlabel("value")
        ax.set_xlim(0, 255)
    axes[0].set_ylabel("fraction of pixels (bins of 4 levels)")
    axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_alignment(result: AlignResult, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``patches.npz``, ``report.json`` and ``histograms.png`` into ``out_dir`` atomically.

    Everything is written into a temporary sibling folder that is renamed to ``out_dir`` at the end, so an error
    leaves nothing half-written. An existing non-empty ``out_dir`` is refused unless ``overwrite``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: folder exists and is not empty (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(out, folder=True)
    try:
        np.savez(tmp / "patches.npz", vis_y=result.vis_y, ir=result.ir, vis_rgb=result.vis_rgb,
                 ids=np.array(result.ids, dtype=str), gamma=result.gamma)
        t = time.perf_counter()
        plot_histograms(result, tmp / "histograms.png")
        report = dict(result.report)
        report["timings_s"] = dict(report["timings_s"], plot=time.perf_counter() - t)
        with open(tmp / "report.json", "w") as fh:
            json.dump(report, fh, indent=1)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
