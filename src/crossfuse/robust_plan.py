"""Planning a robustness run (:mod:`crossfuse.robust`): the metric groups, the baselines registry, the methods named
on the command line, the conditions of a corrupted tree and the pairs each condition has a clean reference for.
Every problem found on the way is recorded by name, never raised, unless nothing at all can be scored."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from crossfuse import io as cio
from crossfuse.errors import InputError, UnknownNameError

# Source-referenced metrics: the only ones that rank (PEERS_ROBUST.md). EXTRA are source-referenced but not
# ranked (not in the reference tables); INFO rise with noise, so they are shown only beside a noise estimate.
RANK_METRICS = ("MI", "SCD", "VIF", "Qabf", "SSIM")
EXTRA_METRICS = ("CC", "PSNR")
INFO_METRICS = ("EN", "SD", "SF", "AG")
NOISE = "noise_sigma"
CLEAN = "clean"
_COND_RE = re.compile(r"^(?P<base>[A-Za-z0-9_\-]+)@(?P<sev>[0-9]+(?:\.[0-9]+)?)$")


def _max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(a, b)


def _average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2.0


# name -> fn(ir_gray, vis_y) on float64 0-255 planes; the result is rounded and clipped to uint8
BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"max": _max, "average": _average}


def get_baseline(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if name not in BASELINES:
        raise UnknownNameError(f"unknown baseline {name!r}; valid baselines: {', '.join(BASELINES)}")
    return BASELINES[name]


@dataclass(frozen=True)
class Condition:
    name: str  # folder name, e.g. "vis_noise@1" ("clean" for the clean sources)
    base: str
    severity: float
    ir_dir: Path
    vi_dir: Path


@dataclass(frozen=True)
class Method:
    name: str
    spec: str  # model spec (name, weights, checkpoint, run folder, .onnx), baseline name, or the external FUSED_TREE
    kind: str  # "model" | "baseline" | "external"


@dataclass
class Plan:
    """What to score: conditions, methods, the clean pairs, and the problems found while planning."""

    clean: dict[str, dict[str, Path]]  # stem -> {"ir": path, "vi": path}
    conditions: list[Condition]
    methods: list[Method]
    problems: list[str] = field(default_factory=list)


def parse_condition(name: str) -> tuple[str, float] | None:
    """``"vis_noise@1"`` -> ``("vis_noise", 1.0)``; ``None`` for a name not of that form."""
    m = _COND_RE.match(name)
    return (m.group("base"), float(m.group("sev"))) if m else None


def discover_conditions(tree: Path, problems: list[str]) -> list[Condition]:
    """The ``<condition>@<severity>`` folders of ``tree`` that hold ``ir/`` and ``vi/``; the rest become problems,
    as do conditions a ``manifest.json`` lists but the tree lacks."""
    if not tree.is_dir():
        raise InputError(f"{tree}: corrupted tree not found (expected <condition>@<severity>/{{ir,vi}}/ folders)")
    found = []
    for d in sorted(p for p in tree.iterdir() if p.is_dir()):
        parsed = parse_condition(d.name)
        if parsed is None:
            problems.append(f"{d}: not a <condition>@<severity> folder, ignored")
        elif not ((d / "ir").is_dir() and (d / "vi").is_dir()):
            problems.append(f"{d}: condition without ir/ and vi/ folders, skipped")
        else:
            found.append(Condition(d.name, parsed[0], parsed[1], d / "ir", d / "vi"))
    _check_grid(tree, found, problems)
    manifest = tree / "manifest.json"
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text()).get("conditions", [])
        except (json.JSONDecodeError, AttributeError) as exc:
            problems.append(f"{manifest}: unreadable manifest ({exc})")
            listed = []
        have = {c.name for c in found}
        problems += [f"{tree / name}: condition listed in manifest.json is missing" for name in listed
                     if name not in have]
    if not found:
        raise InputError(f"{tree}: no <condition>@<severity>/{{ir,vi}} folders")
    return sorted(found, key=lambda c: (c.base, c.severity))


def _model_name(item: str) -> tuple[str, str]:
    """``NAME=SPEC`` -> (NAME, SPEC); a bare spec is named by itself, or by its file/folder name if it is a path."""
    name, sep, spec = item.partition("=")
    if sep:
        return name, spec
    p = Path(item)
    return (p.stem if p.suffix.lower() in (".pt", ".onnx") else p.name) if (os.sep in item or p.exists()) \
        else item, item


def _check_grid(tree: Path, found: list[Condition], problems: list[str]) -> None:
    """Without a manifest, a hole in the condition x severity grid is the likeliest sign of a missing folder: name
    every severity some condition has and another (of the same kind of scale) lacks. Sweeps are left alone."""
    from crossfuse.degrade import SWEEPS

    grid: dict[str, set[float]] = {}
    for c in found:
        if c.base not in SWEEPS:
            grid.setdefault(c.base, set()).add(c.severity)
    every = set().union(*grid.values()) if grid else set()
    for base, sevs in sorted(grid.items()):
        problems += [f"{tree / f'{base}@{s:g}'}: missing (other conditions have severity {s:g})"
                     for s in sorted(every - sevs)]


def parse_methods(models: list[str], baselines: list[str], external: list[str]) -> list[Method]:
    """Methods from the CLI lists; models are ``SPEC`` or ``NAME=SPEC``, ``external`` items ``NAME=FUSED_TREE``.
    Names must be unique."""
    out = [Method(*_model_name(m), "model") for m in models]
    for b in baselines:
        get_baseline(b)
        out.append(Method(b, b, "baseline"))
    for item in external:
        name, sep, tree = item.partition("=")
        if not sep or not name or not tree:
            raise InputError(f"--method {item!r}: expected NAME=FUSED_TREE")
        out.append(Method(name, tree, "external"))
    names = [m.name for m in out]
    for m in out:
        if not re.fullmatch(r"[A-Za-z0-9_.+\-]+", m.name):
            raise InputError(f"method name {m.name!r}: use letters, digits and _.+- only")
    if len(set(names)) != len(names):
        raise InputError(f"method names must be unique, got {', '.join(names)}")
    if not out:
        raise InputError("no methods: give --models, --baselines or --method")
    return out


def plan(clean: Path, tree: Path, methods: list[Method], conditions: list[str] | None = None) -> Plan:
    """Match the clean pairs, discover the conditions (optionally only those named) and check their pairs."""
    clean_match = cio.match_folders({"ir": clean / "ir", "vi": clean / "vi"})
    problems = [f"clean {p}" for p in clean_match.problems]
    if not clean_match.items:
        raise InputError(f"{clean}: no ir/vi pairs")
    conds = discover_conditions(tree, problems)
    if conditions:
        unknown = sorted(set(conditions) - {c.name for c in conds} - {c.base for c in conds})
        problems += [f"{tree / u}: asked for with --conditions but not in the tree" for u in unknown]
        conds = [c for c in conds if c.name in conditions or c.base in conditions]
    clean_cond = Condition(CLEAN, CLEAN, 0.0, clean / "ir", clean / "vi")
    return Plan(dict(clean_match.items), [clean_cond, *conds], methods, problems)


def condition_pairs(p: Plan, cond: Condition) -> dict[str, dict[str, Path]]:
    """The condition's pairs that have a clean reference; missing and extra stems are recorded as problems."""
    if cond.name == CLEAN:
        return p.clean
    matched = cio.match_folders({"ir": cond.ir_dir, "vi": cond.vi_dir})
    p.problems += [f"{cond.name}: {x}" for x in matched.problems]
    have = dict(matched.items)
    missing = sorted(set(p.clean) - set(have))
    extra = sorted(set(have) - set(p.clean))
    if missing:
        p.problems.append(f"{cond.name}: {len(missing)} clean pair(s) missing from the tree: {list_names(missing)}")
    if extra:
        p.problems.append(f"{cond.name}: {len(extra)} pair(s) without a clean source, not scored: {list_names(extra)}")
    return {s: v for s, v in have.items() if s in p.clean}


def list_names(stems: list[str], limit: int = 8) -> str:
    return ", ".join(stems[:limit]) + (f", ... ({len(stems) - limit} more)" if len(stems) > limit else "")
