"""Fused files of a robustness run (:mod:`crossfuse.robust`): models and baselines fused into ``OUT/fused/``
(reused on resume, redone when the method's stamp changed), external methods looked up in their FUSED_TREE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from crossfuse import io as cio
from crossfuse.errors import InputError
from crossfuse.robust_plan import CLEAN, Condition, Method, Plan, get_baseline, list_names, parse_condition


def gray_planes(ir: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IR gray and visible Y (BT.601), float64 0-255, rounded as the evaluator reads them."""
    return cio.rgb_to_gray(cio.to_float255(ir)), cio.rgb_to_gray(cio.to_float255(vi))


def fused_path(out: Path, method: Method, cond: Condition, stem: str) -> Path:
    return out / "fused" / method.name / cond.name / f"{stem}.png"


def produce(out: Path, method: Method, pairs: dict[Condition, dict[str, dict[str, Path]]],
            fuser_factory: Callable[[str], object], progress: bool = True, redo: bool = False
            ) -> tuple[dict[tuple[str, str], Path], list[tuple[tuple[str, str], str]]]:
    """Fused files of a model or baseline ``method`` per ``(condition, stem)``, and the failures by the same key:
    existing files are reused (resume) unless ``redo``; what is missing is fused into ``OUT/fused/<method>/``."""
    from tqdm import tqdm

    done: dict[tuple[str, str], Path] = {}
    failed: list[tuple[tuple[str, str], str]] = []
    todo = []
    for cond, items in pairs.items():
        for stem, src in items.items():
            target = fused_path(out, method, cond, stem)
            if target.is_file() and not redo:
                done[(cond.name, stem)] = target
            else:
                todo.append((cond, stem, src))
    fuser = fuser_factory(method.spec) if todo and method.kind == "model" else None
    for cond, stem, src in tqdm(todo, desc=f"fuse {method.name}", unit="img", disable=not progress or not todo):
        try:
            ir, vi = cio.read_pair(src["ir"], src["vi"])
            if fuser is not None:
                fused = fuser.fuse(ir, vi, gray=True, dtype=np.uint8)
            else:
                fused = cio.quantize(get_baseline(method.spec)(*gray_planes(ir, vi)))
            done[(cond.name, stem)] = cio.write_image(fused_path(out, method, cond, stem), fused, overwrite=True)
        except (ValueError, OSError) as exc:
            failed.append(((cond.name, stem), f"{method.name} {cond.name}/{stem}: not fused: {exc}"))
    return done, failed


def method_stamp(method: Method) -> dict:
    """What made a method's fused files: its spec, and for a model file or run folder the size and mtime of the
    files in it, so a retrained model under the same name is noticed."""
    stamp: dict = {"kind": method.kind, "spec": method.spec}
    path = Path(method.spec)
    if method.kind == "model" and path.exists():
        files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
        stamp["files"] = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files[:200]]
    return stamp


def stale_outputs(folder: Path, method: Method) -> str | None:
    """The spec recorded in ``folder/method.json`` when it differs from ``method`` (its earlier outputs came from
    something else and are all fused again), else ``None``. The stamp is written only once the method's files are
    all made (:func:`write_stamp`), so an interrupted re-fusing is redone, and ranks never see each other's stamp."""
    path = folder / "method.json"
    old = json.loads(path.read_text()) if path.is_file() else None
    return None if old is None or old == method_stamp(method) else str(old.get("spec"))


def write_stamp(folder: Path, method: Method) -> None:
    cio.write_bytes_atomic(folder / "method.json", json.dumps(method_stamp(method), indent=1), overwrite=True)


def external_outputs(p: Plan, method: Method, pairs: dict[Condition, dict[str, dict[str, Path]]]
                      ) -> dict[tuple[str, str], Path]:
    root = Path(method.spec)
    if not root.is_dir():
        raise InputError(f"--method {method.name}={root}: folder not found")
    known = {c.name for c in pairs}
    p.problems += [f"{method.name}: {d} has no counterpart in the corrupted tree, not scored"
                   for d in sorted(root.iterdir()) if d.is_dir() and d.name not in known
                   and parse_condition(d.name) is not None]
    done: dict[tuple[str, str], Path] = {}
    for cond, items in pairs.items():
        folder = root / cond.name
        if not folder.is_dir():
            if cond.name != CLEAN:  # clean outputs are optional (only the drop needs them)
                p.problems.append(f"{method.name}: no outputs for condition {cond.name} ({folder} missing)")
            continue
        try:
            files = cio.list_images(folder)
        except cio.PairingError as exc:
            p.problems.append(f"{method.name}: {exc}")
            continue
        missing = sorted(set(items) - set(files))
        if missing:
            p.problems.append(f"{method.name} {cond.name}: {len(missing)} fused image(s) missing in {folder}: "
                              f"{list_names(missing)}")
        done.update({(cond.name, s): files[s] for s in items if s in files})
    return done
