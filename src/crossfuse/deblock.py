"""JPEG deblocking of coarsely compressed source frames, taken off before fusion.

A JPEG coder quantizes each 8×8 block's DCT coefficients with a step table; at low quality (large steps) the decoded
frame carries block edges and ringing that a fusion network passes on. The steps can be read back from the decoded
pixels alone: the first two AC coefficients of the aligned block DCT cluster at multiples of their step. The largest
step at which they are periodic (mean ``cos(2π c / q)`` over the coefficients at least 0.4 q) is refined to
the median of the first multiple and mapped to the nearest quality of the IJG tables (what libjpeg, OpenCV and most
cameras use). A frame whose quality reads at most :data:`LIMIT` is deblocked by re-coding it at that quality on every
one of the 64 shifts of the 8×8 grid and averaging the shifted results (Nosratinia, "Enhancement of JPEG-compressed
images by re-application of JPEG", J. VLSI Signal Process. 2001): each shift keeps what the quantizer allows and
smooths what it invents at block edges.

Frames that were never coded coarsely (PNGs, camera JPEGs at quality ~75 and above, anything resampled, noisy or
tone-mapped after coding, which breaks the periodicity) read 100 and are returned as they are, so the step is safe to
leave on. Only 8-bit planes are handled: JPEG is 8-bit. Why crossfuse-robust10 declares it, and the measured gain:
docs/training.md "H52".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from crossfuse.io import quantize

LIMIT = 40  # deblock at an estimated quality <= this (camera / web JPEGs are ~75-95; the stored datasets read 75)
PERIODIC = 0.7  # mean cos(2 pi c / q) above which the coefficients count as multiples of q
MIN_COEFFS = 30  # nonzero coefficients needed to read a step
MAX_STEP = 120  # the (0, 1) step at IJG quality 5 is 110
MAX_BLOCKS = 2048  # blocks read for the estimate (evenly strided; a megapixel has 16384: every 8th)
SHIFTS = 8  # grid shifts per axis for the re-coding average (8: all 64)
_IJG_AC = (11.0, 12.0)  # IJG luminance table entries at (0, 1) and (1, 0)


def ijg_steps(quality: int) -> tuple[int, int]:
    """The IJG luminance quantization steps at (0, 1) and (1, 0) for ``quality`` in 1..100."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return tuple(max(1, int((base * scale + 50) // 100)) for base in _IJG_AC)  # type: ignore[return-value]


def first_ac(plane: np.ndarray, max_blocks: int = MAX_BLOCKS) -> tuple[np.ndarray, np.ndarray]:
    """The (0, 1) and (1, 0) DCT coefficients (JPEG's scaling) of the aligned 8×8 blocks of an (H, W) plane."""
    h, w = plane.shape[0] // 8 * 8, plane.shape[1] // 8 * 8
    blocks = plane[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    blocks = blocks[:: max(1, len(blocks) // max_blocks)].astype(np.float32)  # subsample before converting
    k = np.arange(8)
    basis = (0.5 * np.cos(np.pi * (2 * k + 1) / 16)).astype(np.float32)  # orthonormal DCT-II row 1, times row 0's
    rows, cols = blocks.sum(axis=2), blocks.sum(axis=1)  # (0, 1) varies along columns, (1, 0) along rows
    return cols @ basis / np.sqrt(8), rows @ basis / np.sqrt(8)


def quant_step(coeffs: np.ndarray, min_step: int = 2) -> float:
    """The quantization step of one coefficient's values, or 0 when none >= ``min_step`` is found."""
    a = np.abs(coeffs)
    for q in range(MAX_STEP, min_step - 1, -1):  # the largest periodic step; its divisors are periodic too
        kept = a[a >= 0.4 * q]  # below q/2, so values at q/2 (the true step when q is its double) are kept
        if len(kept) >= MIN_COEFFS and np.mean(np.cos(2 * np.pi * kept / q)) >= PERIODIC:
            first = a[(a >= q / 2) & (a < 1.5 * q)]
            return float(np.median(first))
    return 0.0


def jpeg_quality(plane: np.ndarray, limit: int = LIMIT) -> int:
    """The IJG quality of the last coarse JPEG coding of an 8-bit (H, W) plane, read from its pixels; 100 when its
    coefficients are not periodic (never coded, or coded finer than ``limit``: steps are searched down to the one
    at ``limit``, with a margin, and no further)."""
    if plane.ndim != 2:
        raise ValueError(f"expected an (H, W) plane, got shape {plane.shape}")
    floor = int(0.8 * ijg_steps(limit)[0])
    steps = [quant_step(c, floor) for c in first_ac(plane)]
    if steps[0] == 0.0:
        return 100

    def mismatch(q: int) -> float:
        s = ijg_steps(q)
        return abs(s[0] - steps[0]) + (abs(s[1] - steps[1]) if steps[1] else 0.0)

    return min(range(100, 0, -1), key=mismatch)  # ties (equal steps): the mildest quality


def recode_average(plane: np.ndarray, quality: int, shifts: int = SHIFTS) -> np.ndarray:
    """Mean over ``shifts``² grid shifts of JPEG re-coding at ``quality`` (8-bit (H, W) in, float32 0-255 out).

    The rows of shifts run on threads (OpenCV's coder releases the GIL); every partial sum is a sum of 8-bit integers,
    exact in float32, so the result does not depend on the number of threads or the order."""
    h, w = plane.shape
    padded = cv2.copyMakeBorder(np.ascontiguousarray(plane), 8, 8, 8, 8, cv2.BORDER_REFLECT)
    offsets = range(0, 8, 8 // shifts)

    def row_of_shifts(dy: int) -> np.ndarray:
        acc = np.zeros((h, w), np.float32)
        for dx in offsets:
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(padded[dy:, dx:]), [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError("OpenCV could not JPEG-encode a plane")
            acc += cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)[8 - dy:8 - dy + h, 8 - dx:8 - dx + w]
        return acc

    workers = min(len(offsets), os.cpu_count() or 1)
    total = np.zeros((h, w), np.float32)
    with ThreadPoolExecutor(workers) as pool:
        for i in range(0, len(offsets), workers):  # a batch at a time: at most 2 × workers partial sums alive
            for partial in pool.map(row_of_shifts, offsets[i:i + workers]):
                total += partial
    return total / np.float32(len(offsets) ** 2)


def deblock(plane: np.ndarray, limit: int = LIMIT) -> tuple[np.ndarray, int]:
    """``(plane', quality)``: an 8-bit (H, W) plane deblocked (rounded to 8 bits again) when its estimated JPEG
    quality is at most ``limit``, else the plane itself (same object); other dtypes are returned as they are."""
    if plane.dtype != np.uint8 or min(plane.shape) < 16:
        return plane, 100
    quality = jpeg_quality(plane, limit)
    if quality > limit:
        return plane, quality
    return quantize(recode_average(plane, quality)), quality
