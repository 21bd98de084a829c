"""``Fuser(noise_level=N)`` / ``crossfuse fuse --noise-level N`` on noise the denoising step's estimate cannot see.

Every validation pair of docs/protocol.md (RoadScene-val, LLVIP-val, MSRS-val; no test data) with the held-out
``correlated_noise`` corruption on both planes (``--visible-only``: on the visible alone, the protocol's tenth
condition) at severity 1.5 (seeded as the protocol seeds it), fused by ``--model``
with the gated step and with each known level of ``--levels``, and by ``--also`` models as they are; the mean of MI,
SCD, VIF, Qabf and SSIM against the CLEAN sources, and how many planes the step (or the spread-noise gate) denoised.

Run:  PYTHONPATH=src python benchmarks/bench_noise_level.py [--model crossfuse-robust19] [--levels 4,6,8,12] [--clean]
      [--visible-only]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import robust_protocol as rp  # noqa: E402

from crossfuse.infer import Fuser  # noqa: E402
from crossfuse.metrics import compute_metrics  # noqa: E402
from crossfuse.models import DEFAULT_MODEL  # noqa: E402

CONDITION = ("correlated_noise", "both")
VISIBLE_ONLY = ("correlated_noise_vis", "vis")  # the protocol's tenth condition (session 18): the visible alone


def cases(root: Path, clean: bool = False, condition: tuple[str, str] = CONDITION
          ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(clean IR, clean visible, input IR, input visible) of every validation pair; the input is corrupted by the
    protocol's ``condition`` (seeded as the protocol seeds it) unless ``clean``."""
    out = []
    for subset, stems in rp.validation_stems(root).items():
        for stem in stems:
            ir, vi = rp.load_pair(root, subset, stem)
            seed = rp.case_seed(subset, stem, condition[0])
            out.append((ir, vi, ir, vi) if clean else (ir, vi, *rp.corrupt_pair(ir, vi, condition, seed)))
    return out


DENOISED = ("denoise_ir", "denoise_vis", "spread_ir", "spread_vis")  # the verdicts that mean a plane was denoised


def score(fuser: Fuser, pairs: list) -> tuple[dict[str, float], int]:
    rows, denoised = [], 0
    for ir, vi, ir_in, vi_in in pairs:
        rows.append(compute_metrics(ir, vi, rp.fused_u8(fuser, ir_in, vi_in), profile="cddfuse", metrics=rp.RANKED))
        denoised += sum(fuser.last_verdicts.get(k, False) for k in DENOISED)
    return {m: float(np.mean([r[m] for r in rows])) for m in rp.RANKED}, denoised


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--levels", default="4,6,8,12", help="known noise levels to try (grey levels)")
    ap.add_argument("--also", default="crossfuse-robust2", help="other models, as they are (comma-separated)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clean", action="store_true", help="the clean pairs instead (what a known level costs there)")
    ap.add_argument("--visible-only", action="store_true",
                    help="the noise on the visible plane alone (the protocol's correlated_noise_vis condition)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    condition = VISIBLE_ONLY if args.visible_only else CONDITION
    pairs = cases(rp.data_root(), args.clean, condition)
    rows = [(f"{args.model} (gated step)", Fuser(args.model, device="cpu"))]
    rows += [(f"{args.model} --noise-level {v:g}", Fuser(args.model, device="cpu", noise_level=v))
             for v in (float(x) for x in args.levels.split(","))]
    rows += [(m, Fuser(m, device="cpu")) for m in args.also.split(",") if m]
    planes = "the visible plane only" if args.visible_only else "both planes"
    what = "clean" if args.clean else f"{rp.corruption_of(condition[0])} @ {rp.SEVERITY} on {planes}"
    print(f"{len(pairs)} validation pairs, {what}, scored against the clean sources\n")
    print("| fusion | " + " | ".join(rp.RANKED) + " | planes denoised |")
    print("|---|" + "---|" * (len(rp.RANKED) + 1))
    for name, fuser in rows:
        means, denoised = score(fuser, pairs)
        print(f"| {name} | " + " | ".join(f"{means[m]:.3f}" for m in rp.RANKED) + f" | {denoised} of "
              f"{2 * len(pairs)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
