"""Robustness benchmark: fuse a corrupted tree with several methods and score every output against the CLEAN sources.

Layout (the one ``../shared/bench/make_corrupted.py`` and ``crossfuse corrupt`` write)::

    CLEAN/{ir,vi}/<stem>.png                 the reference: every fused image is scored against these
    TREE/<condition>@<severity>/{ir,vi}/<stem>.png
    FUSED_TREE/<condition>@<severity>/<stem>.png   outputs of an external method (optional FUSED_TREE/clean/)

Methods are crossfuse models (fused through the one inference path, :class:`crossfuse.infer.Fuser`, gray output),
baselines (:data:`BASELINES`: pixel-wise max / mean of IR gray and visible Y, rounded) and external folders. The
clean pairs are a condition of their own (``clean``, severity 0), so each method's drop from its clean-input output
is measured. Per-image rows are cached in ``OUT/cache.jsonl`` (a re-run scores only what is new); problems (missing
conditions or images, size mismatches, unreadable files) are collected by name and never stop the run.
Under ``torchrun`` each rank fuses and scores its share of the (condition, image) pairs, logging new scores to
``OUT/cache.rank<R>.jsonl``; rank 0 gathers the shares (:mod:`crossfuse.shard`), folds those files into
``cache.jsonl`` and alone writes the outputs, which equal a one-process run's (docs/sharding.md).
Aggregation, ranks and the bootstrap live in :mod:`crossfuse.robust_stats`; the report in
:mod:`crossfuse.robust_report`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from crossfuse import io as cio
from crossfuse.errors import InputError, UnknownNameError
from crossfuse.shard import Shard, merge_keyed

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
        p.problems.append(f"{cond.name}: {len(missing)} clean pair(s) missing from the tree: {_names(missing)}")
    if extra:
        p.problems.append(f"{cond.name}: {len(extra)} pair(s) without a clean source, not scored: {_names(extra)}")
    return {s: v for s, v in have.items() if s in p.clean}


def _names(stems: list[str], limit: int = 8) -> str:
    return ", ".join(stems[:limit]) + (f", ... ({len(stems) - limit} more)" if len(stems) > limit else "")


# --------------------------------------------------------------------------------------------------- fusing


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

    from crossfuse.infer import read_pair

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
            ir, vi = read_pair(src["ir"], src["vi"])
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


def _external_outputs(p: Plan, method: Method, pairs: dict[Condition, dict[str, dict[str, Path]]]
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
                              f"{_names(missing)}")
        done.update({(cond.name, s): files[s] for s in items if s in files})
    return done


# --------------------------------------------------------------------------------------------------- scoring


def noise_sigma(img: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (CVIU 1996): sigma of white Gaussian noise from a Laplacian-difference
    filter, on the 0-255 scale. Shown beside EN/SD/SF/AG, which noise inflates."""
    x = np.asarray(img, dtype=np.float64)
    h, w = x.shape
    if h < 3 or w < 3:
        return float("nan")
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    import cv2

    r = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(r).sum() / (6.0 * (w - 2) * (h - 2)))


def score_item(item: tuple[str, Path, Path, Path, str, list[str]]) -> tuple[str, dict[str, float] | None, str]:
    """Worker: score one fused file against its clean pair; an error becomes a reason naming the files."""
    from crossfuse.metrics import compute_metrics
    from crossfuse.metrics.cddfuse import to_gray_cddfuse

    key, ir_p, vi_p, fused_p, profile, names = item
    try:
        arrays = {role: (p, cio.read_image(p, keep_channels=True)) for role, p in
                  (("ir", ir_p), ("vi", vi_p), ("fused", fused_p))}
        cio.check_same_size(arrays)
        vals = compute_metrics(arrays["ir"][1], arrays["vi"][1], arrays["fused"][1], profile, names)
        vals[NOISE] = noise_sigma(to_gray_cddfuse(arrays["fused"][1]))
        return key, vals, ""
    except (ValueError, OSError) as exc:
        return key, None, str(exc)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def cache_key(method: str, cond: str, stem: str, fused: Path, profile: str) -> str:
    """Identifies one score: a changed fused file (size or mtime) or another profile is scored again."""
    st = fused.stat()
    return f"{method}|{cond}|{stem}|{profile}|{st.st_size}|{st.st_mtime_ns}"


def rank_caches(path: Path) -> list[Path]:
    """The per-rank cache files (``cache.rank<R>.jsonl`` beside ``path``) of a sharded run not yet folded in."""
    return sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))


def _read_cache(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            out[rec["key"]] = rec["values"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by an interrupted run
    return out


def load_cache(path: Path) -> dict[str, dict[str, float]]:
    """Cached values by key: ``path`` and any per-rank files an interrupted sharded run left beside it."""
    out: dict[str, dict[str, float]] = {}
    for f in [*rank_caches(path), path]:
        out.update(_read_cache(f))
    return out


def _append(path: Path):
    """``path`` opened for appending, a line cut by an interrupted run first ended so the next record stays whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+b")
    if fh.tell() > 0:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")
    fh.close()
    return open(path, "a", encoding="utf-8")


def fold_cache(path: Path) -> None:
    """Append to ``path`` the entries of the per-rank cache files that it lacks, then remove those files. Run by the
    one process left writing (rank 0 after every rank has finished), so no two processes append to one file."""
    extra = rank_caches(path)
    if not extra:
        return
    have = _read_cache(path)
    with _append(path) as fh:
        for f in extra:
            for key, vals in _read_cache(f).items():
                if key not in have:
                    have[key] = vals
                    fh.write(json.dumps({"key": key, "values": vals}) + "\n")
    for f in extra:
        f.unlink()


def score_all(work: list[tuple[str, Path, Path, Path, str, list[str]]], cache_path: Path, jobs: int = 1,
              progress: bool = True, log: Path | None = None) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Score the work items not in the cache (``jobs`` processes), appending each new row to ``log`` (default the
    cache itself; a sharded run gives each rank its own) as it arrives so an interrupted run resumes. Returns
    values by key and the failures' reasons by key."""
    from tqdm import tqdm

    cached = load_cache(cache_path)
    todo = [w for w in work if w[0] not in cached]
    failures: dict[str, str] = {}
    with _append(log or cache_path) as fh, \
            tqdm(total=len(todo), desc="score", unit="img", disable=not progress or not todo) as bar:
        def take(key: str, vals: dict[str, float] | None, reason: str) -> None:
            if vals is None:
                what = key.rsplit("|", 3)[0].replace("|", " ", 1).replace("|", "/")
                failures[key] = f"{what}: not scored: {reason}"
            else:
                cached[key] = vals
                fh.write(json.dumps({"key": key, "values": vals}) + "\n")
                fh.flush()
            bar.update()

        if jobs <= 1 or len(todo) <= 1:
            for w in todo:
                take(*score_item(w))
        else:
            ctx = multiprocessing.get_context("spawn")  # forking a process with OpenCV/BLAS threads can deadlock
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as pool:
                for res in pool.map(score_item, todo, chunksize=max(1, len(todo) // (16 * jobs))):
                    take(*res)
    return cached, failures


# --------------------------------------------------------------------------------------------------- run


@dataclass
class BenchResult:
    """Per-image rows ``{condition, method, image, <metric>: value}`` plus everything the report needs."""

    profile: str
    metrics: list[str]
    conditions: list[Condition]
    methods: list[Method]
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    outputs: dict[str, dict[tuple[str, str], Path]] = field(default_factory=dict)  # method -> (cond, stem) -> file
    pairs: dict[str, dict[str, dict[str, Path]]] = field(default_factory=dict)  # cond -> stem -> {ir, vi}


def score_metrics(profile: str) -> list[str]:
    """The benchmark's metric columns that ``profile`` defines (ranked, extra, then the noise-inflated ones)."""
    from crossfuse.metrics import list_metrics

    have = set(list_metrics(profile))
    return [m for m in (*RANK_METRICS, *EXTRA_METRICS, *INFO_METRICS) if m in have]


@dataclass
class Share:
    """One rank's part of a run (the whole run in one process): per-image rows and per-image problems under their
    sort key ``(method index, condition, image)``, and the fused files of its pairs by method."""

    rows: list[tuple[tuple[int, str, str], dict]] = field(default_factory=list)
    problems: list[tuple[tuple[int, str, str], str]] = field(default_factory=list)
    outputs: dict[str, dict[tuple[str, str], Path]] = field(default_factory=dict)


def merge_shares(parts: list[Share]) -> Share:
    """The ranks' shares as one, rows and problems in key order (as one process lists them)."""
    outputs: dict[str, dict[tuple[str, str], Path]] = {}
    for part in parts:
        for name, files in part.outputs.items():
            outputs.setdefault(name, {}).update(files)
    return Share(merge_keyed([p.rows for p in parts]), merge_keyed([p.problems for p in parts]), outputs)


def run_benchmark(clean: str | os.PathLike, tree: str | os.PathLike, out: str | os.PathLike, methods: list[Method],
                  *, profile: str = "cddfuse", jobs: int = 1, conditions: list[str] | None = None,
                  fuser_factory: Callable[[str], object] | None = None, progress: bool = True,
                  shard: Shard | None = None) -> BenchResult | None:
    """Fuse every condition of ``tree`` (and the clean pairs) with each method and score each output against the
    clean sources of ``clean``. Fused files go to ``OUT/fused/``, per-image scores to ``OUT/cache.jsonl``.

    Under torchrun (``shard``, default :meth:`Shard.from_env`) each rank fuses and scores every ``world``-th
    (condition, image) pair with every method and rank 0 merges: it returns what one process would (rows and
    per-image problems in (method, condition, image) order), the other ranks ``None``."""
    from crossfuse.metrics import get_profile

    shard = shard or Shard.from_env()
    prof = get_profile(profile)
    out = Path(out)
    p = plan(Path(clean), Path(tree), methods, conditions)
    pairs = {c: condition_pairs(p, c) for c in p.conditions}  # every rank finds the same problems up to here
    res = BenchResult(prof.name, score_metrics(prof.name), p.conditions, methods,
                      pairs={c.name: v for c, v in pairs.items()})
    made = [m for m in methods if m.kind != "external"]
    stale = {m.name: stale_outputs(out / "fused" / m.name, m) for m in made}
    for m in made:
        if stale[m.name] and shard.rank == 0:
            print(f"note: {out / 'fused' / m.name} was made by {stale[m.name]!r} (or an older version of it); "
                  f"fusing {m.name} again", file=sys.stderr)
    mine = set(shard.take([(c.name, s) for c, items in pairs.items() for s in items]))
    part = _run_share(p, out, res, pairs, mine, stale, fuser_factory or _default_fuser, jobs, progress, shard)
    parts = shard.gather(part)
    if parts is None:
        return None
    whole = merge_shares(parts)
    for m in made:  # every rank has finished: the stamps say the fused folders are complete
        write_stamp(out / "fused" / m.name, m)
    fold_cache(out / "cache.jsonl")
    res.outputs, res.rows = whole.outputs, [r for _, r in whole.rows]
    res.problems = p.problems + [msg for _, msg in whole.problems]
    return res


def _run_share(p: Plan, out: Path, res: BenchResult, pairs: dict[Condition, dict[str, dict[str, Path]]],
               mine: set[tuple[str, str]], stale: dict[str, str | None], factory: Callable[[str], object],
               jobs: int, progress: bool, shard: Shard) -> Share:
    """Fuse (models, baselines) or look up (external methods) and score the ``mine`` pairs with every method."""
    share, work, where = Share(), [], {}
    own = {c: {s: v for s, v in items.items() if (c.name, s) in mine} for c, items in pairs.items()}
    for i, m in enumerate(res.methods):
        if m.kind == "external":  # looked up in full by every rank: the same problems everywhere, kept in p
            files = {k: f for k, f in _external_outputs(p, m, pairs).items() if k in mine}
        else:
            files, failed = produce(out, m, own, factory, progress, redo=stale[m.name] is not None)
            share.problems += [((i, *k), msg) for k, msg in failed]
        share.outputs[m.name] = files
        for (cond, stem), f in sorted(files.items()):
            key = cache_key(m.name, cond, stem, f, res.profile)
            where[key] = (i, cond, stem)
            work.append((key, p.clean[stem]["ir"], p.clean[stem]["vi"], f, res.profile, res.metrics))
    log = out / f"cache.rank{shard.rank}.jsonl" if shard.active else None
    values, failures = score_all(work, out / "cache.jsonl", jobs, progress, log)
    share.rows = [(where[k], {"condition": where[k][1], "method": res.methods[where[k][0]].name,
                              "image": where[k][2], **values[k]}) for k, *_ in work if k in values]
    share.problems += [(where[k], msg) for k, msg in failures.items()]
    return share


def _default_fuser(spec: str) -> object:
    from crossfuse.infer import Fuser

    return Fuser(spec, device="cpu")
