"""Speed of the eight standard metrics (EN SD SF MI SCD VIF Qabf SSIM) on one 640x480 triplet, single thread.

crossfuse's ``cddfuse`` profile against ``benchmarks/reference_cddfuse_evaluator.py``, a plain re-implementation
of how MMIF-CDDFuse ``utils/Evaluator.py`` computes the same numbers (SciPy ``convolve2d`` VIF, mask-based Qabf,
contingency-table MI, scikit-image SSIM). Both are checked to give the same values first.

Triplet: MSRS ``00001D`` (640x480; IR and VIS from ``../shared/data/MSRS``); the fused image is the rounded mean of
the two gray sources (a stand-in fusion result -- the cost of these metrics does not depend on the content).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_metrics.py [--repeat 7] [--data DIR]

Prints a markdown table (CPU milliseconds of this process -- ``time.process_time``, robust to other load on a
shared machine -- best of ``--repeat`` runs; the reference is run ``max(2, repeat // 3)``
times).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_cddfuse_evaluator as ref  # noqa: E402

from crossfuse.io import read_image  # noqa: E402
from crossfuse.metrics import compute_metrics, get_profile  # noqa: E402

STANDARD = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times) * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--pair", default="00001D")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    cv2.setNumThreads(1)

    ir = read_image(args.data / "MSRS" / "ir" / f"{args.pair}.png")
    vi = read_image(args.data / "MSRS" / "vi" / f"{args.pair}.png")
    prof = get_profile("cddfuse")
    (f, a, b), = prof.prepare(ir, vi, ir)
    f = np.round((a + b) / 2.0)
    f32, a32, b32 = (x.astype(np.float32) for x in (f, a, b))  # what the reference reader returns

    fast = compute_metrics(a, b, f, "cddfuse", STANDARD)
    slow = {m: ref.evaluate(m, f32, a32, b32) for m in STANDARD}
    rel = {m: abs(fast[m] - slow[m]) / max(abs(slow[m]), 1e-12) for m in STANDARD}

    rep_ref = max(2, args.repeat // 3)
    rows = []
    for m in STANDARD:
        spec = prof.metrics[m]
        t_fast = best_ms(lambda: spec.fn(f, a, b) if spec.needs_sources else spec.fn(f), args.repeat)
        t_slow = best_ms(lambda: ref.evaluate(m, f32, a32, b32), rep_ref)
        rows.append((m, t_slow, t_fast))
    t_all_fast = best_ms(lambda: compute_metrics(a, b, f, "cddfuse", STANDARD), args.repeat)
    t_all_slow = best_ms(lambda: [ref.evaluate(m, f32, a32, b32) for m in STANDARD], rep_ref)

    print(f"640x480 triplet MSRS/{args.pair}, single thread, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, OpenCV {cv2.__version__}\n")
    print("| metric | reference (ms) | crossfuse (ms) | speed-up | rel. difference |")
    print("|---|---:|---:|---:|---:|")
    for m, ts, tf in rows:
        print(f"| {m} | {ts:.1f} | {tf:.2f} | {ts / tf:.0f}x | {rel[m]:.1e} |")
    print(f"| **all eight** (`compute_metrics`) | **{t_all_slow:.0f}** | **{t_all_fast:.1f}** | "
          f"**{t_all_slow / t_all_fast:.0f}x** | max {max(rel.values()):.1e} |")
    print(f"\nreference: {t_all_slow / 0.3072:.0f} ms per megapixel; crossfuse: {t_all_fast / 0.3072:.0f} ms per "
          f"megapixel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
