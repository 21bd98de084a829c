"""The views ablation over seeds: mean ± std per variant and paired bootstrap CIs of variant differences.

    PYTHONPATH=src python benchmarks/ablation_seeds.py --tnoc /tmp/tnoc --cache /tmp/h4_eval \\
        --variant a=runs/h4/abl_a_s0,runs/h4/abl_a_s1,runs/h4/abl_a_s2 --variant d=runs/h4/abl_d_s0,... \\
        --contrast d-a --tnoc-every 3 --md table.md

Each model (a run folder's ``last.pt``, a weights file or a shipped name) is run through ``crossfuse.infer.Fuser``
on TNO-42 and RoadScene-test50 (clean, 8 metrics, ``cddfuse`` profile, fused Y rounded to 8 bits) and on TNO-C
(``../shared/bench/make_corrupted.py`` output: every condition@severity folder, scored against the CLEAN TNO sources
on MI, SCD, VIF, Qabf, SSIM). Per-image values are cached per model (``--cache``), so a rerun only evaluates new
models. ``--tnoc-every K`` keeps every K-th TNO pair (sorted stems) in each TNO-C set, to fit a CPU budget (the
tables say so). The paired bootstrap resamples the evaluation cases (images; for TNO-C, set × image) with
replacement, 2000 times, on the per-case difference of the seed-averaged variants; the CI is the 2.5-97.5 %
percentile interval. These are test sets: this script reports, it chooses nothing (docs/protocol.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from robust_protocol import RANKED, as_fuser, data_root, emit, fused_u8, load_pair

from crossfuse.io import list_images, luma_u8, read_image, read_stem_list
from crossfuse.metrics import compute_metrics
from crossfuse.robust_stats import paired_bootstrap

METRICS8 = ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"]


def clean_cases(root: Path) -> list[tuple[str, str]]:
    tno = sorted(set(list_images(root / "TNO" / "ir")) & set(list_images(root / "TNO" / "vi")))
    road = read_stem_list(root / "RoadScene" / "cddfuse_test50.txt")
    return [("TNO", s) for s in tno] + [("RoadScene", s) for s in road]


def tnoc_cases(tnoc: Path, every: int) -> list[tuple[str, str]]:
    out = []
    for cond in sorted(p.name for p in tnoc.iterdir() if (p / "ir").is_dir()):
        stems = sorted(list_images(tnoc / cond / "ir"))
        out += [(cond, s) for s in stems[::every]]
    return out


def evaluate_model(spec: str, root: Path, tnoc: Path | None, every: int, register: bool = False,
                   steps: dict | None = None) -> dict[str, dict]:
    """{case key: {metric: value}} for one model; keys 'TNO/stem', 'RoadScene/stem', 'tnoc/cond/stem'.
    ``register``: the model's Fuser registers each pair first (``crossfuse fuse --register``); ``steps``: input steps
    overriding the model's own (``--steps-of``)."""
    fuser = as_fuser(spec, register=register, **(steps or {}))
    rows: dict[str, dict] = {}
    for ds, stem in clean_cases(root):
        ir, vi = load_pair(root, ds, stem)
        rows[f"{ds}/{stem}"] = compute_metrics(ir, vi, fused_u8(fuser, ir, vi), profile="cddfuse", metrics=METRICS8)
    if tnoc is not None:
        for cond, stem in tnoc_cases(tnoc, every):
            ir, vi = load_pair(root, "TNO", stem)
            ci = luma_u8(read_image(list_images(tnoc / cond / "ir")[stem]))
            cv = read_image(list_images(tnoc / cond / "vi")[stem])
            f = fused_u8(fuser, ci, cv)
            rows[f"tnoc/{cond}/{stem}"] = compute_metrics(ir, vi, f, profile="cddfuse", metrics=RANKED)
    return rows


def cached(spec: str, cache: Path, root: Path, tnoc: Path | None, every: int,
           register: bool = False, steps_of: str | None = None) -> dict[str, dict]:
    key = str(Path(spec).resolve()).strip("/").replace("/", "__") if Path(spec).exists() else spec
    suffix = ("__register" if register else "") + (f"__steps-{steps_of}" if steps_of else "")
    path = cache / f"{key}{suffix}__every{every}.json"
    if path.is_file():
        return json.loads(path.read_text())
    rows = evaluate_model(spec, root, tnoc, every, register, steps_declared_by(steps_of) if steps_of else None)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def steps_declared_by(model: str) -> dict:
    """The input steps (``crossfuse.backends.INPUT_STEPS``) that ``model`` declares, to run other models with them."""
    from crossfuse.backends import declared_steps
    from crossfuse.infer import Fuser

    return declared_steps(Fuser(model, device="cpu").runner)  # torch or ONNX: the backend holds what was declared


def group_means(rows: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Dataset means: TNO, RoadScene (8 metrics), TNO-C = mean over sets of the set means (5 metrics)."""
    out: dict[str, dict[str, float]] = {}
    for ds, names in (("TNO", METRICS8), ("RoadScene", METRICS8)):
        rs = [v for k, v in rows.items() if k.startswith(ds + "/")]
        out[ds] = {m: float(np.mean([r[m] for r in rs])) for m in names}
    sets = sorted({k.split("/")[1] for k in rows if k.startswith("tnoc/")})
    if sets:
        per = [{m: np.mean([v[m] for k, v in rows.items() if k.startswith(f"tnoc/{s}/")]) for m in RANKED}
               for s in sets]
        out["TNO-C"] = {m: float(np.mean([p[m] for p in per])) for m in RANKED}
    return out


def bootstrap_diff(a: list[dict[str, dict]], b: list[dict[str, dict]], prefix: str, metric: str,
                   n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95 % CI of seed-mean(b) - seed-mean(a) over the cases whose key starts with ``prefix``."""
    keys = sorted(k for k in a[0] if k.startswith(prefix))
    da = np.mean([[r[k][metric] for k in keys] for r in a], axis=0)
    db = np.mean([[r[k][metric] for k in keys] for r in b], axis=0)
    return paired_bootstrap(db, da, resamples=n_boot, seed=seed)


def tables(results: dict[str, list[dict[str, dict]]], contrasts: list[str]) -> str:
    lines = []
    for ds, names in (("TNO", METRICS8), ("RoadScene", METRICS8), ("TNO-C", RANKED)):
        if not all(ds in group_means(r) for rs in results.values() for r in rs):
            continue
        lines += [f"\n#### {ds}: mean ± std over seeds\n", "| variant | seeds | " + " | ".join(names) + " |",
                  "|---" * (len(names) + 2) + "|"]
        for v, rs in results.items():
            g = np.array([[group_means(r)[ds][m] for m in names] for r in rs])
            cells = " | ".join(f"{mu:.3f} ± {sd:.3f}" for mu, sd in zip(g.mean(0), g.std(0, ddof=1) if len(g) > 1
                                                                       else np.zeros(len(names))))
            lines.append(f"| {v} | {len(rs)} | {cells} |")
        prefix = {"TNO": "TNO/", "RoadScene": "RoadScene/", "TNO-C": "tnoc/"}[ds]
        for c in contrasts:
            hi, lo = c.split("-")
            if hi in results and lo in results:
                cis = [bootstrap_diff(results[lo], results[hi], prefix, m) for m in names]
                lines.append(f"| **{c}** (95 % CI) | | " + " | ".join(
                    f"{mu:+.3f} [{lo_ci:+.3f}, {hi_ci:+.3f}]" for mu, lo_ci, hi_ci in cis) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=RUN,RUN,...")
    ap.add_argument("--contrast", action="append", default=[], metavar="HI-LO", help="e.g. d-a")
    ap.add_argument("--tnoc", type=Path, help="TNO-C folder (make_corrupted.py output); omitted: clean sets only")
    ap.add_argument("--tnoc-every", type=int, default=1, help="keep every K-th TNO pair in each TNO-C set")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/crossfuse_ablation_cache"))
    ap.add_argument("--md", type=Path, help="also write the tables here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps-of", metavar="MODEL",
                    help="run every variant with the input steps MODEL declares (e.g. the shipped model's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = data_root()
    results: dict[str, list[dict[str, dict]]] = {}
    for item in args.variant:
        name, runs = item.split("=", 1)
        results[name] = [cached(r, args.cache, root, args.tnoc, args.tnoc_every, steps_of=args.steps_of)
                         for r in runs.split(",") if r]
    text = tables(results, args.contrast)
    emit(text, args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
