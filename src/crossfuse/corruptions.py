"""Named image corruptions on ``(B, C, H, W)`` float tensors in ``[0, 1]`` (CrossFuse's aggressive view, and the
robustness benchmark's shifts).

Every corruption has the signature ``fn(x, severity, generator, modality) -> Tensor`` and is reached through
:func:`corrupt` (which validates the input and makes ``severity == 0`` an exact identity). Conventions:

* ``severity`` is a float >= 0: 1 = moderate, 2 = strong; the physical parameter of each corruption grows with it as
  documented in ``docs/augment.md`` (and in each function's docstring).
* Parameters are drawn **per sample** from ``generator`` (a ``torch.Generator``; ``None`` = torch's global one): the
  nominal parameter times a factor ``U[1 - JITTER, 1 + JITTER]``, so two samples of a batch differ, and a seeded
  generator reproduces a batch exactly.
* Outputs are clipped to ``[0, 1]`` and keep the input's shape, dtype and device.
* ``modality`` is ``"vis"`` or ``"ir"``; only ``haze`` depends on it (long-wave IR sees through haze far better:
  the extinction coefficient is scaled by ``IR_HAZE_FACTOR``).

No reference implementation is reproduced here: the set of corruptions is the one the CrossFuse paper lists for its
aggressive view (noise, blur, low light, contrast loss, haze, JPEG, stripe noise, misregistration), with scales in
the spirit of ImageNet-C (Hendrycks & Dietterich, ICLR 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

JITTER = 0.2
IR_HAZE_FACTOR = 0.25
MODALITIES = ("vis", "ir")

Corruption = Callable[[Tensor, float, "torch.Generator | None", str], Tensor]


# ----------------------------------------------------------------------------------------------- random helpers


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def uniform(n: int, low: float, high: float, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """``n`` draws from ``U[low, high]`` (float64 drawn on the generator's device, returned on ``like``'s)."""
    u = torch.rand(n, generator=generator, device=_gen_device(generator), dtype=torch.float64)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def jitter(n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Per-sample multiplicative factors ``U[1 - JITTER, 1 + JITTER]``."""
    return uniform(n, 1.0 - JITTER, 1.0 + JITTER, generator, like)


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=_gen_device(generator), dtype=x.dtype).to(x.device)


def _per_sample(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


# ----------------------------------------------------------------------------------------------- shared ops


def gaussian_kernel1d(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels, one row per entry of ``sigma`` (shape ``(n, size)``, ``size`` odd)."""
    r = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - (size - 1) / 2
    k = torch.exp(-0.5 * (r[None, :] / sigma[:, None].clamp_min(1e-6)) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel: tuple[int, int]) -> Tensor:
    """Separable Gaussian blur with one ``sigma`` per sample (same for both axes) and kernel ``(width, height)``.

    Borders are reflected (as torchvision's / kornia's ``gaussian_blur``); images smaller than the kernel
    half-width fall back to replicated borders. Differentiable in ``x``.
    """
    kx, ky = kernel
    if kx % 2 == 0 or ky % 2 == 0 or kx < 1 or ky < 1:
        raise ValueError(f"Gaussian kernel sizes must be odd and positive, got {kernel}")
    b, c, h, w = x.shape
    y = x.reshape(1, b * c, h, w)
    wx = gaussian_kernel1d(sigma, kx).repeat_interleave(c, dim=0).view(b * c, 1, 1, kx)
    wy = gaussian_kernel1d(sigma, ky).repeat_interleave(c, dim=0).view(b * c, 1, ky, 1)
    px, py = kx // 2, ky // 2
    mode_x = "reflect" if px < w else "replicate"
    mode_y = "reflect" if py < h else "replicate"
    y = F.conv2d(F.pad(y, (px, px, 0, 0), mode=mode_x), wx.to(y.dtype), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, py, py), mode=mode_y), wy.to(y.dtype), groups=b * c)
    return y.view(b, c, h, w)


def warp_rigid(x: Tensor, shift_xy: Tensor, angle_rad: Tensor) -> Tensor:
    """Rotate each sample by ``angle_rad`` about its centre and shift it by ``shift_xy`` pixels (bilinear, border
    replicated). ``shift_xy`` is ``(B, 2)`` (dx, dy), ``angle_rad`` is ``(B,)``."""
    b, _, h, w = x.shape
    dt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    ys = torch.arange(h, device=x.device, dtype=dt) - (h - 1) / 2
    xs = torch.arange(w, device=x.device, dtype=dt) - (w - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    cos, sin = torch.cos(angle_rad).to(dt).view(b, 1, 1), torch.sin(angle_rad).to(dt).view(b, 1, 1)
    dx, dy = shift_xy[:, 0].to(dt).view(b, 1, 1), shift_xy[:, 1].to(dt).view(b, 1, 1)
    # output pixel p samples the input at R(-a) (p - d): the content moves by +d and rotates by +a
    ux, uy = gx[None] - dx, gy[None] - dy
    sx = cos * ux + sin * uy
    sy = -sin * ux + cos * uy
    grid = torch.stack([(2 * (sx + (w - 1) / 2) + 1) / w - 1, (2 * (sy + (h - 1) / 2) + 1) / h - 1], dim=-1)
    return F.grid_sample(x.to(dt), grid, mode="bilinear", padding_mode="border", align_corners=False).to(x.dtype)


# ----------------------------------------------------------------------------------------------- corruptions


def gaussian_noise(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Additive white Gaussian noise, std ``0.04 * severity`` (severity 1 ~ 10 grey levels of 255)."""
    sigma = 0.04 * severity * jitter(x.shape[0], generator, x)
    return x + _per_sample(sigma) * randn_like(x, generator)


def poisson_noise(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Shot noise: ``Poisson(x * peak) / peak`` with ``peak = 100 / severity**2`` photons at white (severity 1:
    std 0.07 at mid-grey)."""
    peak = _per_sample(100.0 / (severity**2 * jitter(x.shape[0], generator, x)))
    lam = (x.clamp(0, 1) * peak).to(device=_gen_device(generator), dtype=torch.float64)
    counts = torch.poisson(lam, generator=generator).to(device=x.device, dtype=x.dtype)
    return counts / peak


def blur(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Gaussian defocus blur, sigma ``1.0 * severity`` pixels (kernel ``2 * ceil(3 sigma_max) + 1``)."""
    sigma = severity * jitter(x.shape[0], generator, x)
    size = 2 * math.ceil(3 * float(sigma.max())) + 1
    return gaussian_blur(x, sigma, (size, size))


def low_light(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Under-exposure: ``gain * x ** gamma`` with ``gamma = 1 + 0.8 * severity`` and ``gain = 1 / (1 + 0.5 *
    severity)`` (severity 1: gamma 1.8, gain 0.67; mid-grey 0.5 -> 0.19)."""
    j = jitter(x.shape[0], generator, x)
    gamma = _per_sample(1 + 0.8 * severity * j)
    gain = _per_sample(1 / (1 + 0.5 * severity * j))
    return gain * x.clamp(0, 1) ** gamma


def contrast(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Contrast loss towards each image's mean: ``m + (x - m) / (1 + severity)`` (severity 1 halves contrast)."""
    factor = _per_sample(1 / (1 + severity * jitter(x.shape[0], generator, x)))
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return m + (x - m) * factor


def haze(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Atmospheric scattering ``x t + A (1 - t)``, ``t = exp(-beta * depth)``, depth rising linearly from 0.5 at the
    bottom row to 1.5 at the top, ``beta = 0.6 * severity`` (times ``IR_HAZE_FACTOR`` for IR), airlight
    ``A ~ U[0.8, 1.0]`` per sample (severity 1: transmission 0.74 at the bottom, 0.41 at the top)."""
    b, _, h, _ = x.shape
    beta = 0.6 * severity * jitter(b, generator, x) * (IR_HAZE_FACTOR if modality == "ir" else 1.0)
    airlight = _per_sample(uniform(b, 0.8, 1.0, generator, x))
    depth = torch.linspace(1.5, 0.5, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1)
    t = torch.exp(-_per_sample(beta) * depth)
    return x * t + airlight * (1 - t)


def jpeg_quality(severity: float) -> int:
    """JPEG quality for a severity: ``round(100 * exp(-1.2 * severity))``, at least 2 (1 -> 30, 2 -> 9)."""
    return max(2, int(round(100 * math.exp(-1.2 * severity))))


def jpeg(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """JPEG compression (OpenCV ``imencode``, 4:2:0 for colour) at quality ``jpeg_quality(severity * jitter)``;
    the image is rounded to 8 bits first. 1- and 3-channel images are coded as gray / colour, other channel
    counts channel by channel; 3-channel tensors are taken as RGB. Not differentiable (a non-differentiable
    view is all augmentation needs)."""
    qualities = [jpeg_quality(severity * float(j)) for j in jitter(x.shape[0], generator, x).cpu()]
    arr = np.clip(np.round(x.detach().cpu().double().numpy() * 255), 0, 255).astype(np.uint8)
    out = np.empty_like(arr)
    for i, q in enumerate(qualities):
        params = [int(cv2.IMWRITE_JPEG_QUALITY), q]
        if arr.shape[1] == 3:  # RGB tensor -> BGR for OpenCV and back
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr[i, ::-1].transpose(1, 2, 0)), params)
            out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR).transpose(2, 0, 1)[::-1]
        else:
            for ch in range(arr.shape[1]):
                ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr[i, ch]), params)
                out[i, ch] = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype) / 255


def stripe_noise(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Fixed-pattern noise of uncooled IR sensors: a random offset per column (std ``0.03 * severity``) plus a
    weaker one per row (std ``0.01 * severity``), the same for all channels of a sample."""
    b, _, h, w = x.shape
    j = _per_sample(jitter(b, generator, x))
    cols = torch.randn((b, 1, 1, w), generator=generator, device=_gen_device(generator), dtype=x.dtype)
    rows = torch.randn((b, 1, h, 1), generator=generator, device=_gen_device(generator), dtype=x.dtype)
    return x + severity * j * (0.03 * cols.to(x.device) + 0.01 * rows.to(x.device))


def misregistration_params(n: int, severity: float, generator: torch.Generator | None,
                           like: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample shift ``U[-2 s, 2 s]`` pixels per axis and rotation ``U[-s, s]`` degrees (``s = severity``)."""
    shift = uniform(2 * n, -2.0 * severity, 2.0 * severity, generator, like).view(n, 2)
    angle = uniform(n, -severity, severity, generator, like) * (math.pi / 180)
    return shift, angle


def misregistration_margin(severity: float, height: int, width: int) -> int:
    """Pixels from each border that a ``misregistration`` of this severity may fill with replicated border
    values: ``ceil(2 s + r sin(s degrees) + 1)`` with ``r`` the half-diagonal."""
    if severity <= 0:
        return 0
    r = 0.5 * math.hypot(height, width)
    return math.ceil(2 * severity + r * math.sin(math.radians(severity)) + 1)


def misregistration(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Small rigid misregistration: shift up to ``2 * severity`` pixels per axis and rotation up to ``severity``
    degrees about the centre (bilinear, border replicated; see :func:`misregistration_margin`)."""
    shift, angle = misregistration_params(x.shape[0], severity, generator, x)
    return warp_rigid(x, shift, angle)


def correlated_noise(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """Signal-dependent noise spread over neighbouring pixels by in-camera processing: white noise blurred by a
    1-px Gaussian and rescaled to unit std, times ``0.03 * severity * sqrt(0.2 + 0.8 x)`` (brighter pixels noisier,
    as shot noise; severity 1: std 0.023, ~6 grey levels, at mid-grey). Held out of the aggressive view's pool."""
    b = x.shape[0]
    n = gaussian_blur(randn_like(x, generator), torch.ones(b, device=x.device, dtype=x.dtype), (7, 7))
    n = n / n.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    amp = 0.03 * severity * _per_sample(jitter(b, generator, x))
    return x + amp * torch.sqrt(0.2 + 0.8 * x.clamp(0, 1)) * n


def column_fpn(x: Tensor, severity: float, generator: torch.Generator | None, modality: str) -> Tensor:
    """A microbolometer's non-uniformity: a gain and an offset per column, ``x (1 + g_c) + o_c`` with ``g_c, o_c ~
    N(0, 0.02 * severity)``, plus a slow vertical drift (one cosine over the frame, random phase, amplitude ``0.02 *
    severity``), the same for all channels of a sample. Held out of the aggressive view's pool."""
    b, _, h, w = x.shape
    dev = _gen_device(generator)
    s = 0.02 * severity * _per_sample(jitter(b, generator, x))
    gain = torch.randn((b, 1, 1, w), generator=generator, device=dev, dtype=x.dtype).to(x.device)
    offset = torch.randn((b, 1, 1, w), generator=generator, device=dev, dtype=x.dtype).to(x.device)
    phase = _per_sample(uniform(b, 0.0, 2 * math.pi, generator, x))
    rows = torch.linspace(0, 2 * math.pi, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1)
    return x * (1 + s * gain) + s * offset + s * torch.cos(rows + phase)


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "poisson_noise": poisson_noise,
    "blur": blur,
    "low_light": low_light,
    "contrast": contrast,
    "haze": haze,
    "jpeg": jpeg,
    "stripe_noise": stripe_noise,
    "misregistration": misregistration,
    "correlated_noise": correlated_noise,
    "column_fpn": column_fpn,
}
# held out of every training pool so that validation can score a generator the training never saw
# (docs/protocol.md); the weak-aggressive view's default pool is every other registered corruption
HELD_OUT = ("correlated_noise", "column_fpn")
AUGMENT_POOL = tuple(name for name in CORRUPTIONS if name not in HELD_OUT)


def list_corruptions() -> list[str]:
    """Names of the registered corruptions, in registry order."""
    return list(CORRUPTIONS)


def check_batch(x: Tensor, what: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{what} must be a float (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")


def corrupt(name: str, x: Tensor, severity: float, generator: torch.Generator | None = None,
            modality: str = "vis") -> Tensor:
    """Apply the corruption ``name`` at ``severity`` (>= 0; 0 returns an exact copy) to a ``(B, C, H, W)`` float
    batch in ``[0, 1]``; per-sample parameters come from ``generator``. Output clipped to ``[0, 1]``."""
    if name not in CORRUPTIONS:
        raise KeyError(f"unknown corruption {name!r}; valid names: {', '.join(CORRUPTIONS)}")
    check_batch(x)
    severity = float(severity)
    if not math.isfinite(severity) or severity < 0:
        raise ValueError(f"severity must be a finite number >= 0, got {severity}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if severity == 0 or x.shape[0] == 0:
        return x.clone()
    return CORRUPTIONS[name](x, severity, generator, modality).clamp(0, 1).to(x.dtype)
