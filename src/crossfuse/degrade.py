"""File-level corruptions of infrared/visible pairs for robustness benchmarks (NumPy/SciPy/OpenCV, float64).

:mod:`crossfuse.corruptions` is the batch-level torch version used in training; this module writes fixed corrupted
copies of a dataset, in the layout of TNO-C (``../shared/bench/make_corrupted.py``)::

    TREE/<condition>@<severity>/ir/<stem>.png   TREE/<condition>@<severity>/vi/<stem>.png   TREE/manifest.json

* Every condition is ``fn(ir, vi, s, rng) -> (ir, vi)`` on float64 arrays on the 0-255 scale (IR gray ``(H, W)``;
  visible gray or colour in OpenCV's **BGR** order, so the random draws match make_corrupted.py's channel by
  channel); the result is rounded and clipped to uint8. Severity 0 is the identity; 1..5 grow in strength with the
  physical scales of :data:`SCALES` (docs/robustness.md has the table).
* Deterministic per (condition, severity, file): numpy's PCG64 seeded with CRC32 of ``"<condition>|<s:g>|<stem>"``
  -- the scheme of make_corrupted.py, whose eight conditions keep their names and formulas here, so
  ``crossfuse corrupt --severities 1,2`` on TNO reproduces TNO-C byte for byte.
* ``shift_px`` and ``rotate_deg`` are sweeps whose severity IS the physical value (pixels, degrees).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from crossfuse import io as cio
from crossfuse.errors import UnknownNameError

Planes = tuple[np.ndarray, np.ndarray]
Degradation = Callable[[np.ndarray, np.ndarray, float, np.random.Generator], Planes]


# --------------------------------------------------------------------------------------------------- primitives


def low_light(x: np.ndarray, s: float) -> np.ndarray:
    return 255.0 * (1.0 / (1.0 + 0.5 * s)) * (x / 255.0) ** (1.0 + 0.8 * s)


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    if x.ndim == 2:
        return ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=3.0)
    return np.stack([ndimage.gaussian_filter(x[..., c], sigma, mode="reflect", truncate=3.0)
                     for c in range(x.shape[2])], axis=2)


def add_haze(x: np.ndarray, beta: float, airlight: float) -> np.ndarray:
    """Koschmieder: ``x t + A (1 - t)``, ``t = exp(-beta d)``, depth d from 1.5 (top row) to 0.5 (bottom row)."""
    t = np.exp(-beta * np.linspace(1.5, 0.5, x.shape[0])[:, None])
    return x * (t[..., None] if x.ndim == 3 else t) + airlight * (1.0 - (t[..., None] if x.ndim == 3 else t))


def jpeg_roundtrip(x: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cio.quantize(x), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float64)


def rigid_matrix(shape: tuple[int, ...], dx: float, dy: float, deg: float, scale: float = 1.0) -> np.ndarray:
    """The 2x3 matrix of :func:`rigid_warp` for an (H, W, ...) frame: rotation by ``deg`` (OpenCV sign) and
    ``scale`` about the centre, then the shift ``(dx, dy)``. ``crossfuse.registration.describe`` reads it back as
    exactly these numbers (its warp convention)."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, scale)
    m[:, 2] += (dx, dy)
    return m


def rigid_warp(x: np.ndarray, dx: float, dy: float, deg: float, scale: float = 1.0) -> np.ndarray:
    """Rotate by ``deg`` (OpenCV sign: counter-clockwise on screen) and scale about the centre, then shift by
    ``(dx, dy)``: the content at the centre moves by exactly ``(dx, dy)``. Bilinear, border replicated."""
    h, w = x.shape[:2]
    return cv2.warpAffine(x, rigid_matrix(x.shape, dx, dy, deg, scale), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def filter2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.filter2D(x, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised straight-line kernel of ``length`` pixels at ``angle_deg`` (motion blur, rain streaks)."""
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n))
    c = n // 2
    t = math.radians(angle_deg)
    for r in np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, 4 * n):
        k[int(round(c - r * math.sin(t))), int(round(c + r * math.cos(t)))] = 1.0
    return k / k.sum()


def disk_kernel(radius: float) -> np.ndarray:
    n = int(math.ceil(radius))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    return (np.hypot(xx, yy) <= radius + 0.5).astype(np.float64)


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=n)


# --------------------------------------------------------------------------------------------------- conditions
# make_corrupted.py's eight (TNO-C), same names and formulas


def vis_low_light(ir, vi, s, rng):
    return ir, low_light(vi, s)


def vis_noise(ir, vi, s, rng):
    return ir, vi + rng.standard_normal(vi.shape) * 10.0 * s


def vis_night(ir, vi, s, rng):
    return ir, low_light(vi, s) + rng.standard_normal(vi.shape) * 5.0 * s


def vis_blur(ir, vi, s, rng):
    return ir, gaussian_blur(vi, 1.5 * s)


def haze(ir, vi, s, rng):
    a = rng.uniform(0.8, 1.0) * 255.0
    return add_haze(ir, 0.15 * s, a), add_haze(vi, 0.6 * s, a)


def ir_noise_stripe(ir, vi, s, rng):
    h, w = ir.shape
    noisy = ir + rng.standard_normal(ir.shape) * 8.0 * s
    return noisy + rng.standard_normal((1, w)) * 8.0 * s + rng.standard_normal((h, 1)) * 3.0 * s, vi


JPEG_QUALITY = {1: 30, 2: 10, 3: 5, 4: 3, 5: 2}


def jpeg(ir, vi, s, rng):
    q = JPEG_QUALITY.get(s, max(2, int(round(100 * math.exp(-1.2 * s)))))  # between the table's levels: formula
    return jpeg_roundtrip(ir, q), jpeg_roundtrip(vi, q)


def misregistration(ir, vi, s, rng):
    sx, sy, sr = _signs(rng, 3)
    return rigid_warp(ir, sx * 2 * s, sy * 2 * s, sr * s), vi


# the rest of the suite


def vis_overexposure(ir, vi, s, rng):
    return ir, 255.0 * (vi / 255.0 * 2.0 ** (0.5 * s)) ** (1.0 / (1.0 + 0.1 * s))


def vis_poisson(ir, vi, s, rng):
    photons = 1000.0 / 3.0 ** (s - 1)  # photo-electrons at full scale
    shot = rng.poisson(np.clip(vi, 0, 255) / 255.0 * photons) / photons * 255.0
    return ir, shot + rng.standard_normal(vi.shape) * 2.0 * s  # + read noise


def vis_motion_blur(ir, vi, s, rng):
    return ir, filter2d(vi, line_kernel(1.0 + 4.0 * s, rng.uniform(0.0, 180.0)))


def vis_defocus(ir, vi, s, rng):
    return ir, filter2d(vi, disk_kernel(1.0 * s))


def vis_rain(ir, vi, s, rng):
    h, w = vi.shape[:2]
    drops = (rng.random((h, w)) < 0.004 * s).astype(np.float64)
    streaks = cv2.filter2D(drops, -1, line_kernel(8.0 + 4.0 * s, 90.0 + rng.uniform(-15.0, 15.0)) * 4.0)
    alpha = np.clip(streaks, 0.0, 0.7)
    alpha = alpha[..., None] if vi.ndim == 3 else alpha
    return ir, vi * (1.0 - alpha) + 230.0 * alpha


def ir_noise(ir, vi, s, rng):
    return ir + rng.standard_normal(ir.shape) * 6.0 * s, vi


def ir_stripe(ir, vi, s, rng):
    h, w = ir.shape
    return ir + rng.standard_normal((1, w)) * 6.0 * s + rng.standard_normal((h, 1)) * 2.0 * s, vi


def ir_low_contrast(ir, vi, s, rng):
    c = 1.0 - 0.15 * s
    return ir.mean() + c * (ir - ir.mean()), vi


def drmf_ir(ir, vi, s, rng):
    """DRMF-style thermal degradation (Gaussian sigma 15 + column stripes sigma 10 at s = 1, linear in s)."""
    w = ir.shape[1]
    return ir + rng.standard_normal(ir.shape) * 15.0 * s + rng.standard_normal((1, w)) * 10.0 * s, vi


def misreg_shift(ir, vi, s, rng):
    t = rng.uniform(0.0, 2.0 * math.pi)
    return rigid_warp(ir, 2.0 * s * math.cos(t), 2.0 * s * math.sin(t), 0.0), vi


def misreg_rotation(ir, vi, s, rng):
    return rigid_warp(ir, 0.0, 0.0, _signs(rng, 1)[0] * s), vi


def misreg_scale(ir, vi, s, rng):
    return rigid_warp(ir, 0.0, 0.0, 0.0, 1.0 + _signs(rng, 1)[0] * 0.01 * s), vi


def misreg_elastic(ir, vi, s, rng):
    """Smooth random displacement field (Gaussian-filtered noise, sigma 24 px), peak 0.75 s px."""
    h, w = ir.shape
    field = [ndimage.gaussian_filter(rng.standard_normal((h, w)), 24.0, mode="reflect") for _ in range(2)]
    peak = max(float(np.abs(f).max()) for f in field) or 1.0
    dx, dy = (f * (0.75 * s / peak) for f in field)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(ir, xx + dx.astype(np.float32), yy + dy.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE), vi


def shift_px(ir, vi, s, rng):
    return rigid_warp(ir, s, 0.0, 0.0), vi


def rotate_deg(ir, vi, s, rng):
    return rigid_warp(ir, 0.0, 0.0, s), vi


# the two corruptions held out of every training pool (crossfuse.corruptions.HELD_OUT), at file level: the tensor
# versions themselves, seeded from the file's generator, so a tree and the validation of docs/protocol.md agree


def _held_out(name: str, x: np.ndarray, s: float, rng: np.random.Generator, modality: str) -> np.ndarray:
    import torch

    from crossfuse.corruptions import corrupt

    t = torch.from_numpy(np.ascontiguousarray(np.atleast_3d(x).transpose(2, 0, 1)) / 255.0)[None]
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    out = corrupt(name, t, s, g, modality)[0].numpy().transpose(1, 2, 0) * 255.0
    return out[..., 0] if x.ndim == 2 else out


def correlated_noise(ir, vi, s, rng):
    return _held_out("correlated_noise", ir, s, rng, "ir"), _held_out("correlated_noise", vi, s, rng, "vis")


def column_fpn(ir, vi, s, rng):
    return _held_out("column_fpn", ir, s, rng, "ir"), vi


DEGRADATIONS: dict[str, Degradation] = {
    "vis_low_light": vis_low_light, "vis_noise": vis_noise, "vis_night": vis_night, "vis_blur": vis_blur,
    "haze": haze, "ir_noise_stripe": ir_noise_stripe, "jpeg": jpeg, "misregistration": misregistration,
    "vis_overexposure": vis_overexposure, "vis_poisson": vis_poisson, "vis_motion_blur": vis_motion_blur,
    "vis_defocus": vis_defocus, "vis_rain": vis_rain, "ir_noise": ir_noise, "ir_stripe": ir_stripe,
    "ir_low_contrast": ir_low_contrast, "drmf_ir": drmf_ir, "misreg_shift": misreg_shift,
    "misreg_rotation": misreg_rotation, "misreg_scale": misreg_scale, "misreg_elastic": misreg_elastic,
    "shift_px": shift_px, "rotate_deg": rotate_deg, "correlated_noise": correlated_noise, "column_fpn": column_fpn,
}
TNO_C = ("vis_low_light", "vis_noise", "vis_night", "vis_blur", "haze", "ir_noise_stripe", "jpeg", "misregistration")
SWEEPS = ("shift_px", "rotate_deg")

# physical scale per condition, as a function of the severity s (the docs table is generated from this)
SCALES: dict[str, str] = {
    "vis_low_light": "VIS 255 g (x/255)^gamma, gamma = 1 + 0.8 s, g = 1/(1 + 0.5 s)",
    "vis_noise": "VIS + Gaussian noise sigma = 10 s grey levels",
    "vis_night": "vis_low_light(s) then + Gaussian sigma = 5 s",
    "vis_blur": "VIS Gaussian blur sigma = 1.5 s px",
    "haze": "both: x t + A (1 - t), t = exp(-beta d), d 1.5 (top) .. 0.5 (bottom); beta = 0.6 s VIS, 0.15 s IR",
    "ir_noise_stripe": "IR + Gaussian sigma 8 s + column offsets sigma 8 s + row offsets sigma 3 s",
    "jpeg": "both JPEG (OpenCV), quality 30, 10, 5, 3, 2 for s = 1..5",
    "misregistration": "IR shift 2 s px on each axis + rotation s deg (random signs)",
    "vis_overexposure": "VIS exposure +0.5 s EV (gain 2^(0.5 s)), tone curve gamma 1/(1 + 0.1 s), clipped",
    "vis_poisson": "VIS shot noise, 1000 / 3^(s-1) photo-electrons at full scale, + read noise sigma 2 s",
    "vis_motion_blur": "VIS linear motion blur, length 1 + 4 s px, random direction",
    "vis_defocus": "VIS defocus: disk kernel of radius s px",
    "vis_rain": "VIS rain streaks: drop density 0.4 s %, streak length 8 + 4 s px, near-vertical, opacity <= 0.7",
    "ir_noise": "IR + Gaussian noise sigma = 6 s grey levels",
    "ir_stripe": "IR column offsets sigma 6 s + row offsets sigma 2 s (fixed-pattern noise)",
    "ir_low_contrast": "IR contrast about its mean times 1 - 0.15 s",
    "drmf_ir": "DRMF IR preset: Gaussian sigma 15 s + column stripes sigma 10 s (s = 1: the recipe)",
    "misreg_shift": "IR shift of 2 s px in a random direction",
    "misreg_rotation": "IR rotation of s deg about the centre (random sign)",
    "misreg_scale": "IR scale 1 +- 0.01 s about the centre (random sign)",
    "misreg_elastic": "IR smooth elastic warp (field smoothed with sigma 24 px), peak 0.75 s px",
    "shift_px": "sweep: IR shifted right by s px (severity = pixels)",
    "rotate_deg": "sweep: IR rotated by s deg (severity = degrees)",
    "correlated_noise": "both: noise spread by a 1-px blur, std 0.03 s sqrt(0.2 + 0.8 x) of full scale (held out of "
                        "training; crossfuse.corruptions)",
    "column_fpn": "IR per-column gain and offset N(0, 0.02 s) + vertical drift 0.02 s (held out of training; "
                  "crossfuse.corruptions)",
}


def list_degradations() -> list[str]:
    return list(DEGRADATIONS)


def get_degradation(name: str) -> Degradation:
    if name not in DEGRADATIONS:
        raise UnknownNameError(f"unknown condition {name!r}; valid conditions: {', '.join(DEGRADATIONS)}")
    return DEGRADATIONS[name]


def seed_for(condition: str, severity: float, stem: str) -> int:
    return zlib.crc32(f"{condition}|{severity:g}|{stem}".encode())


def degrade_pair(condition: str, severity: float, ir: np.ndarray, vi: np.ndarray, stem: str) -> tuple[np.ndarray,
                                                                                                        np.ndarray]:
    """Corrupt one pair (float or uint8 arrays on 0-255; IR gray, visible gray or BGR): uint8 ``(ir, vi)``."""
    fn = get_degradation(condition)
    if not math.isfinite(severity) or severity < 0:
        raise ValueError(f"severity must be a finite number >= 0, got {severity}")
    ir, vi = np.asarray(ir, dtype=np.float64), np.asarray(vi, dtype=np.float64)
    if ir.ndim != 2 or ir.shape[:2] != vi.shape[:2]:
        raise ValueError(f"need a gray IR and a visible image of one size, got {ir.shape} and {vi.shape}")
    if severity > 0:
        ir, vi = fn(ir, vi, float(severity), np.random.Generator(np.random.PCG64(seed_for(condition, severity,
                                                                                              stem))))
    return cio.quantize(ir), cio.quantize(vi)


# --------------------------------------------------------------------------------------------------- files


def read_source(path: str | Path, *, ir: bool) -> np.ndarray:
    """A source image as make_corrupted.py reads it: 16-bit rounded to 8 bits; IR as 1-channel gray (OpenCV's
    integer BGR2GRAY); visible gray if its channels are equal, else BGR. float64."""
    im = cio.read_image(path)
    if im.dtype not in (np.uint8, np.uint16):
        raise cio.ImageError(f"{path}: corrupt needs 8- or 16-bit images, got {im.dtype}")
    im = cio.to_uint8(im)  # 16-bit -> round(v / 257), as make_corrupted.py
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) if ir else np.ascontiguousarray(im[..., ::-1])
    return im.astype(np.float64)


def parse_severities(spec: str | list[float]) -> list[float]:
    vals = [float(v) for v in (spec.split(",") if isinstance(spec, str) else spec) if str(v).strip()]
    bad = [v for v in vals if not math.isfinite(v) or v < 0]
    if bad or not vals:
        raise ValueError(f"severities must be numbers >= 0, got {spec!r}")
    return vals


def corrupt_dataset(data: str | Path, out: str | Path, conditions: list[str] | None = None,
                    severities: list[float] | None = None, *, overwrite: bool = False,
                    progress: bool = True) -> dict:
    """Write ``OUT/<condition>@<s>/{ir,vi}/<stem>.png`` for every pair of ``DATA/{ir,vi}`` (matched by stem) and
    ``OUT/manifest.json``. Existing files are kept (a re-run completes a tree) unless ``overwrite``. Returns the
    manifest; pairs that fail (unreadable, sizes differ) are listed in it under ``failed``."""
    from tqdm import tqdm

    conditions = list(conditions or TNO_C)
    for c in conditions:
        get_degradation(c)
    severities = severities or [1.0, 2.0]
    data, out = Path(data), Path(out)
    matched = cio.match_folders({"ir": data / "ir", "vi": data / "vi"})
    tags = [(c, s, f"{c}@{s:g}") for c in conditions for s in severities]
    failed, written = list(matched.problems), 0
    bar = tqdm(total=len(tags) * len(matched.items), desc="corrupt", unit="pair", disable=not progress)
    for stem, paths in matched.items:
        try:
            ir, vi = read_source(paths["ir"], ir=True), read_source(paths["vi"], ir=False)
            cio.check_same_size({"ir": (paths["ir"], ir), "vi": (paths["vi"], vi)})
        except (ValueError, OSError) as exc:
            failed.append(f"{stem}: {exc}")
            bar.update(len(tags))
            continue
        for cond, sev, tag in tags:
            targets = [out / tag / sub / f"{stem}.png" for sub in ("ir", "vi")]
            if overwrite or not all(t.is_file() for t in targets):
                cir, cvi = degrade_pair(cond, sev, ir, vi, stem)
                cio.write_image(targets[0], cir, overwrite=True)
                cio.write_image(targets[1], cvi if cvi.ndim == 2 else cvi[..., ::-1], overwrite=True)
            bar.update()
        written += 1
    bar.close()
    manifest = {"source": str(data), "conditions": [t for _, _, t in tags], "severities": severities,
                "pairs": written, "seed": "numpy PCG64(crc32('<condition>|<severity:g>|<stem>'))",
                "scales": {c: SCALES[c] for c in conditions}, "failed": failed}
    _write_manifest(out / "manifest.json", manifest)
    return manifest


def _write_manifest(path: Path, manifest: dict) -> None:
    """Write the manifest; a tree written in several calls keeps the conditions and scales of the earlier ones."""
    merged = dict(manifest)
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            merged["conditions"] = list(dict.fromkeys([*old.get("conditions", []), *manifest["conditions"]]))
            merged["scales"] = {**old.get("scales", {}), **manifest["scales"]}
        except (json.JSONDecodeError, AttributeError, TypeError):
            pass  # an unreadable manifest is replaced
    cio.write_bytes_atomic(path, json.dumps(merged, indent=1) + "\n", overwrite=True)
