"""ONNX export of a fusion network and an onnxruntime backend for :class:`crossfuse.infer.Fuser`.

The exported graph has inputs ``ir`` and ``vis_y`` and output ``fused``, all ``(B, 1, H, W)`` float32 in [0, 1],
with dynamic batch, height and width (H and W must be multiples of the network's ``pad_multiple``, stored in the
model's metadata; :class:`OnnxBackend` pads and crops like the PyTorch path). The TorchScript-based exporter is
used (``dynamo=False``): the torch.export-based default of torch >= 2.9 needs the extra ``onnxscript`` package.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from crossfuse.io import write_bytes_atomic

DEFAULT_OPSET = 17
INPUT_NAMES = ("ir", "vis_y")
OUTPUT_NAME = "fused"


def _export(model: Any, target: Any, opset: int, probe: int) -> None:
    import torch

    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    model = model.to("cpu").eval()
    m = int(getattr(model, "pad_multiple", 1))
    side = max(probe // m, 1) * m
    x = torch.rand(1, 1, side, side + m, generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(model, (x, x.flip(-1)), target, dynamo=False, opset_version=opset,
                          input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                          dynamic_axes={n: axes for n in (*INPUT_NAMES, OUTPUT_NAME)})


def _add_metadata(data: bytes, model: Any, name: str) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    meta = {"crossfuse.pad_multiple": str(int(getattr(model, "pad_multiple", 1))), "crossfuse.model": name,
            "crossfuse.config": repr(getattr(model, "config", {}))}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx_bytes(model: Any, *, opset: int = DEFAULT_OPSET, name: str = "", probe: int = 64) -> bytes:
    """Export ``model`` (the network contract of :mod:`crossfuse.nets`) to an ONNX model in memory."""
    buf = io.BytesIO()
    _export(model, buf, opset, probe)
    return _add_metadata(buf.getvalue(), model, name or type(model).__name__)


def export_onnx(model: Any, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET, name: str = "",
                overwrite: bool = False) -> Path:
    """Export ``model`` to ``path`` (atomic write; refuses to overwrite unless asked)."""
    if Path(path).exists() and not overwrite:  # check before the (slow) export
        raise FileExistsError(f"{path}: exists (pass overwrite=True / --overwrite to replace it)")
    return write_bytes_atomic(path, export_onnx_bytes(model, opset=opset, name=name), overwrite=overwrite)


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
    """onnxruntime session over ``(H, W)`` float32 planes; same call contract as ``infer.TorchBackend``.

    ``model`` is a path to an ``.onnx`` file or the serialized bytes. ``pad_multiple`` defaults to the value in the
    model's metadata (1 if absent).
    """

    def __init__(self, model: str | os.PathLike | bytes, *, device: str = "cpu", pad_multiple: int | None = None,
                 threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("the onnx backend needs onnxruntime: pip install 'crossfuse[onnx]'") from None
        if not isinstance(model, bytes):
            p = Path(model)
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such ONNX model file")
            model = p.read_bytes()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(model, opts, providers=_providers(device))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"not a usable ONNX model: {exc}") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUT_NAMES):
            raise ValueError(f"ONNX model inputs are {names}, expected {list(INPUT_NAMES)} (crossfuse export)")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.pad_multiple = int(pad_multiple or meta.get("crossfuse.pad_multiple", 1))
        self.model_name = meta.get("crossfuse.model", "")
        self.device = None  # no torch device: the Fuser's GPU-OOM fallback does not apply

    def __call__(self, ir: np.ndarray, vis_y: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(ir, dtype=np.float32)[None, None]
        b = np.ascontiguousarray(vis_y, dtype=np.float32)[None, None]
        return self.session.run([OUTPUT_NAME], {"ir": a, "vis_y": b})[0][0, 0]

    def bytes_per_pixel(self) -> float:
        """Without the torch graph, assume a conservative 2 KB per pixel for tiling decisions."""
        return 2048.0


__all__ = ["export_onnx", "export_onnx_bytes", "OnnxBackend", "DEFAULT_OPSET"]
