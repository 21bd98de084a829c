"""End-to-end speed and agreement of ``crossfuse.align`` against the reference Top-K alignment algorithm.

Reference: ``benchmarks/reference_align.py`` (a literal re-implementation of CrossFuse's ``top_k_alignment.py``:
per-patch Python lists, joint Nelder-Mead re-applying a truncating LUT to every patch at every evaluation).
Inputs (issue 3): target RoadScene minus its CDDFuse test-50 list, external LLVIP + MSRS, patch 64, stride 64,
K = 1000 (override with the options).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_align.py [--repeat 5] [--ref-repeat 1] [--data DIR]

Both run from the image folders to the aligned patches in memory (reading and decoding included, writing
excluded; a second row adds ``save_alignment``). Reported: wall seconds and CPU seconds of this process
(``time.process_time``, all threads; robust to other load on a shared machine), best of the repeats; the
speed-ups; a "decode-free" row that removes image reading from both sides (the reference's ``cv2.imread`` time is
measured inside it; ours runs on datasets loaded beforehand); whether the selections are identical; gammas and
channel-mean errors of both solvers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_align as REF  # noqa: E402

from crossfuse.align import align, save_alignment  # noqa: E402
from crossfuse.io import read_stem_list  # noqa: E402
from crossfuse.patches import load_pairs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int):
    """Best wall and best CPU seconds over ``repeat`` runs, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("CROSSFUSE_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5, help="runs of crossfuse (best is reported)")
    ap.add_argument("--ref-repeat", type=int, default=1, help="runs of the slow reference (best is reported)")
    args = ap.parse_args(argv)

    d = args.data
    target, externals = d / "RoadScene", [d / "LLVIP", d / "MSRS"]
    test50 = read_stem_list(target / "cddfuse_test50.txt")
    setting = dict(patch=args.patch, stride=args.stride, k=args.k)
    load_before = os.getloadavg()

    def ours(solver="exact"):
        return align(target, externals, exclude=test50, solver=solver, **setting)

    def ours_saved():
        res = ours()
        with tempfile.TemporaryDirectory() as tmp:
            save_alignment(res, Path(tmp) / "out")
        return res

    def ref():
        REF.READ_SECONDS[0] = 0.0
        out = REF.reference_align(str(target), [str(e) for e in externals], args.patch, args.stride, args.k,
                                  exclude=set(test50))
        out["read_s"] = REF.READ_SECONDS[0]
        return out

    ours()  # warm the file cache and imports for both sides
    w_ours, c_ours, res = timed(ours, args.repeat)
    w_save, c_save, _ = timed(ours_saved, max(1, args.repeat // 2))
    _, _, paper = timed(lambda: ours("paper"), 1)
    w_ref, c_ref, r = timed(ref, args.ref_repeat)

    tgt = load_pairs(target, exclude=test50)
    exts = [load_pairs(e) for e in externals]  # IR read up front: nothing left to decode inside align()
    w_pre, c_pre, _ = timed(lambda: align(tgt, exts, **setting), args.repeat)
    w_ref_pre = w_ref - r["read_s"]

    mu = np.array(res.report["target_means"])
    same = res.ids == r["ids"]

    def err(v: list[float]) -> np.ndarray:
        return np.abs(np.array(v) - mu)

    def fmt(v) -> str:
        return ", ".join(f"{x:.4f}" for x in v)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.2f} before / {os.getloadavg()[0]:.2f} after; python {platform.python_version()}")
    print(f"inputs: RoadScene train ({res.report['n_target_images']} pairs, {res.report['n_target_patches']} "
          f"patches) vs LLVIP + MSRS ({res.report['n_candidates']} candidates: {res.report['candidates_per_dataset']})"
          f", patch {args.patch}, stride {args.stride}, K {args.k}\n")
    print("| run | reference wall s | crossfuse wall s | speed-up (wall) | reference CPU s | crossfuse CPU s "
          "| speed-up (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| folders -> aligned patches in memory | {w_ref:.2f} | {w_ours:.3f} | {w_ref / w_ours:.0f}x | "
          f"{c_ref:.2f} | {c_ours:.3f} | {c_ref / c_ours:.0f}x |")
    print(f"| same + writing patches.npz, report.json, histograms.png (crossfuse) | {w_ref:.2f} | {w_save:.3f} | "
          f"{w_ref / w_save:.0f}x | {c_ref:.2f} | {c_save:.3f} | {c_ref / c_save:.0f}x |")
    print(f"| decode-free (image reading removed from both) | {w_ref_pre:.2f} | {w_pre:.3f} | "
          f"{w_ref_pre / w_pre:.0f}x | | {c_pre:.3f} | |")
    print()
    print(f"reference breakdown: reading {r['read_s']:.2f} s, selection {r['timings_s']['select']:.2f} s "
          f"(incl. reading), Nelder-Mead {r['timings_s']['solve']:.2f} s, apply {r['timings_s']['apply']:.2f} s")
    print("crossfuse breakdown (last run): " + ", ".join(f"{k} {v:.3f} s" for k, v in res.report["timings_s"].items()))
    print()
    print(f"selection identical to the reference (same {args.k} ids, same order): {same}")
    same_g, same_p = np.array_equal(paper.gamma, np.array(r["gamma"])), np.array_equal(paper.vis_rgb, r["vis_rgb"])
    print(f"paper solver in crossfuse reproduces the reference gammas bit for bit: {same_g} and patches: {same_p}")
    print()
    print("| solver | gamma (R, G, B) | selected mean after - target, abs (R, G, B) | max |")
    print("|---|---|---|---:|")
    print(f"| crossfuse exact (rounded LUT) | {fmt(res.gamma)} | {fmt(err(res.report['selected_means_after']))} | "
          f"{err(res.report['selected_means_after']).max():.4f} |")
    print(f"| reference Nelder-Mead (truncating LUT) | {fmt(r['gamma'])} | {fmt(err(r['selected_means_after']))} | "
          f"{err(r['selected_means_after']).max():.4f} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
