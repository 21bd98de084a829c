"""Development runs for check-align on noisy / blurred small frames (issue #10), kept apart from the scored sets.

The scored proxies are ``bench_check_align.py --small --hard`` at short sides 280 and 360 px (and full size). To
choose a variant's constants without those cases, ``--mode dev`` rebuilds the same kind of case at other short sides
(default 300, 320, 340 px; ``0`` = full size) with other draws: per pair, ``--seeds`` fresh warps
(``warp_cases(ds, "stem|cond|devK")``) and fresh noise realisations (degradation seeded with ``"stem#devK"``). Truth
and pass as in the bench (``rel``: the warp composed with the estimate on the clean unwarped pair; 0.5 px / 0.2 deg).

``--mode diag``: why the scored cases miss. Per case of the scored draw (``--sides``, one warp per pair as
``--small --hard``), the error against the usual truth, against the estimate on the *degraded unwarped* pair (the
same degradation; ``--fresh-noise``: a second noise realisation for the unwarped pair), and how far the degraded
unwarped estimate sits from the clean one. ``--mode rigid``: exactly aligned synthetic pairs (IR := the inverted,
gamma-remapped gray visible frame), degraded, must read as identity.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align_noise.py --mode dev [--set NOISE_GATE=20 ...]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align_noise.py --mode dev --sides 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align_noise.py --mode diag --sides 320 \
        --conditions vis_noise@4,vis_blur@3 [--fresh-noise]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align_noise.py --mode rigid --sides 320
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_check_align import _aug, _gray_ir, apply_sets, hard_case, hard_items, small_pair, warped_case  # noqa: E402  (on sys.path)

from crossfuse import registration as R  # noqa: E402
from crossfuse.io import read_image, to_uint8  # noqa: E402

DATASETS = ("MSRS", "RoadScene", "LLVIP")


def _err(a, t) -> tuple[float, float]:
    return math.hypot(a.dx - t.dx, a.dy - t.dy), abs(a.rotation_deg - t.rotation_deg)


def _ok(e: tuple[float, float]) -> bool:
    return e[0] <= 0.5 and e[1] <= 0.2


def _pairs(limit: int) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    return [(ds, stem, _gray_ir(to_uint8(read_image(p["ir"]))), to_uint8(read_image(p["vi"])))
            for ds in DATASETS for stem, p in hard_items(ds)[:limit]]


def _sized(ir: np.ndarray, vi: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    return small_pair(ir, vi, side) if side else (ir, vi)


def dev(pairs, sides, cond: str, seeds: int) -> None:
    for side in sides:
        ok: dict[str, list[bool]] = {}
        for ds, stem, ir0, vi0 in pairs:
            ir, vi = _sized(ir0, vi0, side)
            a0 = R.estimate(ir, vi)
            for k in range(seeds):
                m, (d_ir, d_vi) = warped_case(ir, vi, ds, f"{stem}|{cond}|dev{k}", cond, f"{stem}#dev{k}")
                t = R.describe((_aug(m) @ _aug(a0.matrix))[:2], ir.shape, 0.0)
                ok.setdefault(ds, []).append(_ok(_err(R.estimate(d_ir, d_vi), t)))
        n, tot = sum(len(v) for v in ok.values()), sum(sum(v) for v in ok.values())
        print(f"{cond} side {side or 'full'}: {tot}/{n} ({100 * tot / n:.1f} %); "
              + ", ".join(f"{d} {sum(v)}/{len(v)}" for d, v in ok.items()), flush=True)


def diag(pairs, sides, conds, fresh: bool) -> None:
    for side in sides:
        for cond in conds:
            rows = []
            for ds, stem, ir0, vi0 in pairs:
                ir, vi = _sized(ir0, vi0, side)
                a0 = R.estimate(ir, vi)
                m, (d_ir, d_vi) = warped_case(ir, vi, ds, f"{stem}|{cond}", cond, stem)
                u_ir, u_vi = hard_case(ir, vi, cond, stem + ("#fresh" if fresh else ""))
                a, ad = R.estimate(d_ir, d_vi), R.estimate(u_ir, u_vi)
                t0 = R.describe((_aug(m) @ _aug(a0.matrix))[:2], ir.shape, 0.0)
                td = R.describe((_aug(m) @ _aug(ad.matrix))[:2], ir.shape, 0.0)
                rows.append((_ok(_err(a, t0)), _ok(_err(a, td)), _ok(_err(ad, a0))))
            r = np.array(rows)
            print(f"{cond} side {side or 'full'} ({len(r)} cases{', fresh noise' if fresh else ''}): pass vs clean "
                  f"truth {r[:, 0].sum()}; vs degraded-unwarped truth {r[:, 1].sum()}; degraded unwarped estimate "
                  f"within 0.5 px / 0.2 deg of the clean one {r[:, 2].sum()}", flush=True)


def rigid(pairs, sides, conds) -> None:
    for side in sides:
        for cond in conds:
            e = []
            for _ds, stem, ir0, vi0 in pairs:
                _, vi = _sized(ir0, vi0, side)
                syn = np.round(255 * (1 - _gray_ir(vi).astype(np.float64) / 255.0) ** 1.5).astype(np.uint8)
                d_ir, d_vi = hard_case(syn, vi, cond, stem)
                a = R.estimate(d_ir, d_vi)
                e.append((math.hypot(a.dx, a.dy), abs(a.rotation_deg)))
            x = np.array(e)
            print(f"rigid synthetic, {cond}, side {side or 'full'}: identity within 0.5 px / 0.2 deg "
                  f"{int(((x[:, 0] <= .5) & (x[:, 1] <= .2)).sum())}/{len(x)}; shift p50 / p95 {np.median(x[:, 0]):.2f}"
                  f" / {np.percentile(x[:, 0], 95):.2f} px, rotation p95 {np.percentile(x[:, 1], 95):.3f} deg",
                  flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("dev", "diag", "rigid"), default="dev")
    ap.add_argument("--sides", default="300,320,340", help="short sides in px; 0 = full size (default 300,320,340)")
    ap.add_argument("--conditions", default="vis_noise@4", help="comma-separated --hard conditions")
    ap.add_argument("--seeds", type=int, default=3, help="--mode dev: warps and noise draws per pair (default 3)")
    ap.add_argument("--limit", type=int, default=42, help="pairs per dataset (default 42: the --hard pairs)")
    ap.add_argument("--fresh-noise", action="store_true", help="--mode diag: another noise draw for the unwarped pair")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a crossfuse.registration constant for this run; repeatable")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    apply_sets(a.set)
    pairs, sides, conds = _pairs(a.limit), [int(s) for s in a.sides.split(",")], a.conditions.split(",")
    if a.mode == "dev":
        for c in conds:
            dev(pairs, sides, c, a.seeds)
    elif a.mode == "diag":
        diag(pairs, sides, conds, a.fresh_noise)
    else:
        rigid(pairs, sides, conds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
