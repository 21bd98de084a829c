"""A slow, literal re-implementation of the reference CrossFuse Top-K alignment (``top_k_alignment.py`` of
github CidanShi/CrossFuse), written afresh for comparison only: equality of the selection and speed.

It keeps the reference's structure and costs - OpenCV BGR reading, Python lists of ``(name, patch)`` tuples,
``np.mean`` per patch and channel, ``sorted(range(n), key=...)`` for the Top-K, and a joint Nelder-Mead
(``scipy.optimize.minimize``, start 0.5) whose objective re-applies a truncating uint8 LUT (``cv2.LUT``) to every
selected patch at every evaluation, rebuilding the 256-entry table in Python for each patch and channel as the
reference's ``gammaCorrection`` does - with three changes needed to run it on our folders:

* datasets are ``ir/`` + ``vi/`` folders paired by stem, images visited in stem order (the reference used the
  arbitrary ``os.listdir`` order), several external datasets are concatenated in the order given;
* the target statistics come from the training split only (``exclude`` drops test stems);
* a non-positive gamma proposed by Nelder-Mead scores ``inf`` (the reference would raise there).

Not part of the library; ``benchmarks/bench_align.py`` and ``tests/test_align.py`` use it.
"""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
from scipy.optimize import minimize

READ_SECONDS = [0.0]  # time spent in cv2.imread by cut_patches (wall), for the benchmark's decode-free figures


def _pairs(folder: str, exclude: set[str] | None = None) -> list[tuple[str, str, str]]:
    vi_dir, ir_dir = os.path.join(folder, "vi"), os.path.join(folder, "ir")
    ir_by_stem = {os.path.splitext(f)[0]: f for f in os.listdir(ir_dir)}
    out = []
    for name in sorted(os.listdir(vi_dir), key=lambda f: os.path.splitext(f)[0]):
        stem = os.path.splitext(name)[0]
        if stem in ir_by_stem and not (exclude and stem in exclude):
            out.append((stem, os.path.join(vi_dir, name), os.path.join(ir_dir, ir_by_stem[stem])))
    return out


def cut_patches(folder: str, size: int, stride: int, exclude: set[str] | None = None):
    """Lists of ``(id, patch)`` for visible (BGR) and infrared patches, image by image, row by row."""
    dataset = os.path.basename(os.path.normpath(folder))
    vis_list, ir_list = [], []
    for stem, vi_path, ir_path in _pairs(folder, exclude):
        t = time.perf_counter()
        vis = cv2.imread(vi_path)
        ir = cv2.imread(ir_path)
        READ_SECONDS[0] += time.perf_counter() - t
        if vis is None or ir is None:
            continue
        height, width = vis.shape[:2]
        for y in range(0, height - size + 1, stride):
            for x in range(0, width - size + 1, stride):
                pid = f"{dataset}/{stem}:{x}:{y}"
                vis_list.append((pid, vis[y:y + size, x:x + size]))
                ir_list.append((pid, ir[y:y + size, x:x + size]))
    return vis_list, ir_list


def mean_of_patch_means(patches) -> list[float]:
    """Channel (B, G, R) means: the average over patches of each patch's mean."""
    totals = [0, 0, 0]
    for _, p in patches:
        for c in range(3):
            totals[c] += np.mean(p[:, :, c])
    return [t / len(patches) for t in totals]


def patch_distances(patches, ref_means) -> list[float]:
    out = []
    for _, p in patches:
        means = [np.mean(p[:, :, c]) for c in range(3)]
        out.append(sum([abs(m - r) for m, r in zip(means, ref_means)]))
    return out


def truncating_lut(gamma: float) -> np.ndarray:
    inv = 1 / gamma
    return np.array([((i / 255) ** inv) * 255 for i in range(256)], dtype=np.float64).astype(np.uint8)


def gamma_patches(patches, g_b: float, g_g: float, g_r: float):
    """Gamma-correct every patch; like the reference, the 256-entry table is rebuilt for each patch and channel."""
    out = []
    for pid, p in patches:
        channels = [cv2.LUT(p[:, :, c], truncating_lut(g)) for c, g in enumerate((g_b, g_g, g_r))]
        out.append((pid, np.dstack(channels)))
    return out


def nelder_mead_gamma(patches, ref_means) -> np.ndarray:
    def objective(g):
        if min(g) <= 0:
            return float("inf")
        means = mean_of_patch_means(gamma_patches(patches, *g))
        return sum([abs(m - r) for m, r in zip(means, ref_means)])

    return minimize(objective, [0.5, 0.5, 0.5], method="Nelder-Mead").x


def reference_align(target: str, externals: list[str], size: int = 64, stride: int = 200, k: int = 1000,
                    exclude: set[str] | None = None, solve: bool = True) -> dict:
    """Run the reference algorithm; returns ids in selection order, gammas and means in **RGB** order, timings.
    ``solve=False`` stops after the selection."""
    t0 = time.perf_counter()
    target_vis, _ = cut_patches(target, size, stride, exclude)
    ext_vis, ext_ir = [], []
    for folder in externals:
        v, i = cut_patches(folder, size, stride)
        ext_vis += v
        ext_ir += i
    ref_means = mean_of_patch_means(target_vis)
    dist = patch_distances(ext_vis, ref_means)
    order = sorted(range(len(dist)), key=lambda i: dist[i])[:k]
    top_vis = [ext_vis[i] for i in order]
    before = mean_of_patch_means(top_vis)
    t1 = time.perf_counter()
    out = {"ids": [pid for pid, _ in top_vis], "distances": [dist[i] for i in order], "n_candidates": len(ext_vis),
           "target_means": ref_means[::-1], "selected_means_before": before[::-1], "top_vis": top_vis,
           "timings_s": {"select": t1 - t0, "total": t1 - t0}}
    if not solve:
        return out
    g_bgr = nelder_mead_gamma(top_vis, ref_means)
    t2 = time.perf_counter()
    corrected = gamma_patches(top_vis, *g_bgr)
    after = mean_of_patch_means(corrected)
    t3 = time.perf_counter()
    out.update({
        "gamma": list(g_bgr[::-1]),
        "selected_means_after": after[::-1],
        "vis_rgb": np.stack([p[:, :, ::-1] for _, p in corrected]),
        "timings_s": {"select": t1 - t0, "solve": t2 - t1, "apply": t3 - t2, "total": t3 - t0},
    })
    return out
