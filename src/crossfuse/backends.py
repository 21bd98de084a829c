"""PyTorch inference backend for :class:`crossfuse.infer.Fuser`: device choice, autocast, memory estimate.

A backend runs the network on ``(H, W)`` float32 NumPy planes in [0, 1] and returns the fused plane; it exposes
``pad_multiple``, ``bytes_per_pixel()`` (for tile planning) and, for GPU devices, ``device``, ``is_oom(exc)`` and
``free_cache()`` (for the out-of-memory fallback). :class:`crossfuse.export.OnnxBackend` has the same contract.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def resolve_device(device: str | None) -> str:
    """``"auto"`` -> cuda if available, else mps, else cpu; other names are checked."""
    import torch

    d = (device or "auto").lower()
    if d == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = d.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available (use --device cpu)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available (use --device cpu)")
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return d


class TorchBackend:
    """Runs an ``nn.Module`` fusion network on ``(H, W)`` float32 planes; autocast fp16/bf16 on GPUs."""

    def __init__(self, model: Any, device: str = "cpu", precision: str = "auto") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.pad_multiple = int(getattr(model, "pad_multiple", 1))
        p = (precision or "auto").lower()
        if p == "auto":
            p = "fp32" if self.device.type == "cpu" else "fp16"
        dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
        if p not in dtypes:
            raise ValueError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
        if p != "fp32" and self.device.type == "cpu":
            raise ValueError(f"precision {p} is for GPUs; use fp32 on the CPU")
        self.precision, self._amp_dtype = p, dtypes[p]
        self._bpp: float | None = None

    def __call__(self, ir: np.ndarray, vis_y: np.ndarray) -> np.ndarray:
        torch = self.torch
        a = torch.from_numpy(np.ascontiguousarray(ir, dtype=np.float32))[None, None].to(self.device)
        b = torch.from_numpy(np.ascontiguousarray(vis_y, dtype=np.float32))[None, None].to(self.device)
        with torch.inference_mode():
            if self._amp_dtype is not None:
                with torch.autocast(self.device.type, dtype=self._amp_dtype):
                    out = self.model(a, b)
            else:
                out = self.model(a, b)
        return out[0, 0].float().cpu().numpy()

    def bytes_per_pixel(self) -> float:
        """Working memory of one forward pass per input pixel (see :func:`estimate_bytes_per_pixel`)."""
        if self._bpp is None:
            self._bpp = estimate_bytes_per_pixel(self.model, self.pad_multiple)
        return self._bpp

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, self.torch.OutOfMemoryError) or "out of memory" in str(exc).lower()

    def free_cache(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


def estimate_bytes_per_pixel(model: Any, pad_multiple: int = 1, probe: int = 128) -> float:
    """Upper bound of a network's forward-pass memory per pixel, measured once on a ``probe``² input on the CPU.

    A network may state it (attribute ``bytes_per_pixel``). Otherwise every leaf module's output is summed (no
    tensor is assumed to be freed: an over-estimate for deep nets, which only makes tiles smaller), plus 25 %
    for functional temporaries (concatenations, interpolations) the hooks cannot see.
    """
    import torch

    stated = getattr(model, "bytes_per_pixel", None)
    if stated:
        return float(stated)
    side = int(math.ceil(probe / pad_multiple) * pad_multiple)
    total = 0

    def hook(_m: Any, _i: Any, out: Any) -> None:
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * 4  # counted as float32 whatever the autocast dtype

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        p = next(model.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
        x = torch.full((1, 1, side, side), 0.5, device=dev)
        with torch.inference_mode():
            model(x, x)
    finally:
        for h in handles:
            h.remove()
    return 1.25 * total / (side * side) + 16.0


__all__ = ["TorchBackend", "estimate_bytes_per_pixel", "resolve_device"]
