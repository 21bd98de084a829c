"""``crossfuse export --format onnx --model MODEL --out model.onnx``: deployable model with dynamic H/W;
``--format pt``: the fp16 weights file of a training run (:func:`crossfuse.models.export_weights`).

``MODEL`` is any spec of :func:`crossfuse.models.resolve` that holds a torch network: a shipped name, an exported
weights ``.pt``, a training checkpoint (``last.pt`` / ``best.pt``) or a run folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a fusion model (ONNX with dynamic height/width, or a weights .pt of a training run)",
        description="Export a fusion model to ONNX (opset >= 17, inputs ir and vis_y, output fused, all "
                    "(B, 1, H, W) float32 in [0, 1], dynamic B/H/W; a model with rule_alpha_degraded or "
                    "rule_gain_degraded, such as the default, takes a third input degraded, (B, 1, 1, 1): 1 where an "
                    "input step changed the frame, fed by Fuser). The result is checked against PyTorch on a "
                    "random pair; use it with `crossfuse fuse --model FILE.onnx`. --format pt writes the model of a "
                    "training checkpoint or run folder as a small fp16 weights file (no optimizer state).")
    p.add_argument("--format", default="onnx", choices=("onnx", "pt"),
                   help="onnx (default) or pt (fp16 crossfuse weights file)")
    p.add_argument("--model", default=None,
                   help="shipped model name (default: the default model), exported weights .pt, training checkpoint "
                        "(last.pt / best.pt) or run folder")
    p.add_argument("--out", required=True, help="output file (.onnx, or .pt with --format pt)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --format pt: a network constructor value to replace, e.g. --set rule_alpha_degraded=0.4 "
                        "(constants that hold no weights; repeatable)")
    p.set_defaults(func=run)


def load(spec: str | None):
    """``(name, network)`` of the model to export."""
    from crossfuse import models

    r = models.resolve(spec, device="cpu")
    if r.module is None:
        raise ValueError(f"--model {spec}: already an ONNX model (export takes a name, weights, checkpoint or run)")
    return r.name, r.module


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from crossfuse.backends import OnnxBackend, TorchBackend
    from crossfuse.export import export_onnx

    if args.format == "pt":
        return export_pt(args)
    if args.overrides:
        raise ValueError("--set changes a weights file's network constants: use it with --format pt")
    if not args.out.lower().endswith(".onnx"):
        raise ValueError(f"--out {args.out}: use a .onnx file name")
    name, model = load(args.model)
    path = export_onnx(model, args.out, opset=args.opset, name=name, overwrite=args.overwrite)
    # parity check on a random pair whose size is not a multiple of 32 (the exported graph is dynamic)
    rng = np.random.default_rng(0)
    m = int(getattr(model, "pad_multiple", 1))
    h, w = -(-118 // m) * m, -(-150 // m) * m
    ir, vi = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
    diff = float(np.abs(OnnxBackend(path)(ir, vi) - TorchBackend(model, "cpu")(ir, vi)).max())
    print(f"exported {name} to {path} (opset {args.opset}, dynamic H/W, pad_multiple {m}); "
          f"max |onnx - torch| = {diff:.2e} on a {w}x{h} random pair")
    if diff > 1e-3:
        print(f"warning: ONNX and PyTorch differ by {diff:.2e} (> 1e-3)")
        return 1
    return 0


def export_pt(args: argparse.Namespace) -> int:
    from crossfuse import models
    from crossfuse.config import parse_override

    if not args.out.lower().endswith(".pt"):
        raise ValueError(f"--out {args.out}: use a .pt file name with --format pt")
    src = args.model or models.DEFAULT_MODEL
    if src in models.MODELS:
        raise ValueError(f"--model {src}: a shipped model is already a weights file ({models.weights_path(src)})")
    config = {}
    for text in args.overrides:
        keys, value = parse_override(text)
        if len(keys) != 1:
            raise ValueError(f"--set {text}: a network constructor key has no dots (e.g. rule_alpha_degraded=0.4)")
        config[keys[0]] = value
    path = models.export_weights(src, args.out, overwrite=args.overwrite, config=config)
    changed = f"; {', '.join(f'{k}={v!r}' for k, v in config.items())}" if config else ""
    print(f"exported {src} to {path} (fp16 weights{changed}; use it with --model {path})")
    return 0
