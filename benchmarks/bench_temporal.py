"""Temporal stability (flicker in static regions) of frame-by-frame fusion.

Two sequences, each fused frame by frame by the default model (through :class:`crossfuse.infer.Fuser`) and by the
``max`` / ``average`` baselines of the robustness benchmark; :func:`crossfuse.temporal.temporal_stability` measures
each output's frame-to-frame change where neither input changes, against the inputs' own:

* ``static``: one real MSRS pair (``--pair``) repeated ``--length`` times with fresh sensor noise per frame
  (Gaussian, IR sigma 2, visible sigma 3 grey levels; seeded): the scene never moves, so every change is noise;
* ``llvip``: LLVIP ``010001``-``010030`` (scene 01; the frames are not consecutive video frames -- the IR gain and
  the people change between them -- so only a small part of each frame is static).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_temporal.py [--plot docs/img/robustness_temporal.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from crossfuse.infer import Fuser, read_pair
from crossfuse.io import quantize
from crossfuse.robust import get_baseline, gray_planes
from crossfuse.temporal import plot, temporal_stability

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def static_sequence(pair: str, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    ir, vi = read_pair(next((DATA / "MSRS" / "ir").glob(f"{pair}.*")), next((DATA / "MSRS" / "vi").glob(f"{pair}.*")))
    rng = np.random.default_rng(0)
    return [(quantize(ir + rng.normal(0, 2.0, ir.shape)), quantize(vi + rng.normal(0, 3.0, vi.shape)))
            for _ in range(length)]


def llvip_sequence(first: int, last: int) -> list[tuple[np.ndarray, np.ndarray]]:
    root = DATA / "LLVIP"
    return [read_pair(next((root / "ir").glob(f"{i:06d}.*")), next((root / "vi").glob(f"{i:06d}.*")))
            for i in range(first, last + 1)]


def measure(pairs: list[tuple[np.ndarray, np.ndarray]], fuser: Fuser, label: str) -> dict:
    fused = {fuser.model_name: [fuser.fuse(ir, vi, gray=True) for ir, vi in pairs]}
    for b in ("max", "average"):
        fused[b] = [quantize(get_baseline(b)(*gray_planes(ir, vi))) for ir, vi in pairs]
    res = temporal_stability([p[0] for p in pairs], [p[1] for p in pairs], fused)
    dark = np.mean([np.mean(f == 0) for f in fused[fuser.model_name]])
    print(f"\n{label}: {len(pairs)} frames, static fraction {res['static_fraction']['mean']:.2f}; "
          f"{fuser.model_name} output pixels at 0: {100 * dark:.0f} %\n")
    print("| sequence | flicker in static regions (grey levels) | / larger input |\n|---|---|---|")
    for name, r in res.items():
        if "per_pair" in r:
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
            print(f"| {name} | {r['mean']:.3f} (max {np.nanmax(r['per_pair']):.3f}) | {ratio} |")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="00001D", help="MSRS pair for the static sequence")
    ap.add_argument("--length", type=int, default=16)
    ap.add_argument("--llvip", default="010001-010030", help="first-last LLVIP stem")
    ap.add_argument("--plot", type=Path, default=None, help="figure of the static sequence")
    a = ap.parse_args()
    fuser = Fuser(None, device="cpu")
    res = measure(static_sequence(a.pair, a.length), fuser, f"static: MSRS {a.pair} + fresh noise per frame")
    first, last = (int(v) for v in a.llvip.split("-"))
    measure(llvip_sequence(first, last), fuser, f"llvip: LLVIP {a.llvip}")
    if a.plot:
        plot(res, str(a.plot), f"MSRS {a.pair}, static scene, fresh sensor noise per frame")
        print(f"\nfigure: {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
