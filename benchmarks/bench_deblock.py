"""Cost of the JPEG deblocking step (crossfuse.deblock) and of the default model with it (results in docs/fuse.md).

For each size: a synthetic pair (crossfuse.bench.synthetic_pair), as stored (never coded) and JPEG-coded at quality
10 (IR gray, visible colour, OpenCV). Times, median of ``--repeats``: reading one plane's quality
(``jpeg_quality``), deblocking one coarse plane (``deblock``), and one ``Fuser.fuse_y`` call of ``--model`` with the
step on and off on the coded pair and on the uncoded one. Also checks that the uncoded pair is fused bit for bit as
without the step and reports the qualities read.

Run:  PYTHONPATH=src .venv/bin/python benchmarks/bench_deblock.py [--model crossfuse-robust10] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from crossfuse.bench import synthetic_pair  # noqa: E402
from crossfuse.deblock import deblock, jpeg_quality  # noqa: E402
from crossfuse.infer import Fuser  # noqa: E402


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def coded(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def step_table(on: Fuser, off: Fuser, corrupt, read, step, last, repeats: int) -> None:
    """Print one row per size: ``read`` (one plane's reading) and ``step`` (one corrupted plane through the step)
    timed on the corrupted synthetic IR, ``on`` / ``off`` (the same model with the step on / off) fused on the
    corrupted pair (``corrupt(img) -> img``) and on the plain one; ``last(on)``: what the step read on the corrupted
    pair; and whether the plain pair is fused bit for bit as without the step."""
    print("| size | read (1 plane) | step (1 plane) | fuse corrupted, step on | fuse corrupted, off "
          "| fuse plain, on | fuse plain, off | read on the corrupted pair | plain identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w, h in ((640, 480), (1280, 1024)):
        ir, vis = synthetic_pair(w, h)
        cir, cvis = corrupt(ir), corrupt(vis)
        mpx = w * h / 1e6
        t = {"read": median_s(lambda: read(cir), repeats),
             "step": median_s(lambda: step(cir), repeats),
             "coded_on": median_s(lambda: on.fuse_y(cir, cvis), repeats),
             "coded_off": median_s(lambda: off.fuse_y(cir, cvis), repeats),
             "plain_on": median_s(lambda: on.fuse_y(ir, vis), repeats),
             "plain_off": median_s(lambda: off.fuse_y(ir, vis), repeats)}
        on.fuse_y(cir, cvis)
        seen = last(on)
        same = bool(np.array_equal(on.fuse_y(ir, vis), off.fuse_y(ir, vis)))
        cells = " | ".join(f"{v * 1e3:.1f} ms = {v / mpx:.3f} s/Mpx" for v in t.values())
        print(f"| {w}×{h} | {cells} | {seen} | {same} |")


def step_parser(doc: str, model: str) -> argparse.ArgumentParser:
    """The options every step benchmark takes: ``--model``, ``--threads``, ``--repeats``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", default=model)
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    ap.add_argument("--repeats", type=int, default=7)
    return ap


def bench_step(args: argparse.Namespace, name: str, what: str, corrupt, read, step, last) -> int:
    """:func:`step_table` for the input step ``name`` of ``args.model`` (on / off), on ``args.threads`` torch and
    OpenCV threads; ``what`` describes the corruption in the header line."""
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    on, off = (Fuser(args.model, device="cpu", **{name: flag}) for flag in (True, False))
    print(f"model {args.model}, {args.threads} threads, {what}, median of {args.repeats}\n")
    step_table(on, off, corrupt, read, step, last, args.repeats)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__doc__, "crossfuse-robust10")
    ap.add_argument("--quality", type=int, default=10)
    args = ap.parse_args(argv)
    return bench_step(args, "deblock", f"JPEG quality {args.quality}", lambda img: coded(img, args.quality),
                      jpeg_quality, deblock, lambda f: f.last_quality)


if __name__ == "__main__":
    raise SystemExit(main())
