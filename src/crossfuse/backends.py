"""Inference backends for :class:`crossfuse.infer.Fuser`, side by side behind one interface, :class:`Backend`.

A backend runs the network on ``(H, W)`` float32 NumPy planes in [0, 1] and returns the fused plane (a ``(2, H, W)``
stack of the fused plane and the network's IR and visible restoration shares, ``(3, H, W)``, when the model declares a
spread-noise gate: the Fuser's gates read the shares of the same pass). It states its
``name`` (``torch`` / ``onnx``) and ``pad_multiple``, its working memory per pixel (``bytes_per_pixel()``, for tile
planning) and its device budget (``device_budget()``: free GPU bytes, ``None`` in host memory), and it recognises and
recovers from its own out-of-memory errors (``is_oom(exc)``, ``free_cache()``). :class:`TorchBackend` runs an
``nn.Module`` (autocast fp16/bf16 on GPUs); :class:`OnnxBackend` runs an ONNX model with onnxruntime.
:func:`make_backend` builds the one a resolved model spec (:func:`crossfuse.models.resolve`) and a backend name ask for.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from crossfuse.errors import CheckpointError

INPUT_NAMES = ("ir", "vis_y")
DEGRADED_INPUT = "degraded"  # third ONNX input of a network that takes_degraded: (B, 1, 1, 1), 1 = degraded frame
OUTPUT_NAME = "fused"
SHARE_OUTPUT = "shares"  # second ONNX output of a network with a spread-noise gate: (B, 2, H, W) IR, visible shares
# the gate of each plane's spread-noise step: network constant and ONNX metadata key
SPREAD_GATES = {"vis": "spread_noise_gate", "ir": "spread_noise_gate_ir"}
# a second visible-plane gate on the visible share's excess over the IR share (H77); needs the visible gate
SPREAD_EXCESS_GATE = "spread_noise_gate_excess"
SPREAD_GATE_KEYS = (*SPREAD_GATES.values(), SPREAD_EXCESS_GATE)
SHARE_PLANES = ("ir", "vis")  # the order of the restoration shares after the fused plane (forward_shares, ONNX shares)
BACKENDS = ("torch", "onnx")


# Whole-frame input steps a network may declare (an attribute and a config key of the same name) and
# crossfuse.infer.Fuser carries out before padding and tiling, never forward(): name -> value when not declared.
# vis_veil: strength of the visible veil removal (crossfuse.veil); deblock: coarse-JPEG sources deblocked
# (crossfuse.deblock); destripe: IR column / row offsets taken off when plainly there (crossfuse.destripe);
# denoise: a plainly noisy source plane denoised (crossfuse.denoise).
INPUT_STEPS: dict[str, float | bool] = {"vis_veil": 0.0, "deblock": False, "destripe": False, "denoise": False}


def takes_degraded(model: Any) -> bool:
    """Whether ``model``'s forward takes the per-frame ``degraded`` flag (a rule head with ``rule_alpha_degraded`` or
    ``rule_gain_degraded``): the torch backend passes it, the ONNX export makes it a third input."""
    return any(getattr(model, k, None) is not None for k in ("rule_alpha_degraded", "rule_gain_degraded"))


def spread_noise_gates(model: Any) -> dict[str, float]:
    """The share levels over which the Fuser denoises a frame's visible (``spread_noise_gate``, H74) or IR
    (``spread_noise_gate_ir``, H75) plane and fuses it again, and the visible share's excess over the IR share over
    which it does the same to the visible (``spread_noise_gate_excess``, H77): those ``model`` declares (its
    forward_shares gives the shares; the ONNX export makes them a second output); empty: no gate."""
    return {k: float(getattr(model, k)) for k in SPREAD_GATE_KEYS if getattr(model, k, None) is not None}


def declared_steps(model: Any) -> dict[str, float | bool]:
    """The input steps ``model`` declares, every name of :data:`INPUT_STEPS` given (undeclared: its default)."""
    return {name: type(default)(getattr(model, name, default)) for name, default in INPUT_STEPS.items()}


class Backend(Protocol):
    """What :class:`crossfuse.infer.Fuser` needs from a backend."""

    name: str
    pad_multiple: int
    vis_veil: float  # the whole-frame input steps the model declares (INPUT_STEPS), carried out by the Fuser
    deblock: bool
    destripe: bool
    denoise: bool

    takes_degraded: bool  # the network takes forward()'s per-frame ``degraded`` flag (:func:`takes_degraded`)
    spread_noise_gates: dict[str, float]  # :func:`spread_noise_gates`; when any, calls return (3, H, W)

    def __call__(self, ir: np.ndarray, vis_y: np.ndarray, degraded: bool = False) -> np.ndarray: ...

    def bytes_per_pixel(self) -> float: ...

    def device_budget(self) -> int | None: ...

    def is_oom(self, exc: BaseException) -> bool: ...

    def free_cache(self) -> None: ...

    def synchronize(self) -> None: ...


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

    name = "torch"

    def __init__(self, model: Any, device: str = "cpu", precision: str = "auto") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.pad_multiple = int(getattr(model, "pad_multiple", 1))
        for name, value in declared_steps(model).items():  # done by the Fuser, never by forward()
            setattr(self, name, value)
        self.takes_degraded = takes_degraded(model)
        self.spread_noise_gates = spread_noise_gates(model)
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

    def __call__(self, ir: np.ndarray, vis_y: np.ndarray, degraded: bool = False) -> np.ndarray:
        torch = self.torch
        a = torch.from_numpy(np.ascontiguousarray(ir, dtype=np.float32))[None, None].to(self.device)
        b = torch.from_numpy(np.ascontiguousarray(vis_y, dtype=np.float32))[None, None].to(self.device)
        flag = (torch.full((1, 1, 1, 1), float(degraded), device=self.device),) if self.takes_degraded else ()
        with torch.inference_mode():
            if self._amp_dtype is not None:
                with torch.autocast(self.device.type, dtype=self._amp_dtype):
                    out = self._forward(a, b, flag)
            else:
                out = self._forward(a, b, flag)
        return out[0].float().cpu().numpy() if self.spread_noise_gates else out[0, 0].float().cpu().numpy()

    def _forward(self, a: Any, b: Any, flag: tuple) -> Any:
        """The network's output: (1, 1, H, W), or (1, 3, H, W) = fused and the two shares with a spread-noise gate."""
        if not self.spread_noise_gates:
            return self.model(a, b, *flag)
        return self.torch.cat(self.model.forward_shares(a, b, *flag), dim=1)

    def bytes_per_pixel(self) -> float:
        """Working memory of one forward pass per input pixel (see :func:`estimate_bytes_per_pixel`)."""
        if self._bpp is None:
            self._bpp = estimate_bytes_per_pixel(self.model, self.pad_multiple)
        return self._bpp

    def is_oom(self, exc: BaseException) -> bool:
        """A GPU out-of-memory error (worth retrying with smaller tiles); never on the CPU."""
        if self.device.type == "cpu":
            return False
        return isinstance(exc, self.torch.OutOfMemoryError) or "out of memory" in str(exc).lower()

    def free_cache(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()

    def synchronize(self) -> None:
        """Wait for queued GPU work (for timing)."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def device_budget(self) -> int | None:
        """Bytes free on the GPU (90 %), the activation budget there; ``None`` on the CPU and MPS."""
        if self.device.type != "cuda":
            return None
        free, _total = self.torch.cuda.mem_get_info(self.device)
        return int(0.9 * free)


def estimate_bytes_per_pixel(model: Any, pad_multiple: int = 1, probe: int = 64) -> float:
    """Forward-pass working memory of a network per input pixel, measured once on a ``probe``² input.

    A network may state it (attribute ``bytes_per_pixel``). Otherwise the outputs of all leaf modules are tracked
    while they are alive (forward hooks + ``weakref.finalize``, storages counted once, so in-place activations
    and views are free) and the peak of the live total is taken; the result is tripled for what the hooks cannot
    see (temporaries inside functional ops, convolution workspaces, allocator slack) plus 16 bytes for the input
    tensors. On the ``fast`` network (live peak 48 B/px) this predicts 160 B/px; the peak-RSS growth measured on
    the CPU for tiles of 0.3-12 Mpx was 90-200 B/px (glibc's allocator makes it vary).
    """
    import weakref

    import torch

    stated = getattr(model, "bytes_per_pixel", None)
    if stated:
        return float(stated)
    side = int(math.ceil(probe / pad_multiple) * pad_multiple)
    live: dict[int, int] = {}
    total = {"now": 0, "peak": 0}

    def release(key: int) -> None:
        total["now"] -= live.pop(key, 0)

    def hook(_m: Any, _i: Any, out: Any) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in live:
                continue
            live[key] = storage.nbytes() * 4 // t.element_size()  # counted as float32 whatever the autocast dtype
            total["now"] += live[key]
            total["peak"] = max(total["peak"], total["now"])
            weakref.finalize(t, release, key)

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
    return 3.0 * total["peak"] / (side * side) + 16.0


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise ValueError("device cuda requested but onnxruntime has no CUDAExecutionProvider "
                             "(install onnxruntime-gpu or use --device cpu)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "mps" and "CoreMLExecutionProvider" in available:
        return ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxBackend:
    """onnxruntime session over ``(H, W)`` float32 planes (a model of :func:`crossfuse.export.export_onnx`).

    ``model`` is a path to an ``.onnx`` file or the serialized bytes. ``pad_multiple`` defaults to the value in the
    model's metadata (1 if absent); ``bytes_per_pixel`` (known when the model was exported in memory from a torch
    network) defaults to a conservative 2 KB per pixel; ``threads`` = onnxruntime's intra-op threads (0: its own).
    """

    name = "onnx"

    def __init__(self, model: str | os.PathLike | bytes, *, device: str = "cpu", pad_multiple: int | None = None,
                 threads: int = 0, bytes_per_pixel: float | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("the onnx backend needs onnxruntime: pip install 'crossfuse[onnx]'") from None
        where = "in-memory ONNX model"
        if not isinstance(model, bytes):
            p = Path(model)
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such ONNX model file")
            where, model = str(p), p.read_bytes()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(model, opts, providers=_providers(device))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{where}: not a usable ONNX model ({str(exc).splitlines()[0][:160]})") from None
        names = [i.name for i in self.session.get_inputs()]
        if names not in (list(INPUT_NAMES), [*INPUT_NAMES, DEGRADED_INPUT]):
            raise CheckpointError(f"{where}: ONNX model inputs are {names}, expected {list(INPUT_NAMES)} "
                                  f"(or with {DEGRADED_INPUT!r} last; make it with crossfuse export)")
        self.takes_degraded = DEGRADED_INPUT in names
        meta = self.session.get_modelmeta().custom_metadata_map
        outputs = [o.name for o in self.session.get_outputs()]
        gates = {k: float(meta[f"crossfuse.{k}"]) for k in SPREAD_GATE_KEYS if f"crossfuse.{k}" in meta}
        if outputs not in ([OUTPUT_NAME], [OUTPUT_NAME, SHARE_OUTPUT]) or (len(outputs) == 2) != bool(gates):
            raise CheckpointError(f"{where}: ONNX model outputs are {outputs} (spread-noise gates {gates}), expected "
                                  f"[{OUTPUT_NAME!r}], or with {SHARE_OUTPUT!r} and a gate in the metadata "
                                  f"(make it with crossfuse export)")
        self.spread_noise_gates = gates
        self._outputs = outputs
        self.pad_multiple = int(pad_multiple or meta.get("crossfuse.pad_multiple", 1))
        self.model_name = meta.get("crossfuse.model", "")
        for name, default in INPUT_STEPS.items():  # written by crossfuse.export (absent in older files: off)
            raw = meta.get(f"crossfuse.{name}")
            value = default if raw is None else raw == "True" if isinstance(default, bool) else float(raw)
            setattr(self, name, value)
        self._bpp = float(bytes_per_pixel or 2048.0)

    def __call__(self, ir: np.ndarray, vis_y: np.ndarray, degraded: bool = False) -> np.ndarray:
        feed = {"ir": np.ascontiguousarray(ir, dtype=np.float32)[None, None],
                "vis_y": np.ascontiguousarray(vis_y, dtype=np.float32)[None, None]}
        if self.takes_degraded:
            feed[DEGRADED_INPUT] = np.full((1, 1, 1, 1), float(degraded), dtype=np.float32)
        out = self.session.run(self._outputs, feed)
        return np.concatenate([o[0] for o in out]) if len(out) == 2 else out[0][0, 0]

    def bytes_per_pixel(self) -> float:
        return self._bpp

    def device_budget(self) -> int | None:
        return None  # onnxruntime manages its own device memory: plan tiles on the host budget

    def is_oom(self, exc: BaseException) -> bool:
        return False  # no fallback to smaller tiles: onnxruntime's errors are not recoverable here

    def free_cache(self) -> None:
        return None

    def synchronize(self) -> None:
        return None  # session.run returns when the result is on the host


def make_backend(resolved: Any, backend: str = "torch", device: str = "auto", precision: str = "auto",
                 threads: int = 0) -> Backend:
    """The backend that runs a :class:`crossfuse.models.Resolved` model: ``onnx`` for an ``.onnx`` file (or a
    torch network exported in memory), ``torch`` for a network."""
    backend = (backend or "torch").lower()
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use {' or '.join(BACKENDS)}")
    dev = resolve_device(device)
    if resolved.onnx is not None:
        return OnnxBackend(resolved.onnx, device=dev, threads=threads)
    module = resolved.module
    if backend == "onnx":
        from crossfuse.export import export_onnx_bytes

        module = module.to("cpu").eval()
        m = int(getattr(module, "pad_multiple", 1))
        return OnnxBackend(export_onnx_bytes(module, name=resolved.name), device=dev, pad_multiple=m, threads=threads,
                           bytes_per_pixel=estimate_bytes_per_pixel(module, m))
    return TorchBackend(module, dev, precision)


__all__ = ["Backend", "TorchBackend", "OnnxBackend", "make_backend", "estimate_bytes_per_pixel", "resolve_device",
           "BACKENDS"]
