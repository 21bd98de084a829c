"""Fusion models by name or file, loaded safely: :func:`resolve` is the one way from a model spec to a runnable model.

A *spec* is one of

* a shipped model name (:data:`MODELS`; the file is ``src/crossfuse/weights/<name>.pt``, its sha256 is checked);
* an exported weights file ``.pt`` (:func:`export_weights`): ``{"format": 1, "net": <network name>, "config":
  <its constructor kwargs>, "state_dict": <fp16 tensors>, "meta": {...}}``;
* a training checkpoint (``last.pt``, ``best.pt``, ``epochNNNN.pt`` written by :func:`crossfuse.train.train`) or a
  run folder (its ``best.pt``, else its ``last.pt``);
* an ``.onnx`` file (:mod:`crossfuse.export`; run by onnxruntime);
* ``net:NAME``: an *untrained* network of :mod:`crossfuse.nets` (for timing only);
* an ``nn.Module`` following the network contract (``forward(ir, vis_y)``, ``pad_multiple``).

Every ``.pt`` is read with ``torch.load(..., weights_only=True)``: a file that would run code when unpickled is
refused, and any file that is not a crossfuse weights file or checkpoint raises a one-line
:class:`~crossfuse.errors.CheckpointError` naming it. Each shipped file has a model card ``<name>.md`` beside it.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crossfuse.errors import CheckpointError, UnknownNameError
from crossfuse.io import file_sha256, write_bytes_atomic

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class Shipped:
    """A shipped model: what it is, and the sha256 of its weights file (checked at every load)."""

    description: str
    sha256: str


# the explicit list of shipped models; the file is WEIGHTS_DIR / f"{name}.pt"
MODELS: dict[str, Shipped] = {
    "crossfuse-fast": Shipped("fast network (~0.1 M parameters), CPU-trained on RoadScene; the previous default",
                              "cd2d1876a612ea4af027b8b0467fc92176d212f06ce70416bad9eb1bbf1766c6"),
    "crossfuse-paper-short": Shipped("the paper's network, SHORTENED CPU schedule (see its model card)",
                                     "b2fb602345b082d62274b82ad53ae6a55b8155ef16fa27f1f64038e1db539d52"),
    "crossfuse-robust": Shipped("fast network, local-contrast losses + both CrossFuse views, chosen on validation "
                                "(docs/protocol.md); the previous default",
                                "8e82f36a82af169d820d2df3c1f87fd02426ddfb3aae47c2655b484bd6d15d8e"),
    "crossfuse-robust2": Shipped("crossfuse-robust's recipe + restoration maps (noise-floor adaptive smoothing of "
                                 "each source, trained by ssl_denoise), chosen on validation (docs/protocol.md); "
                                 "the previous default",
                                 "1a9e63eaf64cadcc00e2956b84f6fb00891b2dcf128e467bc86fb6e1fdd14088"),
    "crossfuse-robust3": Shipped("crossfuse-robust2's network and recipe with the local-contrast target's constant "
                                 "re-chosen on validation (alpha 0.4 -> 0.1; docs/protocol.md H12); the previous "
                                 "default",
                                 "88ce7751bf9daea12e951c7318d5c011fed6f5a7f33e86a33f7da7bda3949e5d"),
    "crossfuse-robust4": Shipped("crossfuse-robust2's network and recipe with the local-contrast target's local mean "
                                 "over 16 px (was 8), chosen on validation under the rank score v2 (docs/protocol.md "
                                 "H17); the previous default",
                                 "ce221aa8e69f8a10db7932121110294d6f38de545a331cea397184338a208b04"),
    "crossfuse-robust5": Shipped("fast network with the rule head: the local-contrast rule (crossfuse-robust4's "
                                 "target) on learned restored sources plus a learned residual, whole-patch views; "
                                 "chosen on validation under the rank score v2 (docs/protocol.md H22); the previous "
                                 "default",
                                 "6a8fc58ac71bdfa579029aa163d2ecc4a283aaabf418cb8c1ff1fb41123b9620"),
    "crossfuse-robust6": Shipped("crossfuse-robust5 with the rule's detail gain 1.2 gated per pixel by the "
                                 "learned restoration, chosen on validation under the rank score v2 "
                                 "(docs/protocol.md H23); the previous default",
                                 "1ebc5a3ff29d5637bf9711e25b336adf91dcb64d57fdfdc2276e873b21ce6f44"),
    "crossfuse-robust7": Shipped("crossfuse-robust6's network and recipe with the weak-aggressive consistency "
                                 "weight 0.25 (was 0.5), chosen on validation under the rank score v2 "
                                 "(docs/protocol.md H32); the previous default",
                                 "97e679beca407c158fec405d62c559fc67818c73d1131aee3d64eb4283541683"),
    "crossfuse-robust8": Shipped("crossfuse-robust7's network and recipe with the weak-aggressive view's corruption "
                                 "pool without low_light, chosen on validation under the rank score v2 "
                                 "(docs/protocol.md H40); the previous default",
                                 "0c1b72460193b4d333da3af2850d3c29d398b3f5b7e0f25682fd4bf60ad4a22f"),
    "crossfuse-robust9": Shipped("crossfuse-robust8's weights with the visible veil removal (strength 0.75) before "
                                 "fusion (crossfuse.veil), chosen on validation by the three-seed rule "
                                 "(docs/protocol.md H46); the previous default",
                                 "7c5c89aa3ebfdd40909bea3b98e30feda0782e5a3852da2f03c26a7be822cc39"),
    "crossfuse-robust10": Shipped("crossfuse-robust9's weights and veil step with JPEG deblocking of coarse-JPEG "
                                  "sources before fusion (crossfuse.deblock), chosen on validation by the three-seed "
                                  "rule (docs/protocol.md H52); the previous default",
                                  "4abc6606c8ebfba5ab585b11ead2d6af6f37202cbf8a804b410052fa125dd2e5"),
    "crossfuse-robust11": Shipped("crossfuse-robust10's weights and steps with IR destriping of plainly striped "
                                  "frames before fusion (crossfuse.destripe), chosen on validation by the three-seed "
                                  "rule (docs/protocol.md H55); the previous default",
                                  "880c98a2fa81a9114e35c64d46b02c7b825176bfbfe8e5c3af7535dac5168614"),
    "crossfuse-robust12": Shipped("crossfuse-robust11's weights and steps with denoising of plainly noisy source "
                                  "frames before fusion (crossfuse.denoise), chosen on validation by the three-seed "
                                  "rule (docs/protocol.md H58); the previous default",
                                  "07671863c3c219f529d0ab4ef7f257d68680ca48aa8400e726515270713aca95"),
    "crossfuse-robust13": Shipped("crossfuse-robust12's recipe and input steps with the rule head's detail gain 1.1 "
                                  "(was 1.2), re-trained; chosen on validation by the three-seed rule "
                                  "(docs/protocol.md H63); the previous default",
                                  "422dbaf0a65576dff20025d4e5077a0e5ab9fe8b2f1ff489891575bda9098ba0"),
    "crossfuse-robust14": Shipped("crossfuse-robust13's recipe and input steps with the rule head's weaker-source "
                                  "detail share 0.6 (was 0.4), re-trained; chosen on validation by the three-seed "
                                  "rule (docs/protocol.md H64); the previous default",
                                  "55af4d835cf494f811bc723fbd5b983adcd8d7c94a6cbe4f07338e4184d83f7f"),
    "crossfuse-robust15": Shipped("crossfuse-robust14's weights and steps with the weaker-source detail share 0.4 "
                                  "(robust13's) on frames an input step changed, 0.6 elsewhere; chosen on "
                                  "validation by the amended three-seed rule (docs/protocol.md H66-H68); the previous "
                                  "default",
                                  "7dfeca1095c2cb8431f5627343eb3841ad43961d2302b07472526539777f67ca"),
    "crossfuse-robust16": Shipped("crossfuse-robust15 with the rule's detail gain 1.0 (not 1.1) on the frames an input "
                                  "step changed; chosen on validation by the three-seed rule (docs/protocol.md H72); "
                                  "the previous default",
                                  "db358b4d599068d005c686b2a9feec208277d85c4d1a6d7ebe264942e4eaf189"),
    "crossfuse-robust17": Shipped("crossfuse-robust16 with a spread-noise gate: a frame whose visible restoration "
                                  "share reads over 0.12 has its visible plane denoised and is fused again; chosen on "
                                  "validation by the three-seed rule (docs/protocol.md H74); the previous default",
                                  "cad28e11c4b4791971fc956f7439cbdcf1ba1c5832139669bddc0c7232cf5302"),
    "crossfuse-robust18": Shipped("crossfuse-robust17 with the spread-noise gate on the IR plane too (its restoration "
                                  "share over 0.14); chosen on validation by the three-seed rule (docs/protocol.md "
                                  "H75); the previous default",
                                  "09103409fb9f5a5f2570fb2937e429df1e67ae064a54d3ef354a6edaff2d3b63"),
    "crossfuse-robust19": Shipped("crossfuse-robust18 with a second visible gate: a frame whose visible restoration "
                                  "share exceeds its IR share by over 0.02 (both planes untouched) has its visible "
                                  "plane denoised too; chosen on validation by the three-seed rule (docs/protocol.md "
                                  "H77); the previous default",
                                  "de6daf1763c603f4470b0c6363d07e12cf475b72df3f676c916eac4d87e5ccf0"),
    "crossfuse-robust20": Shipped("crossfuse-robust14's recipe at half its schedule (1,000 steps), re-trained, with "
                                  "crossfuse-robust19's constants and its own gates by the same rule (0.12 / 0.13 / "
                                  "0.02); chosen on validation by the three-seed rule (docs/protocol.md H79); the "
                                  "default",
                                  "7ff25c30ff7f50ebd21ce38091c5c426e99f2fe6f2e81b6580f0a86ca5a380d8"),
}
DEFAULT_MODEL = "crossfuse-robust20"
FORMAT = 1
CHECKPOINT_KEYS = ("model", "net", "net_config")  # what a training checkpoint must hold to give a network
RUN_FILES = ("best.pt", "last.pt")  # a run folder resolves to the first of these that exists
SPEC_FORMS = ("a shipped model name", "an exported weights .pt", "a training checkpoint (last.pt / best.pt)",
              "a run folder", "an .onnx file")


def list_models() -> list[str]:
    """Names of the shipped models."""
    return list(MODELS)


def weights_path(name: str) -> Path:
    """The weights file of the shipped model ``name``."""
    if name not in MODELS:
        raise UnknownNameError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return WEIGHTS_DIR / f"{name}.pt"


def _short(exc: BaseException) -> str:
    """The informative line of a torch/pickle error (the safe loader's message is a page long)."""
    text = str(exc)
    for key in ("Unsupported global", "Unsupported operand", "Trying to load unsupported"):
        if key in text:
            return text[text.index(key):].splitlines()[0].split(". Please")[0][:200]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


# Checkpoints written before the RNG state was stored as tensors hold NumPy arrays and scalars. These NumPy
# constructors (plain numeric arrays; object arrays would still go through the same restricted unpickler) are the
# only globals allowed on top of torch's weights_only set, and only when a file needs nothing else.
_NUMPY_GLOBALS = ("numpy._core.multiarray._reconstruct", "numpy._core.multiarray.scalar", "numpy.ndarray",
                  "numpy.dtype", *(f"numpy.dtypes.{t}DType" for t in ("UInt32", "Int64", "Int32", "Float64",
                                                                      "Float32", "Bool")))


def _numpy_globals(names: list[str]) -> list[Any] | None:
    """The allowed NumPy objects if ``names`` (the file's globals) are all among them, else ``None``; the dtype
    classes are added because the unpickler builds them without naming them as globals."""
    import importlib

    if not names or not set(names) <= set(_NUMPY_GLOBALS):
        return None
    objs = []
    for name in _NUMPY_GLOBALS:
        module, _, attr = name.rpartition(".")
        objs.append(getattr(importlib.import_module(module), attr))
    return objs


def safe_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; anything it refuses or cannot read -> CheckpointError."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ... for foreign files
        legacy = _numpy_globals(torch.serialization.get_unsafe_globals_in_checkpoint(p)) if (
            "Unsupported global" in str(exc)) else None
        if legacy is not None:  # an older crossfuse checkpoint (NumPy RNG state)
            with torch.serialization.safe_globals(legacy):
                return torch.load(p, map_location="cpu", weights_only=True)
        if "Unsupported global" in str(exc):
            raise CheckpointError(f"{p}: not a crossfuse weights file or training checkpoint: refused by the safe "
                                  f"loader, it would run code when loaded ({_short(exc)})") from None
        raise CheckpointError(f"{p}: not a crossfuse weights file or training checkpoint ({_short(exc)})") from None


def read_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """A crossfuse weights file or training checkpoint as a dict, with ``"kind"`` = ``weights`` | ``checkpoint``.

    ``sha256``: the expected digest of the file (shipped models); a mismatch is a CheckpointError."""
    p = Path(path)
    if sha256 is not None and p.is_file() and (got := file_sha256(p)) != sha256:
        raise CheckpointError(f"{p}: sha256 {got[:12]}... does not match the shipped {sha256[:12]}... "
                              "(damaged or replaced weights file; reinstall crossfuse)")
    blob = safe_load(p)
    if isinstance(blob, dict) and blob.get("format") == FORMAT and isinstance(blob.get("state_dict"), dict):
        return {**blob, "kind": "weights"}
    if isinstance(blob, dict) and all(k in blob for k in CHECKPOINT_KEYS) and isinstance(blob["model"], dict):
        return {"format": FORMAT, "net": blob["net"], "config": blob["net_config"], "state_dict": blob["model"],
                "meta": {k: blob.get(k) for k in ("epoch", "step", "best_score")}, "kind": "checkpoint",
                "checkpoint": blob}
    raise CheckpointError(f"{p}: not a crossfuse weights file or training checkpoint (expected a dict with "
                          f"'format': {FORMAT} and 'state_dict', or {', '.join(map(repr, CHECKPOINT_KEYS))})")


def network_from(blob: dict[str, Any], path: str | os.PathLike) -> nn.Module:
    """The fp32 network (eval mode, CPU) a weights/checkpoint dict of :func:`read_checkpoint` describes."""
    from crossfuse.nets import build

    try:
        net = build(blob["net"], **dict(blob["config"]))
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its weights do not make a crossfuse network {blob.get('net')!r} "
                              f"({_short(exc)})") from None
    return net.eval()


@dataclass
class Resolved:
    """A resolved model spec: a torch network (``module``) or an ONNX file (``onnx``)."""

    name: str  # short label for messages and reports
    kind: str  # shipped | weights | checkpoint | onnx | module | untrained
    source: Path | None = None
    module: nn.Module | None = None
    onnx: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def run_file(folder: Path) -> Path:
    """The checkpoint a run folder stands for: ``best.pt``, else ``last.pt``."""
    for name in RUN_FILES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder}: a folder without best.pt or last.pt (not a crossfuse training run)")


def _resolve_file(p: Path, name: str | None = None, sha256: str | None = None) -> Resolved:
    if p.is_dir():
        p = run_file(p)
    if p.suffix.lower() == ".onnx":
        return Resolved(p.name, "onnx", p, onnx=p)
    blob = read_checkpoint(p, sha256)
    kind = "shipped" if name else blob["kind"]
    label = name or (f"{p.parent.name}/{p.name}" if blob["kind"] == "checkpoint" else p.stem)
    meta = {"net": blob["net"], "config": blob["config"], **(blob.get("meta") or {})}
    return Resolved(label, kind, p, module=network_from(blob, p), meta=meta)


def resolve(spec: Any = None, device: str | torch.device | None = "cpu") -> Resolved:
    """Resolve a model spec (module docstring; ``None`` = :data:`DEFAULT_MODEL`); networks go to ``device``
    (``None``: a given ``nn.Module`` stays where it is, files load on the CPU).

    Raises UnknownNameError (lists the valid names) for an unknown name, FileNotFoundError for a missing file,
    CheckpointError for a file that is not a crossfuse model."""
    if isinstance(spec, nn.Module):
        return Resolved(type(spec).__name__, "module", module=spec if device is None else spec.to(device))
    spec = DEFAULT_MODEL if spec is None else spec
    text = os.fspath(spec)
    if text in MODELS:
        path = weights_path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file missing (reinstall crossfuse, or train and export it: "
                                    "see docs/training.md)")
        r = _resolve_file(path, text, MODELS[text].sha256)
    elif text.startswith("net:"):
        from crossfuse.nets import build

        r = Resolved(text, "untrained", module=build(text[4:]).eval())
    elif Path(text).exists():
        r = _resolve_file(Path(text))
    elif os.sep in text or "/" in text or Path(text).suffix.lower() in (".pt", ".onnx", ".pth"):
        raise FileNotFoundError(f"{text}: no such model file or run folder")
    else:
        raise UnknownNameError(f"unknown model {text!r}; valid models: {', '.join(list_models())} (or "
                               f"{', '.join(SPEC_FORMS[1:])})")
    if r.module is not None and device is not None:
        r.module = r.module.to(device)
    return r


def load_model(spec: Any = DEFAULT_MODEL, device: str | torch.device = "cpu",
               constants: dict[str, Any] | None = None) -> nn.Module:
    """The torch network of ``spec`` (a shipped name, weights file, checkpoint or run folder; see :func:`resolve`)
    in eval mode on ``device``. ``constants``: constructor values that hold no weights replaced (the rule head's
    ``rule_alpha_degraded``, the spread-noise gates ...), the network ``crossfuse export --set K=V`` would write."""
    r = resolve(spec, device)
    if r.module is None:
        raise CheckpointError(f"{r.source}: an ONNX model has no torch network (use it with crossfuse fuse --model)")
    if not constants:
        return r.module
    if "net" not in r.meta:
        raise CheckpointError(f"{r.name}: constants can only be set on a model read from a file")
    blob = {"net": r.meta["net"], "config": {**r.meta["config"], **constants}, "state_dict": r.module.state_dict()}
    return network_from(blob, r.source or r.name).to(device)


def model_info(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The metadata stored with a model (network, config, training summary)."""
    return resolve(name).meta


def export_weights(checkpoint: str | os.PathLike, out: str | os.PathLike, meta: dict[str, Any] | None = None,
                   overwrite: bool = False, config: dict[str, Any] | None = None) -> Path:
    """Write the model of a training checkpoint (``last.pt`` / ``best.pt`` / run folder) as an fp16 weights file;
    ``config``: network constructor values that replace the checkpoint's (constants that hold no weights, e.g. the
    rule head's ``rule_alpha_degraded``), recorded in the file's meta as ``config_overrides``."""
    src = Path(checkpoint)
    blob = read_checkpoint(run_file(src) if src.is_dir() else src)
    blob["config"] = {**blob["config"], **(config or {})}
    network_from(blob, src)  # refuse a checkpoint whose weights do not fit its network (or the overrides)
    info = {**blob["meta"], **(meta or {}), **({"config_overrides": dict(config)} if config else {})}
    out_blob = {"format": FORMAT, "net": blob["net"], "config": dict(blob["config"]),
                "state_dict": {k: v.detach().half() if v.is_floating_point() else v
                               for k, v in blob["state_dict"].items()}, "meta": info}
    return save_pt(out_blob, out, overwrite=overwrite)


def pt_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory (serialised once when written to several files)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_pt(obj: Any, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """``torch.save`` through the project's atomic writer (a crash never leaves half a checkpoint)."""
    return write_bytes_atomic(path, pt_bytes(obj), overwrite=overwrite)


__all__ = ["resolve", "Resolved", "load_model", "list_models", "DEFAULT_MODEL", "MODELS", "Shipped", "model_info",
           "export_weights", "save_pt", "read_checkpoint", "safe_load", "network_from", "run_file", "weights_path",
           "WEIGHTS_DIR", "SPEC_FORMS", "pt_bytes"]
