"""ONNX export of a fusion network and an onnxruntime backend for :class:`crossfuse.infer.Fuser`.

The exported graph has inputs ``ir`` and ``vis_y`` and output ``fused``, all ``(B, 1, H, W)`` float32 in [0, 1],
with dynamic batch, height and width (H and W must be multiples of the network's ``pad_multiple``, stored in the
model's metadata; :class:`crossfuse.backends.OnnxBackend` runs it and pads and crops like the PyTorch path). A
network with a spread-noise gate has a second output ``shares``, ``(B, 2, H, W)`` (its IR and visible restoration
shares, which the Fuser's spread-noise gates read), and the gates in the metadata. The
TorchScript-based exporter is used (``dynamo=False``): the torch.export-based default of torch >= 2.9 needs the
extra ``onnxscript`` package.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

from crossfuse.backends import (
    DEGRADED_INPUT,
    INPUT_NAMES,
    OUTPUT_NAME,
    SHARE_OUTPUT,
    OnnxBackend,
    declared_steps,
    spread_noise_gates,
    takes_degraded,
)
from crossfuse.io import write_bytes_atomic

DEFAULT_OPSET = 17


def _export(model: Any, target: Any, opset: int, probe: int) -> None:
    import torch

    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    model = model.to("cpu").eval()
    m = int(getattr(model, "pad_multiple", 1))
    side = max(probe // m, 1) * m
    x = torch.rand(1, 1, side, side + m, generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    names, args = list(INPUT_NAMES), (x, x.flip(-1))
    outputs = [OUTPUT_NAME, SHARE_OUTPUT] if spread_noise_gates(model) else [OUTPUT_NAME]
    dynamic = {n: axes for n in (*INPUT_NAMES, *outputs)}
    if takes_degraded(model):  # the per-frame flag becomes a third input
        names, args = [*names, DEGRADED_INPUT], (*args, torch.ones(1, 1, 1, 1))
        dynamic[DEGRADED_INPUT] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(_with_shares(model) if len(outputs) == 2 else model, args, target, dynamo=False,
                          opset_version=opset, input_names=names, output_names=outputs, dynamic_axes=dynamic)


def _with_shares(model: Any) -> Any:
    """``model`` with ``forward_shares`` as its forward (the fused output and the shares, two outputs)."""
    import torch

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, *args: Any) -> Any:
            return self.net.forward_shares(*args)

    return Outputs().eval()


def _add_metadata(data: bytes, model: Any, name: str) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    meta = {"crossfuse.pad_multiple": str(int(getattr(model, "pad_multiple", 1))), "crossfuse.model": name,
            "crossfuse.config": repr(getattr(model, "config", {})),
            **{f"crossfuse.{k}": repr(v) for k, v in declared_steps(model).items()}}
    meta.update({f"crossfuse.{k}": repr(v) for k, v in spread_noise_gates(model).items()})
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


__all__ = ["export_onnx", "export_onnx_bytes", "OnnxBackend", "DEFAULT_OPSET"]
