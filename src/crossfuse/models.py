"""Shipped, trained fusion models loaded by name: ``load_model("crossfuse-fast")``.

A weights file ``src/crossfuse/weights/<name>.pt`` holds ``{"format": 1, "net": <network name>, "config": <its
constructor kwargs>, "state_dict": <fp16 tensors>, "meta": {...}}``; :func:`load_model` rebuilds the network with
:func:`crossfuse.nets.build`, loads the weights as fp32 and returns it in eval mode. Each file has a model card
``<name>.md`` beside it (data, split, config, command, wall time, metrics). :func:`export_weights` makes such a
file from a training checkpoint.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crossfuse.io import write_bytes_atomic

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# name -> description (the explicit list of shipped models; the file is WEIGHTS_DIR / f"{name}.pt")
MODELS: dict[str, str] = {
    "crossfuse-fast": "fast network (~0.1 M parameters), CPU-trained on RoadScene; the default",
    "crossfuse-paper-short": "the paper's network, SHORTENED CPU schedule (see its model card)",
}
DEFAULT_MODEL = "crossfuse-fast"
FORMAT = 1


def list_models() -> list[str]:
    """Names accepted by :func:`load_model`."""
    return list(MODELS)


def weights_path(name: str) -> Path:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return WEIGHTS_DIR / f"{name}.pt"


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file missing (reinstall crossfuse, or train and export it: "
                                "see docs/training.md)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or "state_dict" not in blob:
        raise ValueError(f"{path}: not a crossfuse weights file (format {FORMAT})")
    return blob


def load_weights_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A network from any crossfuse weights file (fp32, eval mode, on ``device``)."""
    from crossfuse.nets import build

    blob = _read(Path(path))
    net = build(blob["net"], **blob["config"])
    net.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return net.to(device).eval()


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device = "cpu") -> nn.Module:
    """The shipped model ``name`` (see :func:`list_models`) in eval mode on ``device``.

    Raises ``KeyError`` listing the valid names for an unknown name, ``FileNotFoundError`` when the weights file
    is missing.
    """
    return load_weights_file(weights_path(name), device)


def model_info(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The metadata stored with a shipped model (network, config, training summary)."""
    blob = _read(weights_path(name))
    return {"net": blob["net"], "config": blob["config"], **blob.get("meta", {})}


def export_weights(checkpoint: str | os.PathLike, out: str | os.PathLike, meta: dict[str, Any] | None = None,
                   overwrite: bool = False) -> Path:
    """Write the model of a training checkpoint (``last.pt`` / ``best.pt``) as an fp16 weights file."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    info = {"epoch": ck.get("epoch"), "step": ck.get("step"), "best_score": ck.get("best_score")}
    info.update(meta or {})
    blob = {"format": FORMAT, "net": ck["net"], "config": ck["net_config"],
            "state_dict": {k: v.detach().half() if v.is_floating_point() else v for k, v in ck["model"].items()},
            "meta": info}
    buf = io.BytesIO()
    torch.save(blob, buf)
    return write_bytes_atomic(out, buf.getvalue(), overwrite=overwrite)


__all__ = ["load_model", "list_models", "DEFAULT_MODEL", "MODELS", "model_info", "export_weights",
           "load_weights_file", "weights_path", "WEIGHTS_DIR"]
