"""Would a sharper resampling kernel in ``crossfuse register`` bring more shifted pairs within 2 % Qabf? (issue #10)

Validation pairs only, the ones of ``bench_check_align.py --register-validation``: the first ``--pairs`` MSRS pairs,
the first of the ``--hard`` RoadScene pairs (outside RoadScene-test50) and LLVIP pairs; TNO is refused. Each IR is
moved by the same seeded shift as in ``bench_check_align.qabf_ratios`` (4-16 px, random direction), made three ways:

* ``bilinear``: :func:`crossfuse.degrade.rigid_warp`, as ``bench_check_align`` (a fractional shift averages
  neighbours: the shifted IR is already blurred when register sees it, and nothing can undo that);
* ``band-limited``: a Fourier (sinc) shift of the reflect-padded IR: no blur, closer to a sensor that is really
  offset;
* ``integer``: the shift rounded to whole pixels (no resampling at all).

Each shifted IR is registered with the check-align estimate and, separately, with the exact warp (the applied shift
composed with the estimate on the unshifted pair: what is left is resampling, not estimation error), with each
kernel: OpenCV ``INTER_LINEAR`` (register's), ``INTER_CUBIC``, ``INTER_LANCZOS4``. The reference is the unshifted
pair registered with the same kernel. Pairs are fused by the default model (:class:`crossfuse.infer.Fuser`) and
scored with Qabf against the reference sources; reported: Qabf(registered) / Qabf(reference) over the whole frame,
the interior (a border of the shift + 2 px cut) and the common valid box (both registered pairs cropped to it, then
fused), as in ``bench_check_align`` (resampling is ``registration.register`` with its ``interpolation``
parameter). Last, the metric's own floor: the interior
ratio for the bilinear reference with a seeded +-1 grey level added to ``REQUANT`` of its IR pixels (what a second
resampling at another sub-pixel phase does to a very smooth IR), fused and scored the same way.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_register_interp.py [--datasets MSRS,RoadScene,LLVIP]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import zlib  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_check_align import _aug, _fuser, _gray_ir, common_box, hard_items, qabf_shift  # noqa: E402  (on sys.path)

from crossfuse.degrade import rigid_matrix, rigid_warp  # noqa: E402
from crossfuse.io import read_image  # noqa: E402
from crossfuse.metrics import compute_metrics  # noqa: E402
from crossfuse.registration import estimate, register  # noqa: E402

KERNELS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos4": cv2.INTER_LANCZOS4}
SHIFTS = ("bilinear", "band-limited", "integer")
REQUANT = 0.17  # fraction of pixels moved by one grey level (half up, half down) in the requantisation check


def fourier_shift(x: np.ndarray, dx: float, dy: float, pad: int = 48) -> np.ndarray:
    """``x`` with its content moved by ``(dx, dy)`` by a band-limited (sinc) shift; reflect-padded so that the
    content wrapping round the frame is a mirror image, as near the border as the replicated border of rigid_warp."""
    xp = np.pad(x.astype(np.float64), pad, mode="reflect")
    fy, fx = np.fft.fftfreq(xp.shape[0])[:, None], np.fft.fftfreq(xp.shape[1])[None, :]
    out = np.fft.ifft2(np.fft.fft2(xp) * np.exp(-2j * np.pi * (fx * dx + fy * dy))).real
    return np.clip(np.round(out[pad:pad + x.shape[0], pad:pad + x.shape[1]]), 0, 255).astype(np.uint8)


def shifted(ir: np.ndarray, dx: float, dy: float, how: str) -> tuple[np.ndarray, float, float]:
    if how == "integer":
        dx, dy = float(round(dx)), float(round(dy))
    if how == "band-limited":
        return fourier_shift(ir, dx, dy), dx, dy
    return np.round(rigid_warp(ir.astype(np.float64), dx, dy, 0.0)).astype(np.uint8), dx, dy


def run_pair(ds: str, stem: str, p: dict, fuser) -> dict:
    """``{(shift, kernel): (whole, interior, box, interior with the exact warp)}`` ratios for one pair, with
    ``"requant"`` (the requantisation check) and ``"ds"``."""
    ir, vi = _gray_ir(read_image(p["ir"])), read_image(p["vi"])
    h, w = ir.shape
    mag, ang = qabf_shift(ds, stem)  # bench_check_align.qabf_ratios' shift
    w_ref = estimate(ir, vi).matrix
    refs = {k: register(ir, w_ref, f) for k, f in KERNELS.items()}

    def fuse(x: np.ndarray, v: np.ndarray = vi) -> np.ndarray:
        return fuser.fuse(x, v, gray=True, dtype=np.uint8)

    def q(src: np.ndarray, fused: np.ndarray, m: int = 0, v: np.ndarray = vi) -> float:
        c = (slice(m, src.shape[0] - m), slice(m, src.shape[1] - m))
        return compute_metrics(src[c], v[c], fused[c], "cddfuse", ["Qabf"])["Qabf"]

    fused_ref = {k: fuse(r) for k, r in refs.items()}
    cut = int(math.ceil(mag)) + 2
    out: dict = {"ds": ds}
    for how in SHIFTS:
        moved, dx, dy = shifted(ir, mag * math.cos(ang), mag * math.sin(ang), how)
        w_reg = estimate(moved, vi).matrix
        exact = (_aug(rigid_matrix(ir.shape, dx, dy, 0.0)) @ _aug(w_ref))[:2]
        box = common_box(w_ref, w_reg, ir.shape)
        for k, f in KERNELS.items():
            ref, fr = refs[k], fused_ref[k]
            reg, ex = register(moved, w_reg, f), register(moved, exact, f)
            fg, fe = fuse(reg), fuse(ex)
            crop = [q(ref[box], fuse(x[box], vi[box]), v=vi[box]) for x in (ref, reg)]
            out[how, k] = (q(ref, fg) / q(ref, fr), q(ref, fg, cut) / q(ref, fr, cut), crop[1] / crop[0],
                           q(ref, fe, cut) / q(ref, fr, cut))
    jitter = np.random.default_rng(zlib.crc32(f"requant|{ds}|{stem}".encode())).choice(
        [-1, 0, 1], ir.shape, p=[REQUANT / 2, 1 - REQUANT, REQUANT / 2])
    ref = refs["linear"]
    out["requant"] = q(ref, fuse(np.clip(ref.astype(np.int16) + jitter, 0, 255).astype(np.uint8)), cut) \
        / q(ref, fused_ref["linear"], cut)
    print(f"  {ds}/{stem}: shift {mag:.1f} px; requantised reference {out['requant']:.3f}; interior ratio "
          "(estimated / exact warp) " + "; ".join(
        f"{how} {k} {out[how, k][1]:.3f} / {out[how, k][3]:.3f}" for how in SHIFTS for k in KERNELS), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="MSRS,RoadScene,LLVIP")
    ap.add_argument("--pairs", type=int, default=8, help="pairs per dataset (default 8, as --qabf-pairs 8)")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    fuser = _fuser()
    per = [run_pair(ds, stem, p, fuser) for ds in a.datasets.split(",") for stem, p in hard_items(ds)[:a.pairs]]
    print(f"\n{len(per)} pairs ({a.datasets}); Qabf(registered) / Qabf(reference): within 2 % (median, min)")
    print("| shift made by | kernel | whole frame | interior | common valid box | interior, exact warp |")
    print("|---|---|---|---|---|---|")
    for how in SHIFTS:
        for k in KERNELS:
            r = np.array([d[how, k] for d in per])
            cells = [f"{100 * np.mean(np.abs(r[:, j] - 1) <= 0.02):.0f} % ({np.median(r[:, j]):.3f}, "
                     f"{r[:, j].min():.3f})" for j in range(4)]
            print(f"| {how} | {k} | " + " | ".join(cells) + " |")
    r = np.array([d["requant"] for d in per])
    print(f"reference IR with +-1 grey level on {100 * REQUANT:.0f} % of its pixels (interior): within 2 % in "
          f"{100 * np.mean(np.abs(r - 1) <= 0.02):.0f} %, median {np.median(r):.3f}, min {r.min():.3f}; per dataset "
          + ", ".join(f"{ds} {np.array([d['requant'] for d in per if d['ds'] == ds]).min():.3f}-"
                      f"{np.array([d['requant'] for d in per if d['ds'] == ds]).max():.3f}"
                      for ds in a.datasets.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
