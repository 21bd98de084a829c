"""An independent check of ``crossfuse check-align``: a second, differently-principled registration (intensity
mutual information) on the unwarped dataset pairs.

``check-align`` matches edge *orientations* (gradient fields, blocks, RANSAC). This script maximises the normalised
mutual information ``(H(IR) + H(VI)) / H(IR, VI)`` of the *intensities* (Studholme et al. 1999) over a similarity
warp (centre shift dx, dy, rotation, scale), with no gradients and no blocks: both images are histogram-equalised
(MI is blind to monotone intensity maps; equalising makes the 32 bins informative on dark night frames), the joint
histogram (linear binning, bilinear IR samples, a fixed central region) is smoothed with a Gaussian of 1 bin
(Parzen window), and Powell's method runs coarse to fine on a pyramid (1/4, 1/2, 1 of a frame whose longer side is
at most 640 px), starting from no misregistration (a local optimum: started from +-2 deg on the coarsest level as
well, it jumped to far-away optima on 4 of 6 MSRS pairs), within +-24 px, +-4 deg and +-6 % scale.

Reported per dataset, on the unwarped pairs:
* ``MI self-check``: the MI estimator on the same pairs with the IR moved by a known small similarity warp (shift
  <= 4 px, rotation <= 1 deg, scale +-1 %); error of the centre shift against the warp composed with its own
  estimate on the unwarped pair (as ``rel`` in bench_check_align.py) -- does MI measure anything reliably?
* the median dx, dy, rotation, scale found by each estimator (do both find the same per-rig offsets?);
* their disagreement: per pair, the largest distance between the two estimates' displacements of the four image
  corners; median and 90th percentile;
* ``aligned`` (largest corner displacement <= 2 px, check-align's default) by each, and how often they agree;
* NMI at no warp vs at check-align's warp: the fraction of pairs whose MI rises when check-align's estimate is
  applied (MI is not what check-align maximises).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_align_mi.py [--datasets MSRS,LLVIP,RoadScene]

RoadScene: only pairs outside RoadScene-test50 (every 2nd); TNO is a test set and runs only when named.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_check_align import non_test_items  # noqa: E402  (this folder is on sys.path when run)
from scipy import ndimage, optimize  # noqa: E402

from crossfuse.degrade import rigid_matrix, rigid_warp  # noqa: E402
from crossfuse.io import match_folders, read_image, rgb_to_gray, to_uint8  # noqa: E402
from crossfuse.registration import DEFAULT_THRESHOLD, describe, estimate  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINS = 32  # 16 was tried on 6 MSRS pairs: worse (self-check max error 35 px)
BOUNDS = [(-24.0, 24.0), (-24.0, 24.0), (-4.0, 4.0), (-6.0, 6.0)]  # dx, dy px, rotation deg, 100 ln(scale)


def nmi(ir: np.ndarray, vi: np.ndarray, warp: np.ndarray) -> float:
    """Normalised MI of ``vi`` and ``ir`` sampled at ``warp`` (2x3, this level's pixels) over a fixed region, the
    frame less an 8 % border (so that the overlap does not change with the warp); both float32 on 0..BINS."""
    h, w = vi.shape
    samp = cv2.warpAffine(ir, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    my, mx = int(0.08 * h), int(0.08 * w)
    a = np.clip(samp[my:h - my, mx:w - mx], 0, BINS - 1.001).ravel()
    b = np.clip(vi[my:h - my, mx:w - mx], 0, BINS - 1.001).ravel()
    ia, ib = a.astype(np.int32), b.astype(np.int32)
    fa, fb = a - ia, b - ib  # linear (partial) binning: the histogram moves continuously with the warp
    joint = np.zeros(BINS * BINS)
    for da, wa in ((0, 1 - fa), (1, fa)):
        for db, wb in ((0, 1 - fb), (1, fb)):
            joint += np.bincount((ia + da) * BINS + ib + db, weights=wa * wb, minlength=BINS * BINS)
    joint = joint.reshape(BINS, BINS)
    joint = ndimage.gaussian_filter(joint, 1.0, mode="constant") + 1e-12
    p = joint / joint.sum()
    ent = lambda q: -float((q * np.log(q)).sum())  # noqa: E731
    return (ent(p.sum(0)) + ent(p.sum(1))) / ent(p)


def _prep(x: np.ndarray) -> np.ndarray:
    g = cv2.equalizeHist(np.clip(np.round(x), 0, 255).astype(np.uint8))
    return cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.0) * (BINS / 256.0)


def mi_register(ir: np.ndarray, vi: np.ndarray, max_side: int = 640) -> np.ndarray:
    """Maximise NMI over (dx, dy, rotation, log scale), coarse to fine from no warp: the visible -> IR warp (2x3) at
    full resolution."""
    g_ir, g_vi = ir.astype(np.float32), vi.astype(np.float32)
    f0 = 1
    while max(g_vi.shape) > max_side:
        g_ir, g_vi, f0 = cv2.pyrDown(g_ir), cv2.pyrDown(g_vi), f0 * 2
    levels = [(g_ir, g_vi, f0)]
    for _ in range(2):
        levels.append((cv2.pyrDown(levels[-1][0]), cv2.pyrDown(levels[-1][1]), levels[-1][2] * 2))
    x = np.zeros(4)  # dx, dy (full-resolution px), rotation (deg), 100 ln(scale)
    for l_ir, l_vi, f in levels[::-1]:
        a_ir, a_vi = _prep(l_ir), _prep(l_vi)
        shape = l_vi.shape

        def cost(p: np.ndarray) -> float:
            return -nmi(a_ir, a_vi, rigid_matrix(shape, p[0] / f, p[1] / f, p[2], math.exp(p[3] / 100.0)))

        step = np.diag([f * 0.5, f * 0.5, 0.2, 0.5])
        x = optimize.minimize(cost, x, method="Powell", bounds=BOUNDS,
                              options={"xtol": 1e-3, "ftol": 1e-7, "direc": step}).x
    return rigid_matrix(ir.shape, x[0], x[1], x[2], math.exp(x[3] / 100.0))


def corners_gap(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> float:
    """Largest distance between the two warps' images of the four frame corners (px)."""
    h, w = shape
    c = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    return float(np.hypot(*((c @ a[:, :2].T + a[:, 2]) - (c @ b[:, :2].T + b[:, 2])).T).max())


def items_for(ds: str) -> list:
    """The pairs checked: RoadScene outside test-50 (every 2nd); TNO (a test set) only when named, all 42."""
    if ds == "TNO":
        return match_folders({"ir": DATA / ds / "ir", "vi": DATA / ds / "vi"}).items
    return non_test_items(ds, 2)


def run(ds: str, limit: int, self_checks: int) -> dict:
    rows, selfchk, times = [], [], []
    for i, (stem, p) in enumerate(items_for(ds)[:limit]):
        ir = to_uint8(read_image(p["ir"]))
        ir = cv2.cvtColor(ir, cv2.COLOR_RGB2GRAY) if ir.ndim == 3 else ir
        vi = to_uint8(read_image(p["vi"]))
        g_vi = rgb_to_gray(vi) if vi.ndim == 3 else vi.astype(np.float64)
        a = estimate(ir, vi)
        t = time.process_time()
        m = mi_register(ir, g_vi)
        times.append(time.process_time() - t)
        b = describe(m, ir.shape, 1.0)
        prep_ir, prep_vi = _prep(ir), _prep(g_vi)
        rows.append((a.dx, a.dy, a.rotation_deg, a.scale, a.displacement, b.dx, b.dy, b.rotation_deg, b.scale,
                     b.displacement, corners_gap(a.matrix, m, ir.shape),
                     nmi(prep_ir, prep_vi, a.matrix.astype(np.float64)) > nmi(prep_ir, prep_vi, rigid_matrix(
                         ir.shape, 0, 0, 0, 1))))
        print(f"  {ds}/{stem}: check-align dx {a.dx:+.2f} dy {a.dy:+.2f} rot {a.rotation_deg:+.3f} scale "
              f"{a.scale:.4f} | MI dx {b.dx:+.2f} dy {b.dy:+.2f} rot {b.rotation_deg:+.3f} scale {b.scale:.4f} | "
              f"corner gap {rows[-1][10]:.2f} px", flush=True)
        if i < self_checks:  # MI on a known small warp of the same pair
            rng = np.random.default_rng(zlib.crc32(f"mi|{ds}|{stem}".encode()))
            mag, ang = rng.uniform(0, 4), rng.uniform(0, 2 * math.pi)
            dx, dy, deg, sc = mag * math.cos(ang), mag * math.sin(ang), rng.uniform(-1, 1), rng.uniform(0.99, 1.01)
            moved = np.round(rigid_warp(ir.astype(np.float64), dx, dy, deg, sc)).astype(np.uint8)
            truth = describe((np.vstack([rigid_matrix(ir.shape, dx, dy, deg, sc), [0, 0, 1]])
                             @ np.vstack([m, [0, 0, 1]]))[:2], ir.shape, 0.0)
            c = describe(mi_register(moved, g_vi), ir.shape, 0.0)
            selfchk.append((math.hypot(c.dx - truth.dx, c.dy - truth.dy), abs(c.rotation_deg - truth.rotation_deg),
                            abs(c.scale - truth.scale)))
    r, s = np.array(rows, dtype=np.float64), np.array(selfchk).reshape(-1, 3)
    return {"dataset": ds, "n": len(r), "r": r, "self": s, "cpu": float(np.median(times))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="MSRS,LLVIP,RoadScene")
    ap.add_argument("--limit", type=int, default=42)
    ap.add_argument("--self-checks", type=int, default=8, help="pairs per dataset for the MI self-check")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    out = [run(ds, a.limit, a.self_checks) for ds in a.datasets.split(",")]
    thr = DEFAULT_THRESHOLD
    print("\n| dataset | pairs | MI self-check: shift err p50 / max px, rot err p50 deg, scale err p50 | "
          "check-align median dx / dy / rot / scale | MI median dx / dy / rot / scale | corner gap p50 / p90 px | "
          "aligned: check-align / MI / verdicts agree | MI rises with check-align's warp | MI CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for o in out:
        r, s = o["r"], o["self"]
        med = np.median(r, axis=0)
        sc = (f"{np.median(s[:, 0]):.2f} / {s[:, 0].max():.2f}, {np.median(s[:, 1]):.3f}, {np.median(s[:, 2]):.4f}"
              if s.size else "-")
        al_a, al_b = r[:, 4] <= thr, r[:, 9] <= thr
        print(f"| {o['dataset']} | {o['n']} | {sc} | {med[0]:+.2f} / {med[1]:+.2f} / {med[2]:+.3f} / {med[3]:.4f} | "
              f"{med[5]:+.2f} / {med[6]:+.2f} / {med[7]:+.3f} / {med[8]:.4f} | {med[10]:.2f} / "
              f"{np.percentile(r[:, 10], 90):.2f} | {100 * al_a.mean():.0f} % / {100 * al_b.mean():.0f} % / "
              f"{100 * (al_a == al_b).mean():.0f} % | {100 * r[:, 11].mean():.0f} % | {o['cpu']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
