"""Training configs: TOML files read with :mod:`tomllib`, merged onto :data:`DEFAULTS` and validated.

Every key a config may set is in :data:`DEFAULTS` (free-form tables: ``model.config`` = the network's constructor
kwargs, ``phase1.losses`` / ``phase2.losses`` = loss name -> weight, see :data:`crossfuse.losses.LOSSES`).
A typo is an error naming the key and the file, never silently ignored. A config is named by a path or, for the
shipped ones (``src/crossfuse/configs/*.toml``), by its name: ``fast``, ``paper``, ``ablation_a``, ``tiny`` ...

Dataset paths in ``[data]`` (``target``, ``exclude_list``) are relative to ``data.root``; ``data.external``
(``patches.npz`` files you made with ``crossfuse align``) are relative to the current directory. An empty
``data.root`` means ``$CROSSFUSE_DATA`` or, when that is unset, ``../shared/data`` relative to the current directory
(the repository root in the docs' commands). Every value must have its default's type (a one-line ConfigError
otherwise), and the network is built once while validating, so ``[model.config]`` mistakes fail before training.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

from crossfuse.errors import CrossfuseError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

FREE_TABLES = ("model.config", "phase1.losses", "phase2.losses", "loss_options")

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "description": "",
    "seed": 0,
    "device": "cpu",  # "cpu", "cuda", "cuda:0" ...; under torchrun each rank uses cuda:LOCAL_RANK
    "threads": 0,  # torch.set_num_threads on CPU (0 = leave torch's default)
    "model": {"name": "fast", "config": {}},
    "data": {
        "root": "",
        "target": "RoadScene",
        "exclude_list": "RoadScene/cddfuse_test50.txt",
        "val_count": 10,
        "val_max_pairs": 10,
        "external": [],  # patches.npz files from `crossfuse align` (absolute or relative to the current directory)
        "external_ratio": 0.0,
        "patch": 64,
        "patches_per_epoch": 2000,
        "batch_size": 8,
        "flip": True,
        "workers": 0,
        "veil": False,  # level the visible crops as Fuser levels frames (the network's vis_veil; crossfuse.veil)
    },
    "schedule": {
        "phase1_epochs": 0,
        "phase2_epochs": 10,
        "lr": 1e-4,
        "lr_step": 20,  # epochs between decays (counted over both phases)
        "lr_gamma": 0.5,
        "lr_min": 1e-6,
        "clip_grad": 0.01,  # max gradient norm (0 = no clipping)
        "weight_decay": 0.0,
        "ema": 0.0,  # decay of an exponential moving average of the weights, saved and validated (0 = off)
    },
    "phase1": {"losses": {}},
    "phase2": {"losses": {}},
    "loss_options": {},  # per-loss keyword arguments, e.g. [loss_options.gradient_max] gain = 1.2
    "ssl": {"beta0_schedule": "cosine", "crop": None, "severity": 1.0, "corruptions": None, "misregister": "either"},
    "validation": {
        "every": 1,
        "profile": "cddfuse",
        "metrics": ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"],
    },
    "output": {"dir": "", "keep_every": 0},
}


class ConfigError(CrossfuseError, ValueError):
    """A config problem; the message names the key and the file."""


def resolve_path(name: str | os.PathLike) -> Path:
    """A config file path, or the shipped config called ``name`` (``fast`` -> ``configs/fast.toml``)."""
    p = Path(name)
    if p.is_file():
        return p
    shipped = CONFIG_DIR / (p.name if p.suffix == ".toml" else f"{p.name}.toml")
    if p.parent == Path(".") and shipped.is_file():
        return shipped
    names = ", ".join(list_configs())
    raise FileNotFoundError(f"{name}: no such config file and not a shipped config (shipped: {names})")


def list_configs() -> list[str]:
    return sorted(f.stem for f in CONFIG_DIR.glob("*.toml"))


def _merge(base: dict, new: dict, where: str, source: str) -> None:
    for key, value in new.items():
        dotted = f"{where}.{key}" if where else key
        if where in FREE_TABLES:  # free keys; a table under one (loss_options.X) is merged key by key, so
            # `--set loss_options.X.k=v` or a child config changes k and keeps X's other options
            both_tables = isinstance(value, dict) and isinstance(base.get(key), dict)
            base[key] = {**base[key], **value} if both_tables else value
            continue
        if key not in base:
            valid = ", ".join(sorted(base))
            raise ConfigError(f"{source}: unknown key {dotted!r} (valid keys{' in [' + where + ']' if where else ''}: "
                              f"{valid})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {dotted!r} must be a table")
            _merge(base[key], value, dotted, source)
        else:
            _check_type(base[key], value, dotted, source)
            base[key] = value


def _check_type(default: Any, value: Any, dotted: str, source: str) -> None:
    """A value must have the type of its default (ints may stand for floats; ``None`` defaults take anything)."""
    if default is None:
        return
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    else:  # lists; data.external may also be one path
        ok = isinstance(value, list) or (dotted == "data.external" and isinstance(value, str))
        want = "a list"
    if not ok:
        raise ConfigError(f"{source}: {dotted!r} must be {want}, got {value!r}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"schedule.lr=1e-3"`` -> (["schedule", "lr"], 0.001); the value is read as a TOML value, else a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def _read_merged(name: str | os.PathLike, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Path]:
    """DEFAULTS, then the config's ``extends`` base (a config name or path, recursively), then the file."""
    path = resolve_path(name)
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' loop ({' -> '.join(str(p) for p in seen)})")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    base = raw.pop("extends", None)
    if base is None:
        cfg = copy.deepcopy(DEFAULTS)
    else:
        cfg, _ = _read_merged(base, (*seen, path.resolve()))
    _merge(cfg, raw, "", str(path))
    return cfg, path


def load_config(name: str | os.PathLike, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read, merge onto the defaults (or onto the config named by a top-level ``extends``), apply ``--set``
    overrides and validate (see :func:`validate`)."""
    cfg, path = _read_merged(name)
    for text in overrides or []:
        keys, value = parse_override(text)
        nested: dict[str, Any] = value
        for k in reversed(keys):
            nested = {k: nested}
        _merge(cfg, nested, "", f"--set {text}")
    cfg["_source"] = str(path)
    validate(cfg)
    return cfg


def from_dict(raw: dict[str, Any], source: str = "<dict>") -> dict[str, Any]:
    """Like :func:`load_config` for a dict (used by tests and the Python API)."""
    cfg = copy.deepcopy(DEFAULTS)
    _merge(cfg, copy.deepcopy(raw), "", source)
    cfg["_source"] = source
    validate(cfg)
    return cfg


def data_root(cfg: dict[str, Any]) -> Path:
    root = cfg["data"]["root"] or os.environ.get("CROSSFUSE_DATA", "") or "../shared/data"
    return Path(root)


def data_path(cfg: dict[str, Any], rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else data_root(cfg) / p


def validate(cfg: dict[str, Any]) -> None:
    """Check loss names, the network name, numbers and that the data exist; raise one-line errors."""
    from crossfuse.losses import LOSSES, list_losses
    from crossfuse.nets import list_networks

    src = cfg.get("_source", "<config>")
    if cfg["model"]["name"] not in list_networks():
        raise ConfigError(f"{src}: model.name {cfg['model']['name']!r} is not a network "
                          f"(valid: {', '.join(list_networks())})")
    _check_network(cfg, src)
    sch = cfg["schedule"]
    for phase in (1, 2):
        losses = cfg[f"phase{phase}"]["losses"]
        for name, w in losses.items():
            if name not in LOSSES:
                raise ConfigError(f"{src}: unknown loss {name!r} in [phase{phase}.losses] "
                                  f"(valid losses: {', '.join(list_losses())})")
            if LOSSES[name].phase != phase:
                raise ConfigError(f"{src}: loss {name!r} belongs to phase {LOSSES[name].phase}, "
                                  f"not [phase{phase}.losses]")
            if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
                raise ConfigError(f"{src}: weight of loss {name!r} must be a number >= 0, got {w!r}")
        if sch[f"phase{phase}_epochs"] > 0 and not losses:
            raise ConfigError(f"{src}: schedule.phase{phase}_epochs > 0 but [phase{phase}.losses] is empty")
    for name, opts in cfg["loss_options"].items():
        if name not in LOSSES or not isinstance(opts, dict):
            raise ConfigError(f"{src}: [loss_options.{name}] must name a loss and be a table "
                              f"(valid losses: {', '.join(list_losses())})")
    for key in ("phase1_epochs", "phase2_epochs", "lr_step"):
        if not isinstance(sch[key], int) or sch[key] < 0:
            raise ConfigError(f"{src}: schedule.{key} must be an integer >= 0, got {sch[key]!r}")
    if not isinstance(sch["ema"], (int, float)) or isinstance(sch["ema"], bool) or not 0 <= sch["ema"] < 1:
        raise ConfigError(f"{src}: schedule.ema must be a number in [0, 1) (0 = off), got {sch['ema']!r}")
    if sch["phase1_epochs"] + sch["phase2_epochs"] == 0:
        raise ConfigError(f"{src}: schedule has no epochs")
    from crossfuse.augment import MISREGISTER

    if cfg["ssl"]["misregister"] not in MISREGISTER:
        raise ConfigError(f"{src}: ssl.misregister must be one of {', '.join(MISREGISTER)}, "
                          f"got {cfg['ssl']['misregister']!r}")
    d = cfg["data"]
    for key in ("patch", "patches_per_epoch", "batch_size"):
        if not isinstance(d[key], int) or d[key] < 1:
            raise ConfigError(f"{src}: data.{key} must be a positive integer, got {d[key]!r}")
    if not 0 <= float(d["external_ratio"]) <= 1:
        raise ConfigError(f"{src}: data.external_ratio must be in [0, 1], got {d['external_ratio']!r}")
    if d["veil"] and not float(cfg["model"]["config"].get("vis_veil", 0) or 0) > 0:
        raise ConfigError(f"{src}: data.veil = true needs a network that declares model.config.vis_veil > 0")
    if float(d["external_ratio"]) > 0 and not d["external"]:
        raise ConfigError(f"{src}: data.external_ratio > 0 but data.external lists no patches.npz")
    if isinstance(d["external"], str):
        d["external"] = [d["external"]] if d["external"] else []
    target = data_path(cfg, d["target"])
    for sub in ("ir", "vi"):
        if not (target / sub).is_dir():
            raise ConfigError(f"{src}: data folder not found: {target / sub} (data.target={d['target']!r}, "
                              f"data.root={str(data_root(cfg))!r}; set data.root or $CROSSFUSE_DATA)")
    if d["exclude_list"] and not data_path(cfg, d["exclude_list"]).is_file():
        raise ConfigError(f"{src}: data.exclude_list file not found: {data_path(cfg, d['exclude_list'])}")
    for ext in d["external"]:
        if not Path(ext).is_file():
            raise ConfigError(f"{src}: data.external file not found: {ext} "
                              "(make it with `crossfuse align ... --out DIR`)")


def _check_network(cfg: dict[str, Any], src: str) -> None:
    """Build the network once: ``[model.config]`` keys it does not take, or a phase I it lacks, fail here."""
    from crossfuse.nets import build

    name = cfg["model"]["name"]
    try:
        net = build(name, **cfg["model"]["config"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{src}: [model.config] does not fit network {name!r}: {exc}") from None
    if cfg["schedule"]["phase1_epochs"] > 0 and not getattr(net, "supports_phase1", False):
        raise ConfigError(f"{src}: network {name!r} has no phase I; set schedule.phase1_epochs = 0")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(cfg: dict[str, Any], prefix: str = "") -> str:
    """Write a nested dict of scalars/lists/tables as TOML (``None`` values are left out: TOML has no null)."""
    lines, tables = [], []
    for k, v in cfg.items():
        if k.startswith("_"):
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        elif v is not None:
            key = k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)
            lines.append(f"{key} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}.{k}" if prefix else k
        out += f"\n[{name}]\n" + to_toml(v, name)
    return out


__all__ = ["DEFAULTS", "ConfigError", "load_config", "from_dict", "resolve_path", "list_configs", "parse_override",
           "data_root", "data_path", "validate", "to_toml", "CONFIG_DIR"]
