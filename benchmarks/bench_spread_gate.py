"""Cost of the spread-noise gates (docs/fuse.md "Spread noise"): one ``Fuser.fuse_y`` call, median of ``--repeats``,
on the first MSRS (640×480) and LLVIP (1280×1024) pairs, clean and with the corruption suite's ``correlated_noise``
on both planes and on the visible alone (severity 1.5), for ``--model`` and for ``--against`` (the same network
without gates), and which gates fired. A clean frame pays nothing (the shares come from the pass that fuses it); a
flagged one pays a non-local-means pass per flagged plane and a second network pass.

Run:  PYTHONPATH=src python benchmarks/bench_spread_gate.py [--model crossfuse-robust19] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robust_protocol as rp  # noqa: E402

from crossfuse.infer import Fuser  # noqa: E402
from crossfuse.io import list_images  # noqa: E402
from crossfuse.models import DEFAULT_MODEL  # noqa: E402


def first_pair(root: Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    return rp.load_pair(root, dataset, sorted(list_images(root / dataset / "ir"))[0])


def median_ms(fuser: Fuser, ir: np.ndarray, vi: np.ndarray, repeats: int) -> float:
    fuser.fuse_y(ir, vi)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fuser.fuse_y(ir, vi)
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--against", default="crossfuse-robust16", help="the same network without the gates")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = rp.data_root()
    fusers = {m: Fuser(m, device="cpu") for m in (args.model, args.against)}
    print(f"{args.threads} threads, median of {args.repeats}\n")
    print("| pair | size | frame | model | latency | s/Mpx | gates fired |")
    print("|---|---|---|---|---|---|---|")
    for dataset in ("MSRS", "LLVIP"):
        ir, vi = first_pair(root, dataset)
        frames = {"clean": (ir, vi), "spread noise": rp.corrupt_pair(ir, vi, ("correlated_noise", "both"), seed=1),
                  "spread noise, visible only": rp.corrupt_pair(ir, vi, ("correlated_noise", "vis"), seed=1)}
        for frame, (a, b) in frames.items():
            for name, fuser in fusers.items():
                ms = median_ms(fuser, a, b, args.repeats)
                fired = [p for p in ("vis", "ir") if fuser.last_verdicts.get(f"spread_{p}")]
                print(f"| {dataset} first | {ir.shape[1]}×{ir.shape[0]} | {frame} | {name} | {ms:.1f} ms | "
                      f"{ms / 1000 / (ir.size / 1e6):.3f} | {', '.join(fired) or '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
