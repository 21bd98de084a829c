"""Accuracy and speed of ``crossfuse check-align`` / ``register`` on real pairs warped by known amounts.

For every pair of each dataset in ``../shared/data``: the unwarped pair is estimated first (is it reported aligned
at the default threshold?), then the IR is moved by ``--warps`` seeded random rigid warps (shift of 0-16 px in a
random direction, rotation U[-3, 3] deg, :func:`crossfuse.degrade.rigid_warp`) and estimated again.

Two error measures, because the real pairs are not perfectly registered themselves (MSRS shows a ~1.5 % scale
difference, TNO some pairs several pixels):
* ``rel`` (equivariance): the truth is the applied warp composed with the estimate on the unwarped pair;
* ``abs``: the truth is the applied warp alone (assumes the dataset pair is exactly registered).
A case passes when the centre shift error is <= 0.5 px and the rotation error <= 0.2 deg.

Register: on the first ``--qabf-pairs`` pairs of each dataset, the IR is shifted by 4-16 px (``--shift-mode
integer``: the same shift rounded to whole pixels, an exact translation without the bilinear shift's blur, as a
real sensor offset; default ``subpixel``: as drawn, bilinear); each of the unshifted,
shifted and registered (``register`` with the estimate) pairs is fused by the default model through
:class:`crossfuse.infer.Fuser` and scored with Qabf (a) against the raw sources and (b) against the unshifted pair
registered by the same tool, (c) as (b) on the interior (a border of the shift + 2 px cut from every image: content
shifted out of the frame cannot be brought back), (d) as (b) with both registered pairs cut to their common valid
box (:func:`crossfuse.registration.valid_region`) before fusing; reported: registered / unshifted.
``--register-validation``: only this check, on non-test pairs (the ``--hard`` pairs; no TNO).

Is the misregistration found on the unwarped dataset pairs real? An independent check: the correlation of the two
gradient-magnitude maps (Gaussian sigma 2, 5 % border cut), which the estimator does not maximise, before and after
registering the unwarped pair with the estimate (``ncc_up``: the fraction of pairs where it rises).

Time: CPU seconds (``time.process_time``, robust to other load) per estimate, one thread, per image size.

``--hard``: the validation set for hard, low-structure pairs (no test pair in it: MSRS, LLVIP, and every 4th
RoadScene pair outside RoadScene-test50). Each pair is degraded by each of :data:`HARD_CONDITIONS`
(:func:`crossfuse.degrade.degrade_pair`: haze, night, low light, low-contrast IR, noise and stripes, blur, JPEG, and
two combinations; ``clean``: none) after its IR has been moved by a seeded random rigid warp (as above, one per pair
and condition); the truth is the warp composed with the estimate on the clean unwarped pair (``rel``).
``--eps-factor 0.25`` runs the estimator before 2026-11-29 (its fields' eps) for comparison; ``--set NAME=VALUE``
overrides any constant of :mod:`crossfuse.registration` for one run (e.g. ``--set ITERATIONS=3``).

``--small``: a TNO-like validation proxy without TNO. TNO's frames are small (short side ~280-360 px on many pairs)
and its visible frames gray; here the ``--hard`` pairs (clean) are turned gray and downscaled (``INTER_AREA``) to a
short side of each of ``--short-sides`` (default 280 and 360 px), then scored like the main benchmark (``rel``).
``--small --hard``: the two together -- each ``--hard`` pair made small and gray first, then warped and degraded by
each of :data:`HARD_CONDITIONS` as ``--hard``; printed next to the full-size ``--hard`` run of the same pairs
(``--skip-full``: without it). ``--conditions a,b``: only those conditions (and ``clean``), for development runs.
Development runs for noisy / blurred small frames at sizes and draws that are not scored: bench_check_align_noise.py.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align.py [--warps 4] [--limit 42]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align.py --hard [--datasets MSRS,LLVIP,RoadScene]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align.py --small --datasets MSRS,RoadScene,LLVIP
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align.py --small --hard --datasets MSRS,RoadScene,LLVIP
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check_align.py --register-validation --qabf-pairs 8 \
        [--datasets MSRS,RoadScene,LLVIP] [--shift-mode integer]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import ast  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from crossfuse import registration  # noqa: E402
from crossfuse.degrade import degrade_pair, rigid_matrix, rigid_warp  # noqa: E402
from crossfuse.io import match_folders, read_image, read_stem_list, to_uint8  # noqa: E402
from crossfuse.metrics import compute_metrics  # noqa: E402
from crossfuse.registration import DEFAULT_THRESHOLD, describe, estimate, register, valid_region  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# structure-removing conditions of crossfuse.degrade; "a+b" applies a, then b
HARD_CONDITIONS = ("clean", "haze@3", "haze@5", "vis_night@3", "vis_night@5", "vis_low_light@5", "ir_low_contrast@5",
                   "ir_noise_stripe@2", "ir_noise_stripe@3", "drmf_ir@1", "vis_blur@3", "vis_noise@4", "jpeg@3",
                   "ir_low_contrast@4+haze@3", "ir_low_contrast@4+vis_night@4")


def _aug(w: np.ndarray) -> np.ndarray:
    return np.vstack([w, [0.0, 0.0, 1.0]])


def _gray_ir(ir: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(ir, cv2.COLOR_RGB2GRAY) if ir.ndim == 3 else ir


def warp_cases(ds: str, stem: str, n: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(zlib.crc32(f"{ds}|{stem}".encode()))
    out = []
    for _ in range(n):
        mag, ang = rng.uniform(0, 16), rng.uniform(0, 2 * math.pi)
        out.append((mag * math.cos(ang), mag * math.sin(ang), rng.uniform(-3, 3)))
    return out


def grad_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of the gradient magnitudes of two gray images (sigma 2 px, 5 % border cut)."""
    def mag(x: np.ndarray) -> np.ndarray:
        x = cv2.GaussianBlur(x.astype(np.float32), (0, 0), 2.0)
        return np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))

    h, w = a.shape
    c = (slice(h // 20, h - h // 20), slice(w // 20, w - w // 20))
    ma, mb = mag(a)[c], mag(b)[c]
    ma, mb = ma - ma.mean(), mb - mb.mean()
    return float((ma * mb).sum() / np.sqrt((ma * ma).sum() * (mb * mb).sum()))


def timed_estimate(ir: np.ndarray, vi: np.ndarray, times: list[float]):
    t = time.process_time()
    a = estimate(ir, vi)
    times.append(time.process_time() - t)
    return a


def passed(errors: np.ndarray) -> np.ndarray:
    """Per case (rows of ``(shift error px, rotation error deg, ...)``): within 0.5 px and 0.2 deg."""
    return (errors[:, 0] <= 0.5) & (errors[:, 1] <= 0.2)


def pass_rate(errors: np.ndarray) -> float:
    """Percentage of cases :func:`passed`."""
    return 100.0 * float(np.mean(passed(errors)))


def qabf_shift(ds: str, stem: str) -> tuple[float, float]:
    """The register check's seeded shift of one pair: length 4-16 px and direction (radians)."""
    rng = np.random.default_rng(zlib.crc32(f"qabf|{ds}|{stem}".encode()))
    return rng.uniform(4, 16), rng.uniform(0, 2 * math.pi)


def common_box(w_ref: np.ndarray, w_reg: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The box where both registered IRs sample real IR pixels (the intersection of their
    :func:`crossfuse.registration.valid_region`): what ``register --crop`` would write for both."""
    (ra, ca), (rb, cb) = valid_region(w_ref, shape), valid_region(w_reg, shape)
    return (slice(max(ra.start, rb.start), min(ra.stop, rb.stop)),
            slice(max(ca.start, cb.start), min(ca.stop, cb.stop)))


def small_pair(ir: np.ndarray, vi: np.ndarray, short: int) -> tuple[np.ndarray, np.ndarray]:
    """``--small``: both images gray (uint8) and downscaled (``INTER_AREA``) so that the shorter side is ``short``
    px -- the size and the gray visible images of TNO, made from non-test pairs."""
    h, w = ir.shape[:2]
    size = (round(w * short / min(h, w)), round(h * short / min(h, w)))
    return tuple(cv2.resize(_gray_ir(to_uint8(x)), size, interpolation=cv2.INTER_AREA) for x in (ir, vi))


def run_dataset(ds: str, limit: int, warps: int, items: list | None = None, prep=None, label: str = "") -> dict:
    """The warped-pair accuracy of one dataset (all its pairs, or ``items``; ``prep(ir, vi)`` transforms each pair
    first)."""
    items = (match_folders({"ir": DATA / ds / "ir", "vi": DATA / ds / "vi"}).items if items is None else items)[:limit]
    rel, ab, aligned, times, low, base, ncc_up = [], [], [], [], [], [], []
    for stem, p in items:
        ir, vi = _gray_ir(read_image(p["ir"])), read_image(p["vi"])
        if prep is not None:
            ir, vi = prep(ir, vi)
        h, w = ir.shape
        a0 = timed_estimate(ir, vi, times)
        aligned.append(a0.verdict(DEFAULT_THRESHOLD))
        base.append(a0.displacement)
        g_vi = _gray_ir(vi)
        ncc_up.append(grad_ncc(register(ir, a0.matrix), g_vi) > grad_ncc(ir, g_vi))
        for dx, dy, deg in warp_cases(ds, stem, warps):
            moved = np.round(rigid_warp(ir.astype(np.float64), dx, dy, deg)).astype(np.uint8)
            m = rigid_matrix(ir.shape, dx, dy, deg)
            a = timed_estimate(moved, vi, times)
            low.append(a.confidence < 0.05)
            truth = describe((_aug(m) @ _aug(a0.matrix))[:2], ir.shape, 0.0)
            rel.append((math.hypot(a.dx - truth.dx, a.dy - truth.dy), abs(a.rotation_deg - truth.rotation_deg)))
            ab.append((math.hypot(a.dx - dx, a.dy - dy), abs(a.rotation_deg - deg)))
    rel_a, ab_a = np.array(rel), np.array(ab)
    return {"dataset": label or ds, "pairs": len(items), "cases": len(rel), "rel_ok": pass_rate(rel_a),
            "abs_ok": pass_rate(ab_a),
            "shift_p50": float(np.median(rel_a[:, 0])), "shift_p95": float(np.percentile(rel_a[:, 0], 95)),
            "rot_p50": float(np.median(rel_a[:, 1])), "rot_p95": float(np.percentile(rel_a[:, 1], 95)),
            "aligned": 100.0 * float(np.mean(np.array(aligned) == "yes")),
            "unknown": 100.0 * float(np.mean(np.array(aligned) == "unknown")),
            "ncc_up": 100.0 * float(np.mean(ncc_up)), "low_conf": 100.0 * float(np.mean(low)),
            "size": f"{w}x{h}", "cpu_s": float(np.median(times)), "errors": rel_a, "base_p50": float(np.median(base)),
            "base_p95": float(np.percentile(base, 95))}


def non_test_items(ds: str, every: int = 1) -> list[tuple[str, dict]]:
    """A dataset's pairs without RoadScene-test50 (RoadScene: then every ``every``-th pair); TNO, a test set, is
    refused."""
    if ds == "TNO":
        raise SystemExit("this is a validation run: TNO is a test set and is not part of it")
    items = match_folders({"ir": DATA / ds / "ir", "vi": DATA / ds / "vi"}).items
    if ds == "RoadScene":
        test = set(read_stem_list(DATA / ds / "cddfuse_test50.txt"))
        items = [it for it in items if it[0] not in test][::every]
    return items


def hard_items(ds: str) -> list[tuple[str, dict]]:
    """The pairs of the hard validation set: all of MSRS and LLVIP, every 4th RoadScene pair outside test-50."""
    return non_test_items(ds, 4)


def hard_case(ir: np.ndarray, vi_rgb: np.ndarray, cond: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """``cond`` ("name@s" or "a@s+b@t") applied to the pair (IR gray uint8, visible RGB or gray): uint8 IR, visible
    RGB or gray."""
    vi = vi_rgb[..., ::-1] if vi_rgb.ndim == 3 else vi_rgb  # degrade works in BGR, as make_corrupted.py
    x_ir, x_vi = ir, vi
    for part in cond.split("+") if cond != "clean" else ():
        name, sev = part.split("@")
        x_ir, x_vi = degrade_pair(name, float(sev), x_ir, x_vi, stem)
    return x_ir, np.ascontiguousarray(x_vi[..., ::-1]) if x_vi.ndim == 3 else x_vi


def warped_case(ir: np.ndarray, vi: np.ndarray, ds: str, key: str, cond: str, seed_stem: str):
    """``(m, (ir', vi'))``: the IR moved by the seeded rigid warp of ``(ds, key)`` (``m`` its matrix, 8-bit rounded),
    then the pair degraded by ``cond`` (:func:`hard_case`, noise seeded by ``seed_stem``)."""
    (dx, dy, deg), = warp_cases(ds, key, 1)
    moved = np.round(rigid_warp(ir.astype(np.float64), dx, dy, deg)).astype(np.uint8)
    return rigid_matrix(ir.shape, dx, dy, deg), hard_case(moved, vi, cond, seed_stem)


def apply_sets(kvs: list[str]) -> None:
    """``--set NAME=VALUE``: override constants of :mod:`crossfuse.registration` for this run."""
    for kv in kvs:
        name, value = kv.split("=", 1)
        if not (name.isupper() and hasattr(registration, name)):
            raise SystemExit(f"--set {kv}: crossfuse.registration has no constant {name}")
        setattr(registration, name, ast.literal_eval(value))


def run_hard(ds: str, limit: int, est=estimate, prep=None, label: str = "") -> dict:
    """Per condition of :data:`HARD_CONDITIONS`: passes (rel), gross failures (shift error > 2 px) and CPU time.
    ``prep(ir, vi)`` transforms each clean pair first (``--small --hard``: :func:`small_pair`), before the warp and
    the degradation."""
    per: dict[str, list] = {c: [] for c in HARD_CONDITIONS}
    times: list[float] = []
    items = hard_items(ds)[:limit]
    for stem, p in items:
        ir, vi = _gray_ir(to_uint8(read_image(p["ir"]))), to_uint8(read_image(p["vi"]))
        if prep is not None:
            ir, vi = prep(ir, vi)
        h, w = ir.shape
        a0 = est(ir, vi)
        for cond in HARD_CONDITIONS:
            m, (d_ir, d_vi) = warped_case(ir, vi, ds, f"{stem}|{cond}", cond, stem)
            t = time.process_time()
            a = est(d_ir, d_vi)
            times.append(time.process_time() - t)
            truth = describe((_aug(m) @ _aug(a0.matrix))[:2], ir.shape, 0.0)
            per[cond].append((math.hypot(a.dx - truth.dx, a.dy - truth.dy), abs(a.rotation_deg - truth.rotation_deg),
                              a.confidence))
    return {"dataset": label or ds, "pairs": len(items), "per": {c: np.array(v) for c, v in per.items()},
            "cpu_s": float(np.median(times)), "size": f"{w}x{h}"}


def print_hard(rows: list[dict]) -> None:
    print("\n| condition | " + " | ".join(r["dataset"] for r in rows) + " | all | gross (> 2 px) | unknown |")
    print("|---|" + "---|" * (len(rows) + 3))
    allc = {c: np.concatenate([r["per"][c] for r in rows]) for c in HARD_CONDITIONS}
    for c in HARD_CONDITIONS:
        cells = [f"{pass_rate(r['per'][c]):.0f} %" for r in rows]
        e = allc[c]
        print(f"| {c} | " + " | ".join(cells) + f" | {pass_rate(e):.0f} % | {100 * (e[:, 0] > 2).mean():.0f} % "
              f"| {100 * (e[:, 2] < 0.05).mean():.0f} % |")
    hard = [c for c in HARD_CONDITIONS if c != "clean"]
    tot = np.concatenate([allc[c] for c in hard])
    cells = [f"**{pass_rate(np.concatenate([r['per'][c] for c in hard])):.1f} %**" for r in rows]
    print("| all degraded | " + " | ".join(cells) + f" | **{pass_rate(tot):.1f} %** | "
          f"{100 * (tot[:, 0] > 2).mean():.1f} % | {100 * (tot[:, 2] < 0.05).mean():.1f} % |")
    print("pairs / cases / CPU s per estimate: " + ", ".join(
        f"{r['dataset']} {r['pairs']} / {sum(len(v) for v in r['per'].values())} / {r['cpu_s']:.3f} ({r['size']})"
        for r in rows))


def print_small_hard(full: list[dict], small: dict[str, list[dict]]) -> None:
    """``--small --hard``: pass rate per condition over all datasets, full size next to each short side."""
    gross = lambda e: 100 * float(np.mean(e[:, 0] > 2))  # noqa: E731
    sets = ({"full size": full} if full else {}) | {f"{s} px gray": rows for s, rows in small.items()}
    print("\n| condition | " + " | ".join(sets) + " | " + " | ".join(f"gross {k}" for k in sets) + " |")
    print("|---|" + "---|" * (2 * len(sets)))
    hard = [c for c in HARD_CONDITIONS if c != "clean"]
    for c in (*HARD_CONDITIONS, "all degraded"):
        es = [np.concatenate([r["per"][k] for r in rows for k in (hard if c == "all degraded" else [c])])
              for rows in sets.values()]
        b = "**" if c == "all degraded" else ""
        print(f"| {c} | " + " | ".join(f"{b}{pass_rate(e):.1f} %{b}" for e in es) + " | "
              + " | ".join(f"{gross(e):.0f} %" for e in es) + " |")
    for k, rows in sets.items():
        print(f"{k}: " + ", ".join(f"{r['dataset']} {r['pairs']} pairs, {r['size']}, {r['cpu_s']:.3f} s" for r in rows))


def shift_ir(ir: np.ndarray, mag: float, ang: float, mode: str = "subpixel") -> tuple[np.ndarray, float]:
    """The gray uint8 IR moved by ``mag`` px in direction ``ang`` (bilinear ``rigid_warp``, border replicated) and the
    shift's length. ``integer``: the shift vector rounded to whole pixels first (rounded away from zero if that
    left it under 4 px), so the warp is an exact translation that resamples nothing."""
    dx, dy = mag * math.cos(ang), mag * math.sin(ang)
    if mode == "integer":
        rx, ry = round(dx), round(dy)
        if math.hypot(rx, ry) < 4:
            rx, ry = math.copysign(math.ceil(abs(dx)), dx), math.copysign(math.ceil(abs(dy)), dy)
        dx, dy = float(rx), float(ry)
        mag = math.hypot(dx, dy)
    return np.round(rigid_warp(ir.astype(np.float64), dx, dy, 0.0)).astype(np.uint8), mag


def qabf_ratios(ds: str, n: int, fuser, skip_test: bool = False,
                shift_mode: str = "subpixel") -> list[tuple[float, float, float, float]]:
    """Per pair: Qabf(registered) / Qabf(unshifted), (a) scored against the raw sources, (b) against the unshifted
    pair registered by the same tool (register puts IR in the visible frame; raw pairs are often off by ~1 px),
    (c) as (b) on the interior only: a border of the shift + 2 px is cut from every image before scoring (the
    content shifted out of the frame is lost and no registration can bring it back), (d) as (b) with both registered
    pairs cut to their common valid box (:func:`crossfuse.registration.valid_region`) before fusing.
    ``shift_mode``: see :func:`shift_ir` (same seeded draw in both modes)."""
    out = []
    items = hard_items(ds) if skip_test else match_folders({"ir": DATA / ds / "ir", "vi": DATA / ds / "vi"}).items
    for stem, p in items[:n]:
        ir, vi = _gray_ir(read_image(p["ir"])), read_image(p["vi"])
        moved, mag = shift_ir(ir, *qabf_shift(ds, stem), shift_mode)
        w_ref, w_reg = estimate(ir, vi).matrix, estimate(moved, vi).matrix
        ref = register(ir, w_ref)
        srcs = {"unshifted": ir, "shifted": moved, "registered": register(moved, w_reg), "ref": ref}
        fused = {k: fuser.fuse(x, vi, gray=True, dtype=np.uint8) for k, x in srcs.items()}
        cut = int(math.ceil(mag)) + 2

        def q(name: str, src: np.ndarray, m: int = 0) -> float:
            c = (slice(m, src.shape[0] - m), slice(m, src.shape[1] - m))
            return compute_metrics(src[c], vi[c], fused[name][c], "cddfuse", ["Qabf"])["Qabf"]

        box = common_box(w_ref, w_reg, ir.shape)  # both registered pairs cut to it, then fused and scored there
        crop_q = [compute_metrics(ref[box], vi[box], fuser.fuse(srcs[k][box], vi[box], gray=True, dtype=np.uint8),
                                  "cddfuse", ["Qabf"])["Qabf"] for k in ("ref", "registered")]
        raw = (q("unshifted", ir), q("shifted", ir), q("registered", ir))
        reg = (q("ref", ref), q("shifted", ref), q("registered", ref))
        inner = (q("ref", ref, cut), q("shifted", ref, cut), q("registered", ref, cut))
        out.append((raw[2] / raw[0], reg[2] / reg[0], inner[2] / inner[0], crop_q[1] / crop_q[0]))
        print(f"  {ds}/{stem}: shift {mag:.1f} px; Qabf unshifted / shifted / registered: raw sources "
              f"{raw[0]:.3f} / {raw[1]:.3f} / {raw[2]:.3f}; registered sources {reg[0]:.3f} / {reg[1]:.3f} / "
              f"{reg[2]:.3f}; interior {inner[0]:.3f} / {inner[1]:.3f} / {inner[2]:.3f}; common valid box "
              f"{box[1].stop - box[1].start}x{box[0].stop - box[0].start}: {crop_q[0]:.3f} / {crop_q[1]:.3f}",
              flush=True)
    return out


def _fuser():
    import torch

    from crossfuse.infer import Fuser

    torch.set_num_threads(1)
    return Fuser(None, device="cpu")


def print_ratios(ratios: list) -> None:
    rr = np.array(ratios).reshape(-1, 4)
    whats = ("raw sources", "registered unshifted pair as reference", "same, interior: shift + 2 px border cut",
             "same, both registered pairs cropped to their common valid box, then fused")
    for k, what in enumerate(whats if rr.size else ()):
        r = rr[:, k]
        print(f"register ({what}): Qabf(registered) / Qabf(unshifted) over {r.size} shifted pairs: median "
              f"{np.median(r):.3f}, min {r.min():.3f}, within 2 % in {100 * np.mean(np.abs(r - 1) <= 0.02):.0f} %")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="MSRS,RoadScene,TNO,LLVIP")
    ap.add_argument("--limit", type=int, default=42, help="pairs per dataset (default 42)")
    ap.add_argument("--warps", type=int, default=4, help="random warps per pair (default 4)")
    ap.add_argument("--qabf-pairs", type=int, default=6, help="pairs per dataset for the register Qabf check")
    ap.add_argument("--hard", action="store_true", help="the hard validation set (degraded non-test pairs) only")
    ap.add_argument("--register-validation", action="store_true",
                    help="only the register Qabf check, on non-test pairs (RoadScene outside test-50; no TNO)")
    ap.add_argument("--shift-mode", choices=("subpixel", "integer"), default="subpixel",
                    help="register check: the 4-16 px shift as drawn (bilinear, default) or rounded to whole pixels")
    ap.add_argument("--small", action="store_true", help="TNO-like validation: the --hard pairs in gray, downscaled "
                    "to a short side of --short-sides px (no TNO)")
    ap.add_argument("--short-sides", default="280,360", help="--small: short sides in px (default 280,360)")
    ap.add_argument("--every", type=int, default=4, help="--small: every N-th RoadScene pair outside test-50 "
                    "(default 4: the --hard pairs; 1: all 171)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a registration constant for this run (e.g. ITERATIONS=3, GRID=(7,5)); repeatable")
    ap.add_argument("--conditions", default=None, help="--hard: only these of HARD_CONDITIONS (comma-separated; "
                    "clean is always run), e.g. vis_noise@4,vis_blur@3 for development runs")
    ap.add_argument("--skip-full", action="store_true", help="--small --hard: leave out the full-size --hard pass")
    ap.add_argument("--eps-factor", type=float, default=None,
                    help="override registration.EPS_FACTOR (0.25 = the estimator before 2026-11-29)")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    if a.eps_factor is not None:
        registration.EPS_FACTOR = a.eps_factor
    apply_sets(a.set)
    if a.conditions:
        global HARD_CONDITIONS
        keep = a.conditions.split(",")
        if not set(keep) <= set(HARD_CONDITIONS):
            raise SystemExit(f"--conditions: unknown {sorted(set(keep) - set(HARD_CONDITIONS))}")
        HARD_CONDITIONS = tuple(c for c in HARD_CONDITIONS if c == "clean" or c in keep)
    if a.hard and a.small:  # small gray frames, then each degradation; next to the full-size --hard run
        dss = [d for d in a.datasets.split(",") if d != "TNO"]
        full = [] if a.skip_full else [run_hard(ds, a.limit) for ds in dss]
        if full:
            print_hard(full)
        small = {}
        for s in a.short_sides.split(","):
            small[s] = [run_hard(ds, a.limit, prep=lambda ir, vi, s=int(s): small_pair(ir, vi, s), label=f"{ds}@{s}")
                        for ds in dss]
            print_hard(small[s])
        print_small_hard(full, small)
        return 0
    if a.hard:
        dss = [d for d in a.datasets.split(",") if d != "TNO"]
        print_hard([run_hard(ds, a.limit) for ds in dss])
        return 0
    if a.register_validation:  # the register Qabf check on non-test pairs only
        fuser = _fuser()
        print_ratios([r for ds in a.datasets.split(",") if ds != "TNO" for r in qabf_ratios(ds, a.qabf_pairs, fuser,
                                                                                          True, a.shift_mode)])
        return 0
    if a.small:  # TNO-like: gray, short side 280 / 360 px, non-test pairs only
        dss = [d for d in a.datasets.split(",") if d != "TNO"]
        rows = [run_dataset(ds, a.limit, a.warps, non_test_items(ds, a.every),
                            lambda ir, vi, s=int(s): small_pair(ir, vi, s), f"{ds}@{s}")
                for s in a.short_sides.split(",") for ds in dss]
        print_rows(rows)
        for s in a.short_sides.split(","):
            e = np.concatenate([r["errors"] for r in rows if r["dataset"].endswith(f"@{s}")])
            print(f"all @{s}: {len(e)} cases, within 0.5 px & 0.2 deg {pass_rate(e):.1f} %, shift err p50 / p95 "
                  f"{np.median(e[:, 0]):.2f} / {np.percentile(e[:, 0], 95):.2f} px, rot err p50 / p95 "
                  f"{np.median(e[:, 1]):.3f} / {np.percentile(e[:, 1], 95):.3f} deg")
        return 0
    fuser = _fuser()
    rows, ratios = [], []
    for ds in a.datasets.split(","):
        rows.append(run_dataset(ds, a.limit, a.warps))
        ratios += qabf_ratios(ds, a.qabf_pairs, fuser, shift_mode=a.shift_mode)
    print_rows(rows)
    print_ratios(ratios)
    return 0


def print_rows(rows: list[dict]) -> None:
    print("\n| dataset | pairs | warped cases | within 0.5 px & 0.2 deg (rel) | (abs) | shift err p50 / p95 px | "
          "rot err p50 / p95 deg | confidence < 0.05 | unwarped aligned (<= 2 px) | unwarped max displacement p50 / "
          "p95 px | unwarped unknown | registering the unwarped pair raises gradient NCC | size | CPU s / pair |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['pairs']} | {r['cases']} | {r['rel_ok']:.0f} % | {r['abs_ok']:.0f} % | "
              f"{r['shift_p50']:.2f} / {r['shift_p95']:.2f} | {r['rot_p50']:.3f} / {r['rot_p95']:.3f} | "
              f"{r['low_conf']:.0f} % | {r['aligned']:.0f} % | {r['base_p50']:.1f} / {r['base_p95']:.1f} | "
              f"{r['unknown']:.0f} % | {r['ncc_up']:.0f} % | {r['size']} | {r['cpu_s']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
