"""Misregistration of an infrared image against its visible partner, and warping IR onto visible.

The two modalities look different (a warm object is bright in IR and may be dark in visible), so intensities are
never matched directly: both images become **normalised gradient fields squared** (:func:`orientation_field`), edge
orientation with weight ~1 on edges above the mean gradient magnitude, less on weaker ones, and no polarity. Frames
with a side above ``WORK_MAX_SIDE`` are halved first (less sensor noise, and 4x faster; the warp is scaled back). An
exhaustive rotation search with FFT cross-correlation of the fields on the coarse pyramid levels gives a first rigid
warp; then the sub-pixel shifts of 5 x 4 blocks, RANSAC (``RANSAC_PX``) to drop blocks that disagree, and a score-
weighted similarity fit on the others, twice (:func:`_refine`). Confidence: fraction of agreeing blocks times their
mean match score; below ``MIN_CONFIDENCE`` the verdict is ``unknown``. (ECC and phase correlation on gradient-
magnitude maps, the first things tried, converged to wrong optima on most cross-modal pairs: docs/robustness.md.)

Convention: the warp ``W`` (2x3) maps visible pixel coordinates to IR pixel coordinates (the IR content that belongs
at visible pixel ``p`` sits at ``W p``). It is reported as rotation/scale about the image centre plus the
displacement of the centre: ``dx, dy`` is how far the IR content sits from where it should be, in visible pixels
(IR moved right by 3 px -> ``dx = +3``); ``rotation_deg`` uses OpenCV's sign (``cv2.getRotationMatrix2D``: positive
= counter-clockwise on screen), so an IR made with :func:`crossfuse.degrade.rigid_warp` ``(dx, dy, deg)`` is
reported as exactly those numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from scipy import fft as sfft

from crossfuse import io as cio

DEFAULT_THRESHOLD = 2.0  # px: largest displacement of an image corner still called aligned
MIN_CONFIDENCE = 0.05  # below: too little structure shared by the modalities, the verdict is "unknown"
SIGMA = 1.0  # px: Gaussian blur before the gradients
COARSEST = 96  # px: the pyramid stops halving when the shorter side would fall below this
GRID = (5, 4)  # blocks matched at the working resolution
BLOCK_DIV = 2.5  # block side: min(h, w, max(h, w) / BLOCK_DIV) at the working resolution
MOTION = "similarity"  # or "rigid" (rotation + shift; the scale is then only reported)
ITERATIONS = 2  # block-fit rounds
WORK_MAX_SIDE = 400  # px: larger frames are estimated at half resolution (repeatedly) ...
WORK_MIN_SIDE = 0  # px: ... unless the halved frame's shorter side would fall below this
WEIGHT_POWER = 1.0  # block weight in the final fit: match score ** this
RANSAC_PX = 3.0  # px at the working resolution: blocks farther than this from the fit are left out
EPS_FACTOR = 1.0  # the fields' eps / mean gradient magnitude (0.25 before 2026-11-29: weak edges counted fully)
# issue #10 candidates (docs/robustness.md, "Noisy and blurred visible frames on small pairs"); defaults: off
NOISE_GATE = 0.0  # grey levels: an image whose noise estimate exceeds this is pre-smoothed (0: off, the default)
NOISE_GATE_INPUT = 1  # 1: the gate reads the noise at the input resolution; 0: at the working resolution
NOISE_TARGET = 3.0  # grey levels: the pre-smoothing brings white noise of the estimated sigma down to about this
NOISE_MAX_SIGMA = 4.0  # px: largest pre-smoothing (the total with SIGMA)
NOISE_PAIR = 1  # 1: NOISE_EPS_FACTOR for both fields when either image is noisy; 0: for the noisy image's only
NOISE_EPS_FACTOR = 0.0  # the field eps / mean gradient magnitude of an image above NOISE_GATE (0: EPS_FACTOR)


@dataclass(frozen=True)
class Alignment:
    dx: float
    dy: float
    rotation_deg: float
    scale: float
    confidence: float
    matrix: np.ndarray  # 2x3, visible -> IR pixel coordinates
    displacement: float  # largest displacement over the four image corners, px

    def aligned(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        return self.displacement <= threshold

    def verdict(self, threshold: float = DEFAULT_THRESHOLD) -> str:
        """``yes`` / ``no`` (largest corner displacement within / above ``threshold``), or ``unknown`` when the
        confidence is below :data:`MIN_CONFIDENCE`: a low-confidence estimate is not evidence of misregistration."""
        if self.confidence < MIN_CONFIDENCE:
            return "unknown"
        return "yes" if self.aligned(threshold) else "no"


def orientation_field(img: np.ndarray, sigma: float | None = None, eps_factor: float | None = None) -> np.ndarray:
    """Normalised gradient field squared, ``(gx + i gy)^2 / (|g|^2 + eps^2)`` (complex64): edge orientation,
    polarity-free (a bright-on-dark edge in IR matches a dark-on-bright one in the visible image), with weight ~1 on
    edges well above ``eps`` and ~(|g| / eps)^2 on weaker ones (noise, haze, JPEG blocks, quantisation steps); ~0
    in flat regions. ``eps`` is ``eps_factor`` times the mean gradient magnitude. ``None``: the module's
    :data:`SIGMA` / :data:`EPS_FACTOR`, read at call time."""
    sigma = SIGMA if sigma is None else sigma
    eps_factor = EPS_FACTOR if eps_factor is None else eps_factor
    x = np.asarray(img)
    g = cio.rgb_to_gray(x) if x.ndim == 3 else x
    g = cv2.GaussianBlur(g.astype(np.float32), (0, 0), sigma)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag2 = gx * gx + gy * gy
    eps2 = (eps_factor * float(np.sqrt(mag2).mean()) + 1e-3) ** 2
    z = (gx + 1j * gy) ** 2 / (mag2 + eps2)
    h, w = g.shape
    return (z * cv2.createHanningWindow((w, h), cv2.CV_32F)).astype(np.complex64)


def noise_sigma(g: np.ndarray) -> float:
    """Robust estimate of an image's white-noise sigma (grey levels): the median absolute response of the
    Laplacian-difference mask ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` (Immerkaer 1996; its response to white noise of sigma
    s has sigma 6 s), divided by 0.6745 * 6 -- the median, not the mean, so that edges and texture count little."""
    m = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    r = cv2.filter2D(np.asarray(g, dtype=np.float32), cv2.CV_32F, m)[1:-1, 1:-1]
    return float(np.median(np.abs(r))) / (0.6745 * 6.0)


def _noise_gate(g: np.ndarray) -> bool:
    """Whether :data:`NOISE_GATE` (when on) calls ``g`` noisy."""
    return NOISE_GATE > 0 and noise_sigma(g) > NOISE_GATE


def denoise(g: np.ndarray, noisy: bool) -> tuple[np.ndarray, float | None]:
    """A ``noisy`` image (its :func:`noise_sigma` above :data:`NOISE_GATE`, read at the input resolution, or at the
    working one with :data:`NOISE_GATE_INPUT` 0) Gaussian-smoothed:
    the total blur with the fields' :data:`SIGMA` is the sigma that brings white noise of the level estimated here
    down to :data:`NOISE_TARGET` (a 2-D Gaussian of sigma b divides white noise by about 2 sqrt(pi) b), at most
    :data:`NOISE_MAX_SIGMA`. Other images are returned unchanged. Second value: the eps factor of this image's fields
    (``None``: :data:`EPS_FACTOR`; :data:`NOISE_EPS_FACTOR` for a noisy image)."""
    if not noisy:
        return g, None
    n = noise_sigma(g)
    total = min(NOISE_MAX_SIGMA, n / (2.0 * math.sqrt(math.pi) * NOISE_TARGET))
    extra = math.sqrt(max(total * total - SIGMA * SIGMA, 0.0))
    return (cv2.GaussianBlur(g, (0, 0), extra) if extra > 0.1 else g), (NOISE_EPS_FACTOR or None)


def _pyramid(x: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(x, dtype=np.float32)]
    while min(out[-1].shape[:2]) // 2 >= COARSEST:
        out.append(cv2.pyrDown(out[-1]))
    return out[::-1]  # coarsest first


def _peak(surface: np.ndarray, centre: tuple[float, float], radius: float) -> tuple[float, float, float]:
    """Sub-pixel (parabolic) location and height of the highest value of a circular correlation surface within
    ``radius`` of the shift ``centre`` (shifts wrap: index k stands for k or k - size)."""
    h, w = surface.shape
    sy = np.fft.fftfreq(h, 1.0 / h)[:, None]
    sx = np.fft.fftfreq(w, 1.0 / w)[None, :]
    masked = np.where((sx - centre[0]) ** 2 + (sy - centre[1]) ** 2 <= radius ** 2, surface, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), masked.shape)

    def sub(a: float, b: float, c: float) -> float:
        den = a - 2 * b + c
        return 0.5 * (a - c) / den if den < 0 else 0.0

    fx = sub(surface[iy, ix - 1], surface[iy, ix], surface[iy, (ix + 1) % w])
    fy = sub(surface[iy - 1, ix], surface[iy, ix], surface[(iy + 1) % h, ix])
    return float(sx[0, ix] + fx), float(sy[iy, 0] + fy), float(surface[iy, ix])


def _match(vis_field: np.ndarray, ir_img: np.ndarray, deg: float, centre: tuple[float, float],
           radius: float, eps_ir: float | None = None) -> tuple[float, float, float]:
    """IR rotated back by ``deg`` about the centre, then the translation of its best match with the visible field:
    ``(tx, ty, score)``, the shift of the derotated IR content in this level's pixels."""
    h, w = ir_img.shape[:2]
    rot = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), -deg, 1.0)
    back = cv2.warpAffine(ir_img, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    f_ir = sfft.fft2(orientation_field(back, eps_factor=eps_ir))
    surface = sfft.ifft2(np.conj(vis_field) * f_ir).real
    return _peak(surface, centre, radius)


def _best_angle(vis_f: np.ndarray, ir_img: np.ndarray, angles: np.ndarray, centre: tuple[float, float],
                radius: float, eps_ir: float | None = None) -> tuple[float, tuple[float, float, float]]:
    """The angle of ``angles`` (evenly spaced) with the highest match, refined by a parabola through its
    neighbours, and the match there."""
    scores = [_match(vis_f, ir_img, a, centre, radius, eps_ir) for a in angles]
    k = int(np.argmax([sc[2] for sc in scores]))
    best = float(angles[k])
    if 0 < k < len(angles) - 1:
        a, b, c = scores[k - 1][2], scores[k][2], scores[k + 1][2]
        den = a - 2 * b + c
        if den < 0:
            best += 0.5 * (a - c) / den * float(angles[1] - angles[0])
    return best, _match(vis_f, ir_img, best, centre, radius, eps_ir)


def describe(warp: np.ndarray, shape: tuple[int, int], confidence: float) -> Alignment:
    """Centre displacement, rotation and scale of a visible->IR warp on an image of ``shape`` (H, W)."""
    h, w = shape
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    lin = warp[:, :2]
    d = lin @ c + warp[:, 2] - c
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    disp = np.hypot(*(corners @ lin.T + warp[:, 2] - corners).T).max()
    return Alignment(float(d[0]), float(d[1]), math.degrees(math.atan2(lin[0, 1], lin[0, 0])),
                     float(math.sqrt(abs(np.linalg.det(lin)))), confidence, warp, float(disp))


def _coarse(p_ir: list[np.ndarray], p_vi: list[np.ndarray], max_shift: float, max_rotation: float,
            eps: tuple[float | None, float | None] = (None, None)) -> np.ndarray:
    """Rotation and shift by exhaustive angle search on the coarsest level (0.5 deg steps, shifts within
    ``max_shift`` full-resolution px), refined with halved angle steps on the finer levels given: the warp (2x3)
    at the resolution of the last level given."""
    deg, step = 0.0, 0.5
    angles = np.arange(-max_rotation, max_rotation + 1e-9, step)
    shift, radius = (0.0, 0.0), max_shift * 2.0 ** (1 - len(p_ir)) + 1
    for l_ir, l_vi in zip(p_ir, p_vi):
        vis_f = sfft.fft2(orientation_field(l_vi, eps_factor=eps[1]))
        deg, (tx, ty, _) = _best_angle(vis_f, l_ir, angles, shift, radius, eps[0])
        step /= 2.0
        angles = deg + step * np.arange(-1, 2)
        shift, radius = (2 * tx, 2 * ty), 3.0  # next level: twice finer, search near the estimate
    h, w = p_vi[-1].shape[:2]
    warp = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, 1.0)
    warp[:, 2] += warp[:, :2] @ np.array([tx, ty])  # the derotated shift back in the IR frame
    return warp


def _local_shifts(vi: np.ndarray, ir: np.ndarray, grid: tuple[int, int] = (4, 3), radius: float = 10.0,
                  eps: tuple[float | None, float | None] = (None, None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block centres, the sub-pixel shift of ``ir`` against ``vi`` in each block, and the block's match score
    (normalised correlation of the orientation fields, 0..1)."""
    h, w = vi.shape[:2]
    bs = int(min(h, w, max(h, w) / BLOCK_DIV)) // 2 * 2
    pts, shifts, scores = [], [], []
    for cy in np.linspace(bs / 2, h - bs / 2, grid[1]):
        for cx in np.linspace(bs / 2, w - bs / 2, grid[0]):
            y0, x0 = int(round(cy - bs / 2)), int(round(cx - bs / 2))
            a = orientation_field(vi[y0:y0 + bs, x0:x0 + bs], eps_factor=eps[1])
            b = orientation_field(ir[y0:y0 + bs, x0:x0 + bs], eps_factor=eps[0])
            energy = float(np.sqrt((np.abs(a) ** 2).sum() * (np.abs(b) ** 2).sum())) + 1e-9
            tx, ty, peak = _peak(sfft.ifft2(np.conj(sfft.fft2(a)) * sfft.fft2(b)).real, (0.0, 0.0), radius)
            pts.append((x0 + (bs - 1) / 2.0, y0 + (bs - 1) / 2.0))
            shifts.append((tx, ty))
            scores.append(peak / energy)
    return np.array(pts), np.array(shifts), np.array(scores)


def rigid_fit(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, with_scale: bool = False) -> np.ndarray:
    """Weighted least-squares rotation + translation (+ uniform scale with ``with_scale``; Umeyama 1991) taking
    ``src`` points to ``dst`` (2x3)."""
    wts = np.clip(weights, 1e-6, None)[:, None]
    ms, md = (wts * src).sum(0) / wts.sum(), (wts * dst).sum(0) / wts.sum()
    cov = ((src - ms) * wts).T @ (dst - md)
    ang = math.atan2(cov[0, 1] - cov[1, 0], cov[0, 0] + cov[1, 1])
    scale = math.hypot(cov[0, 1] - cov[1, 0], cov[0, 0] + cov[1, 1]) / float((wts * (src - ms) ** 2).sum())
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]]) * (scale if with_scale else 1)
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def _aug(warp: np.ndarray) -> np.ndarray:
    return np.vstack([warp, [0.0, 0.0, 1.0]])


def _refine(g_ir: np.ndarray, g_vi: np.ndarray, warp: np.ndarray,
            eps: tuple[float | None, float | None] = (None, None)) -> tuple[np.ndarray, float, float]:
    """Block-shift refinement of ``warp``: sub-pixel shifts of ``GRID`` blocks, RANSAC (``RANSAC_PX``) for the
    blocks that agree, a weighted fit on those, ``ITERATIONS`` times. Returns the warp, the confidence (fraction of
    agreeing blocks times their mean match score) and the similarity fit's scale."""
    conf, scale = 0.0, 1.0
    for _ in range(ITERATIONS):
        pts, d, score = _local_shifts(g_vi, register(g_ir, warp), GRID, eps=eps)
        fit, inl = cv2.estimateAffinePartial2D(pts, pts + d, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                               maxIters=500, confidence=0.999, refineIters=10)
        if fit is None or int(inl.sum()) < 3:
            break
        ok = inl.ravel().astype(bool)
        scale = float(np.sqrt(abs(np.linalg.det(fit[:, :2]))))
        step = rigid_fit(pts[ok], pts[ok] + d[ok], np.clip(score[ok], 0, 1) ** WEIGHT_POWER, MOTION == "similarity")
        warp = (_aug(warp) @ _aug(step))[:2]
        conf = float(ok.mean() * np.clip(score[ok], 0, 1).mean())
    return warp, conf, scale


def estimate(ir: np.ndarray, vi: np.ndarray, *, max_shift: float = 40.0, max_rotation: float = 5.0,
             _noisy: tuple[bool, bool] | None = None) -> Alignment:
    """The misregistration of ``ir`` against ``vi`` (same height and width). Frames with a side above
    ``WORK_MAX_SIDE`` are halved first (repeatedly). Then a coarse rotation + shift search on the pyramid (all
    levels but the finest), then :func:`_refine`."""
    ir, vi = np.asarray(ir), np.asarray(vi)
    if ir.shape[:2] != vi.shape[:2]:
        raise ValueError(f"IR {ir.shape[1]}x{ir.shape[0]} and visible {vi.shape[1]}x{vi.shape[0]} differ in size; "
                         "check-align measures the misregistration of same-size pairs")
    g_ir = (cio.rgb_to_gray(ir) if ir.ndim == 3 else ir).astype(np.float32)
    g_vi = (cio.rgb_to_gray(vi) if vi.ndim == 3 else vi).astype(np.float32)
    if _noisy is None and NOISE_GATE_INPUT:  # the noise gate, at the input resolution
        _noisy = _noise_gate(g_ir), _noise_gate(g_vi)
    # large frames: estimate at half resolution (less noise, 4x faster)
    if max(g_vi.shape) > WORK_MAX_SIDE and min(g_vi.shape) // 2 >= WORK_MIN_SIDE:
        half = estimate(cv2.pyrDown(g_ir), cv2.pyrDown(g_vi), max_shift=max_shift / 2, max_rotation=max_rotation,
                        _noisy=_noisy)
        warp = half.matrix.copy()
        warp[:, 2] *= 2.0  # pyrDown keeps pixel 2i at half-resolution pixel i
        return replace(describe(warp, vi.shape[:2], half.confidence), scale=half.scale)
    if _noisy is None:  # NOISE_GATE_INPUT off: the gate at the working resolution
        _noisy = _noise_gate(g_ir), _noise_gate(g_vi)
    (g_ir, e_ir), (g_vi, e_vi) = denoise(g_ir, _noisy[0]), denoise(g_vi, _noisy[1])
    if NOISE_PAIR and (e_ir or e_vi):  # a noisy image: weak edges of both count less
        e_ir = e_vi = e_ir or e_vi
    p_ir, p_vi = _pyramid(g_ir), _pyramid(g_vi)
    n = max(1, len(p_ir) - 1)
    warp = _coarse(p_ir[:n], p_vi[:n], max_shift, max_rotation, (e_ir, e_vi))
    if len(p_ir) > 1:
        warp[:, 2] *= 2.0  # from the half-resolution level to full resolution
    warp, conf, scale = _refine(g_ir, g_vi, warp, (e_ir, e_vi))
    a = describe(warp, vi.shape[:2], conf)
    return a if MOTION == "similarity" else replace(a, scale=scale)


def register(ir: np.ndarray, warp: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``ir`` resampled onto the visible frame: ``out(p) = ir(W p)`` (OpenCV ``interpolation``, bilinear by default:
    cubic and Lanczos-4 did worse on validation, docs/robustness.md), border replicated, same dtype."""
    h, w = ir.shape[:2]
    src = ir.astype(np.float32)
    out = cv2.warpAffine(src, warp.astype(np.float64), (w, h), flags=interpolation | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return out if ir.dtype == np.float32 else np.clip(np.round(out), 0, np.iinfo(ir.dtype).max).astype(ir.dtype)


def valid_region(warp: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice]:
    """An axis-aligned box of the visible frame (H, W) whose pixels all sample the IR frame under ``warp`` (no
    replicated border in :func:`register`'s output), as ``(rows, cols)`` slices: bounded by the inner corners of the
    IR frame's outline, which is exact for a pure shift and for the small rotations of check-align (a few degrees)
    a little smaller than the largest such box."""
    h, w = shape
    inv = cv2.invertAffineTransform(warp.astype(np.float64))  # IR -> visible
    tl, tr, bl, br = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64) @ inv[:, :2].T \
        + inv[:, 2]
    x0, x1 = math.ceil(max(0.0, tl[0], bl[0])), math.floor(min(w - 1.0, tr[0], br[0]))
    y0, y1 = math.ceil(max(0.0, tl[1], tr[1])), math.floor(min(h - 1.0, bl[1], br[1]))
    return slice(y0, max(y0, y1 + 1)), slice(x0, max(x0, x1 + 1))


# --------------------------------------------------------------------------------------------------- files

CSV_HEADER = ("pair", "dx", "dy", "rotation_deg", "scale", "confidence", "aligned", "max_displacement")


def list_pairs(ir: str | Path, vi: str | Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """``(stem, ir_file, vi_file)`` for two files or two folders matched by stem, and the unpaired files."""
    ir, vi = Path(ir), Path(vi)
    if ir.is_dir() and vi.is_dir():
        m = cio.match_folders({"ir": ir, "vi": vi})
        return [(s, p["ir"], p["vi"]) for s, p in m.items], list(m.problems)
    for p in (ir, vi):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
    if ir.is_dir() or vi.is_dir():
        raise ValueError(f"--ir {ir} and --vi {vi} must both be files or both be folders")
    return [(ir.stem, ir, vi)], []


def check_pair(ir_path: Path, vi_path: Path) -> tuple[Alignment, np.ndarray, np.ndarray]:
    """Read one pair (sizes must match) and estimate its misregistration; returns the arrays too."""
    ir, vi = cio.read_pair(ir_path, vi_path)
    return estimate(ir, vi), ir, vi


def csv_row(stem: str, a: Alignment, threshold: float) -> dict[str, str]:
    """One pair's row under :data:`CSV_HEADER` (check-align's and register's CSV)."""
    return dict(zip(CSV_HEADER, (stem, f"{a.dx:.3f}", f"{a.dy:.3f}", f"{a.rotation_deg:.3f}", f"{a.scale:.4f}",
                                 f"{a.confidence:.3f}", a.verdict(threshold), f"{a.displacement:.3f}"), strict=True))
