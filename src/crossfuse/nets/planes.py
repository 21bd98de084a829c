"""Fixed, parameter-free filters on one-channel planes for the ``fast`` network (restoration smoothing, the
contrast maps' and the rule head's local means, the noise floor): separable Gaussians written as shifted adds,
half-resolution blurs, a sliding minimum; and :func:`local_contrast`, the local-contrast rule given its blurs (the
robust recipes' training target and the rule head both call it). Nothing here is trained or stored in a weights file;
everything exports to ONNX as plain Slice / Mul / Add / Min / Max / Pool / Resize ops."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from crossfuse.corruptions import gaussian_kernel1d


def up_to(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def gaussian_taps(sigma: float) -> tuple[float, ...]:
    """Normalised 1-D Gaussian taps of radius ``ceil(3 sigma)`` (:func:`crossfuse.corruptions.gaussian_kernel1d`,
    float64), as Python floats: the restoration smoothing's fixed (symmetric) kernel."""
    radius = max(1, math.ceil(3 * sigma))
    return tuple(gaussian_kernel1d(torch.tensor([float(sigma)], dtype=torch.float64), 2 * radius + 1)[0].tolist())


def smooth_1d(x: Tensor, taps: tuple[float, ...], dim: int) -> Tensor:
    """Per-plane 1-D convolution with the symmetric ``taps`` along ``dim`` (-1 = W, -2 = H), replicate padding.

    Written as shifted adds (pairs of mirrored taps share one multiply): on a 2-core CPU ~5x faster than a
    grouped 1xK ``conv2d`` for these one-channel full-resolution planes, and plain Slice/Mul/Add in ONNX."""
    r, n = len(taps) // 2, x.shape[dim]
    p = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="replicate")
    out = taps[r] * p.narrow(dim, r, n)
    for i in range(r):
        out = out + taps[i] * (p.narrow(dim, i, n) + p.narrow(dim, 2 * r - i, n))
    return out


def half_res_passes(sigma: float) -> tuple:
    """The 1-D passes of a Gaussian of ``sigma`` full-resolution px run at half resolution (sigma halves too);
    ``()`` for sigma 0 (off)."""
    if not sigma > 0:
        return ()
    half = gaussian_taps(sigma / 2)
    return ((half, -1), (half, -2))


def half_res_blur(x: Tensor, passes: tuple) -> Tensor:
    """``x`` blurred cheaply: the 2 x 2 mean, ``passes`` at half resolution, bilinear back to ``x``'s size (H, W
    even). ``L`` of the contrast maps and ``D`` of the detail gain."""
    return up_to(run_passes(F.avg_pool2d(x, 2), passes), x)


def min_filter(x: Tensor, k: int, dim: int) -> Tensor:
    """Sliding minimum over ``k`` (odd) samples along ``dim``, centred, replicate padding (= the minimum over the
    part of the window inside the image). Doubling spans: about log2(k) + 1 elementwise minima instead of k - 1."""
    r, n = k // 2, x.shape[dim]
    cur = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="replicate")
    span = 1
    while 2 * span <= k:  # cur[j] = min over padded[j : j + span]
        m = cur.shape[dim] - span
        cur = torch.minimum(cur.narrow(dim, 0, m), cur.narrow(dim, span, m))
        span *= 2
    if span < k:
        cur = torch.minimum(cur.narrow(dim, 0, n), cur.narrow(dim, k - span, n))
    return cur


def run_passes(x: Tensor, passes: tuple) -> Tensor:
    """``x`` through the 1-D smoothing passes ``((taps, dim), ...)`` in order."""
    for taps, dim in passes:
        x = smooth_1d(x, taps, dim)
    return x


def local_variance(x: Tensor, mean: Tensor, blur: Callable[[Tensor], Tensor]) -> Tensor:
    """``blur(x^2) - mean^2``, floored at 0 (``mean = blur(x)``, computed by the caller, who needs it too)."""
    return (blur(x * x) - mean * mean).clamp(min=0.0)


def wiener_share(noise_var: Tensor, var: Tensor) -> Tensor:
    """The Wiener / Lee share of a smoothed plane, ``min(noise_var / var, 1)``: all of it where the local variance is
    no larger than the noise's, little of it at edges and texture."""
    return (noise_var / (var + 1e-6)).clamp(max=1.0)


def local_contrast(ir: Tensor, vis: Tensor, alpha: float | Tensor, blur: Callable[[Tensor], Tensor],
                   gain: float | Tensor = 1.0, gain_blur: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """``T = max(ir, vis) + alpha (m - blur(m))``, ``m = min(ir, vis)``; with ``gain_blur`` its detail about
    ``mu = gain_blur(T)`` is scaled, ``mu + gain (T - mu)``; clipped to ``[m, 1]``. ``alpha`` and ``gain`` may be
    per-pixel tensors (the rule head's gates)."""
    m = torch.minimum(ir, vis)
    t = torch.maximum(ir, vis) + alpha * (m - blur(m))
    if gain_blur is not None:
        mu = gain_blur(t)
        t = mu + gain * (t - mu)
    return torch.minimum(torch.maximum(t, m), torch.ones_like(m))
