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
Planning lives in :mod:`crossfuse.robust_plan`, fusing in :mod:`crossfuse.robust_fuse`, scoring and the cache in
:mod:`crossfuse.robust_score` (their public names are importable from here too); aggregation, ranks and the
bootstrap in :mod:`crossfuse.robust_stats`; the report in :mod:`crossfuse.robust_report`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from crossfuse.robust_fuse import (
    external_outputs,
    fused_path,
    gray_planes,
    method_stamp,
    produce,
    stale_outputs,
    write_stamp,
)
from crossfuse.robust_plan import (
    BASELINES,
    CLEAN,
    EXTRA_METRICS,
    INFO_METRICS,
    NOISE,
    RANK_METRICS,
    Condition,
    Method,
    Plan,
    condition_pairs,
    discover_conditions,
    get_baseline,
    parse_condition,
    parse_methods,
    plan,
)
from crossfuse.robust_score import cache_key, fold_cache, load_cache, noise_sigma, rank_caches, score_all, score_item
from crossfuse.shard import Shard, merge_keyed


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
            files = {k: f for k, f in external_outputs(p, m, pairs).items() if k in mine}
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


__all__ = ["RANK_METRICS", "EXTRA_METRICS", "INFO_METRICS", "NOISE", "CLEAN", "BASELINES", "get_baseline", "Condition",
           "Method", "Plan", "parse_condition", "discover_conditions", "parse_methods", "plan", "condition_pairs",
           "gray_planes", "fused_path", "produce", "method_stamp", "stale_outputs", "write_stamp", "external_outputs",
           "noise_sigma", "score_item", "cache_key", "rank_caches", "load_cache", "fold_cache", "score_all",
           "BenchResult", "score_metrics", "Share", "merge_shares", "run_benchmark"]
