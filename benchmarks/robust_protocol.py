"""The validation protocol of docs/protocol.md: held-out external pairs, the aligned pool, validation scores.

    PYTHONPATH=src python benchmarks/robust_protocol.py --show                  # the split and hold-out stems
    PYTHONPATH=src python benchmarks/robust_protocol.py --align runs/align128_ho  # aligned pool without hold-outs
    PYTHONPATH=src python benchmarks/robust_protocol.py --validate crossfuse-fast runs/x/last.pt --json v.json
    PYTHONPATH=src python benchmarks/robust_protocol.py --rank runs/x runs/y     # rank score v2 against the panel
    PYTHONPATH=src python benchmarks/robust_protocol.py --dark crossfuse-fast   # dark-pixel % on every dataset
    PYTHONPATH=src python benchmarks/robust_protocol.py --sanity crossfuse-fast # LLVIP-32, MSRS-12 vs max/average

Validation = RoadScene-val (10) + LLVIP-val (6) + MSRS-val (3), clean and corrupted with ``crossfuse.corruptions``
(six conditions at severity 1.5, two per pair, seeded per pair and condition). Every model is run through
``crossfuse.infer.Fuser``; fused Y is rounded to 8 bits and scored with the ``cddfuse`` profile, corrupted results
against the CLEAN sources. Score = mean over MI, SCD, VIF, Qabf, SSIM of model / max-fusion (same inputs), averaged
over clean and corrupted. Test sets (TNO, RoadScene-test50, TNO-C) are never read here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from crossfuse.data import make_split
from crossfuse.io import list_images, luma_u8, quantize, read_pair
from crossfuse.metrics import compute_metrics
from crossfuse.metrics.core import crushed_dark_percent
from crossfuse.robust_plan import get_baseline

RANKED = ["MI", "SCD", "VIF", "Qabf", "SSIM"]
TEXTURE = ["EN", "SD", "SF"]
HOLDOUT = {"LLVIP": 6, "MSRS": 3}  # validation pairs held out of the external pool (seeded draw, seed 0)
CONDITIONS = [("gaussian_noise", "both"), ("low_light", "vis"), ("haze", "both"), ("blur", "both"),
              ("stripe_noise", "ir"), ("jpeg", "both")]
# scored on every validation pair (not cycled): since session 15 a rigid IR misregistration, since session 16 the
# two corruptions held out of every training pool (crossfuse.corruptions.HELD_OUT; docs/protocol.md).
# since session 18 (H77's amendment) the held-out correlated noise on the visible plane alone, under its own label.
# --every-pair K keeps the first K (0: the six cycled conditions of the earlier cards, 1: session 15's seven, 3: the
# nine of sessions 16-17; --six-conditions / --seven-conditions are K = 0 / 1).
EVERY_PAIR_CONDITIONS = [("misregistration", "ir"), ("correlated_noise", "both"), ("column_fpn", "ir"),
                         ("correlated_noise_vis", "vis")]
CORRUPTION_OF = {"correlated_noise_vis": "correlated_noise"}  # a condition label -> the suite's corruption
SEVERITY = 1.5
DARK_MARGIN = 10  # grey levels
# the rank score's fixed reference panel (docs/protocol.md "Rank score (v2)"), declared before any pilot it scores
PANEL = ["max", "average", "crossfuse-fast", "crossfuse-robust", "crossfuse-robust2", "crossfuse-robust3"]


def data_root() -> Path:
    return Path(os.environ.get("CROSSFUSE_DATA", "../shared/data"))


def roadscene_split(root: Path):
    """RoadScene train / val / test exactly as the trainer makes it (fast.toml: val_count 10, seed 0)."""
    return make_split(root / "RoadScene", root / "RoadScene/cddfuse_test50.txt", 10, 0)


def external_split(root: Path, name: str):
    """An external dataset's split: ``.val`` held out for validation, ``.train`` the pairs that feed the aligned pool
    (same seeded draw as RoadScene's validation)."""
    return make_split(root / name, None, HOLDOUT[name], 0)


def holdout(root: Path, name: str) -> list[str]:
    """The held-out validation stems of an external dataset."""
    return external_split(root, name).val


def case_seed(subset: str, stem: str, condition: str) -> int:
    """The seed of one corrupted validation case (a fixed function of subset, stem and condition)."""
    return zlib.crc32(f"{subset}/{stem}/{condition}".encode())


def validation_stems(root: Path) -> dict[str, list[str]]:
    return {"RoadScene": roadscene_split(root).val, **{n: holdout(root, n) for n in HOLDOUT}}


def build_align(root: Path, out: Path, patch: int = 128) -> Path:
    """Top-K aligned pool (K 1000, ``patch`` px, stride = patch; 128 for the robust recipes, 64 for the paper
    network) from LLVIP + MSRS minus their hold-outs; target statistics on the RoadScene train split only."""
    from crossfuse.align import align, save_alignment
    from crossfuse.patches import load_pairs

    sp = roadscene_split(root)
    exts = [load_pairs(root / n, exclude=holdout(root, n), lazy_ir=True) for n in HOLDOUT]
    res = align(root / "RoadScene", exts, patch=patch, stride=patch, k=1000, exclude=sp.test + sp.val)
    return save_alignment(res, out)


def load_pair(root: Path, dataset: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(IR gray uint8, stored visible uint8) of one pair."""
    ir, vi = read_pair(list_images(root / dataset / "ir")[stem], list_images(root / dataset / "vi")[stem])
    return luma_u8(ir), vi


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(a.astype(np.float32) / 255.0)
    return t.permute(2, 0, 1)[None] if a.ndim == 3 else t[None, None]


def _to_u8(t: torch.Tensor) -> np.ndarray:
    a = np.clip(np.round(t[0].permute(1, 2, 0).numpy() * 255.0), 0, 255).astype(np.uint8)
    return a[..., 0] if a.shape[2] == 1 else a


def corruption_of(label: str) -> str:
    """The suite's corruption a validation condition label applies (:data:`CORRUPTION_OF`, else the label itself)."""
    return CORRUPTION_OF.get(label, label)


def corrupt_pair(ir: np.ndarray, vi: np.ndarray, cond: tuple[str, str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair with ``cond = (label, modality)`` applied at :data:`SEVERITY` (deterministic for ``seed``; the
    corruption is :func:`corruption_of` the label)."""
    from crossfuse.corruptions import corrupt

    label, mod = cond
    name = corruption_of(label)
    g = torch.Generator().manual_seed(seed)
    if mod in ("ir", "both"):
        ir = _to_u8(corrupt(name, _to_tensor(ir), SEVERITY, g, "ir"))
    if mod in ("vis", "both"):
        vi = _to_u8(corrupt(name, _to_tensor(vi), SEVERITY, g, "vis"))
    return ir, vi


def fused_u8(fuser, ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """Fused Y of one pair, 8-bit rounded (``fuser`` = a :class:`crossfuse.infer.Fuser`, ``"max"`` /
    ``"average"``, or any callable (IR u8, stored visible u8) -> fused Y u8, e.g. a target rule)."""
    if isinstance(fuser, str):  # the bench's baselines on this protocol's planes (IR gray, luma_u8 of visible)
        return quantize(get_baseline(fuser)(ir.astype(np.float64), luma_u8(vi).astype(np.float64)))
    if not hasattr(fuser, "fuse_y"):
        return fuser(ir, vi)
    return quantize(fuser.fuse_y(ir, vi) * 255.0)


def validation_cases(root: Path):
    """Yield (subset, stem, condition or None, clean ir, clean vi, input ir, input vi) for the validation set."""
    i = 0
    for subset, stems in validation_stems(root).items():
        for stem in stems:
            ir, vi = load_pair(root, subset, stem)
            yield subset, stem, None, ir, vi, ir, vi
            cycled = [CONDITIONS[i % len(CONDITIONS)], CONDITIONS[(i + 3) % len(CONDITIONS)]]
            for cond in cycled + EVERY_PAIR_CONDITIONS:
                yield (subset, stem, cond[0], ir, vi, *corrupt_pair(ir, vi, cond, case_seed(subset, stem, cond[0])))
            i += 1


def as_fuser(spec: str, register: bool = False, **steps):
    """``"max"`` / ``"average"`` (pixel-wise max / mean of the sources), or a Fuser for anything
    ``crossfuse.models.resolve`` takes; a run folder means its ``last.pt`` (the protocol's checkpoint), not the
    resolver's default ``best.pt``. ``register``: the Fuser registers each pair first (``Fuser(register=True)``);
    ``steps``: input steps overriding what the model declares (``crossfuse.backends.INPUT_STEPS``: ``vis_veil=``,
    ``deblock=``, ``destripe=``, ``denoise=``)."""
    from crossfuse.infer import Fuser

    if spec in ("max", "average"):
        return spec
    return Fuser(protocol_checkpoint(spec), device="cpu", register=register, **steps)


def protocol_checkpoint(spec: str) -> str:
    """``spec`` itself, or for a run folder its ``last.pt``: the protocol's checkpoint (the fixed schedule's end),
    not the model resolver's default ``best.pt``."""
    return str(Path(spec) / "last.pt") if Path(spec).is_dir() else spec


def score_rows(rows: list[dict], ref: list[dict]) -> float:
    """Mean over RANKED of mean(model) / mean(max fusion) on the same cases."""
    return float(np.mean([np.mean([r[m] for r in rows]) / np.mean([r[m] for r in ref]) for m in RANKED]))


def summarize(rows: list[dict], ref: list[dict]) -> dict:
    """Per subset and pooled: mean metrics, dark %, and the clean / corrupted / selection scores."""
    out: dict = {}
    for subset in ["all", *validation_stems(data_root())]:
        pick = lambda rs, clean: [r for r in rs if (subset == "all" or r["subset"] == subset)  # noqa: E731
                                  and (r["condition"] is None) == clean]
        c, rc, k, rk = pick(rows, True), pick(ref, True), pick(rows, False), pick(ref, False)
        s = {"clean": {m: float(np.mean([r[m] for r in c])) for m in RANKED + TEXTURE},
             "corrupted": {m: float(np.mean([r[m] for r in k])) for m in RANKED},
             "dark_pct": float(np.mean([r["dark"] for r in c])),
             "score_clean": score_rows(c, rc), "score_corrupted": score_rows(k, rk)}
        s["score"] = (s["score_clean"] + s["score_corrupted"]) / 2
        out[subset] = s
    return out


def validation_rows(fusers: dict, clean_only: bool = False) -> dict[str, list[dict]]:
    """Per fuser (name -> anything :func:`fused_u8` takes), one metrics row per validation case: 8 metrics clean,
    the 5 source-referenced ones (against the clean sources) corrupted; ``clean_only`` skips the corrupted cases."""
    rows: dict[str, list[dict]] = {s: [] for s in fusers}
    for subset, stem, cond, ir, vi, ir_in, vi_in in validation_cases(data_root()):
        if clean_only and cond is not None:
            continue
        for s, fu in fusers.items():
            f = fused_u8(fu, ir_in, vi_in)
            names = RANKED + (TEXTURE if cond is None else [])
            r = compute_metrics(ir, vi, f, profile="cddfuse", metrics=names)
            dark = crushed_dark_percent(f, ir, luma_u8(vi), margin=DARK_MARGIN)
            r.update(subset=subset, stem=stem, condition=cond, dark=dark)
            rows[s].append(r)
    return rows


def validate(specs: list[str]) -> dict[str, dict]:
    rows = validation_rows({s: as_fuser(s) for s in ["max", *specs]})
    return {s: summarize(rows[s], rows["max"]) for s in rows}


def _group_means(rows: list[dict], key: str, value, metrics: list[str]) -> dict[str, float]:
    picked = [r for r in rows if r[key] == value]
    return {m: float(np.mean([r[m] for r in picked])) for m in metrics}


def clean_ranks(rows: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per validation subset, every row's mean rank over the 8 metrics of its clean pairs (all rows ranked
    together): the clean part of the rank score v2 before averaging over subsets."""
    from eval_model import mean_ranks

    subsets = list(dict.fromkeys(r["subset"] for r in next(iter(rows.values()))))
    return {s: mean_ranks({k: _group_means([r for r in v if r["condition"] is None], "subset", s, TEXTURE + RANKED)
                           for k, v in rows.items()}, TEXTURE + RANKED) for s in subsets}


def rank_table(rows: dict[str, list[dict]]) -> dict[str, dict]:
    """The rank score v2 of docs/protocol.md for every row of ``rows`` (all ranked together): clean rank (8 metrics,
    per validation subset, mean over subsets), corrupted rank (5 metrics against the clean sources, per condition,
    mean over conditions), their mean, the conditions where the row ranks best / below crossfuse-fast."""
    from eval_model import mean_ranks

    conds = [c for c, _ in CONDITIONS + EVERY_PAIR_CONDITIONS
             if any(r["condition"] == c for r in next(iter(rows.values())))]
    clean = clean_ranks(rows)
    subsets = list(clean)
    corr = {c: mean_ranks({k: _group_means(v, "condition", c, RANKED) for k, v in rows.items()}, RANKED)
            for c in conds}
    out = {}
    for k, v in rows.items():
        cr, kr = float(np.mean([clean[s][k] for s in subsets])), float(np.mean([corr[c][k] for c in conds]))
        out[k] = {"rank_score": (cr + kr) / 2, "clean_rank": cr, "corrupted_rank": kr,
                  "clean_rank_per_subset": {s: clean[s][k] for s in subsets},
                  "corrupted_rank_per_condition": {c: corr[c][k] for c in conds},
                  "best_on": [c for c in conds if corr[c][k] <= min(corr[c].values())],
                  "below_fast_on": [c for c in conds
                                    if "crossfuse-fast" in rows and corr[c][k] > corr[c]["crossfuse-fast"]],
                  "dark_pct_max_subset": max(float(np.mean([r["dark"] for r in v if r["condition"] is None
                                                           and r["subset"] == s])) for s in subsets)}
        if "max" in rows:  # the ratio score of summarize()["all"], pooled over the rows given
            part = lambda rs, clean: [r for r in rs if (r["condition"] is None) == clean]  # noqa: E731
            out[k]["ratio_score"] = float(np.mean([score_rows(part(v, c), part(rows["max"], c))
                                                   for c in (True, False)]))
    return out


def rank_candidates(specs: list[str], panel: list[str] = PANEL, together: bool = False) -> dict[str, dict]:
    """Per spec, :func:`rank_table` of the panel plus that spec alone (7 rows), as the rule of docs/protocol.md
    compares a candidate with crossfuse-robust3; the panel is fused once for all specs. ``together``: one table of
    the panel and all specs (the paired seed check), keyed ``"together"``."""
    rows = validation_rows({s: as_fuser(s) for s in dict.fromkeys([*panel, *specs])})
    if together:
        return {"together": rank_table(rows)}
    return {s: rank_table({k: rows[k] for k in dict.fromkeys([*panel, s])}) for s in specs}


def dark_table(specs: list[str]) -> dict[str, dict[str, float]]:
    """Dark-pixel % (clean inputs, mean over pairs) of each model on every dataset in the data root."""
    from crossfuse.io import match_folders

    root = data_root()
    out: dict[str, dict[str, float]] = {}
    fusers = {s: as_fuser(s) for s in ["max", *specs]}
    for ds in sorted(d.name for d in root.iterdir() if (d / "ir").is_dir() and (d / "vi").is_dir()):
        stems = sorted(st for st, _ in match_folders({"ir": root / ds / "ir", "vi": root / ds / "vi"}).items)
        vals: dict[str, list[float]] = {s: [] for s in fusers}
        for stem in stems:
            ir, vi = load_pair(root, ds, stem)
            for s, fu in fusers.items():
                vals[s].append(crushed_dark_percent(fused_u8(fu, ir, vi), ir, luma_u8(vi), margin=DARK_MARGIN))
        out[ds] = {s: float(np.mean(v)) for s, v in vals.items()} | {"n": len(stems)}
    return out


def sanity_table(specs: list[str], datasets: tuple[str, ...] = ("LLVIP", "MSRS")) -> dict[str, dict]:
    """All pairs of the partly seen external sets, clean, 8 metrics; mean rank among the models, max, average."""
    from eval_model import mean_ranks

    from crossfuse.io import match_folders

    root = data_root()
    fusers = {s: as_fuser(s) for s in ["max", "average", *specs]}
    out: dict[str, dict] = {}
    for ds in datasets:
        stems = sorted(st for st, _ in match_folders({"ir": root / ds / "ir", "vi": root / ds / "vi"}).items)
        sums = {s: dict.fromkeys(TEXTURE + RANKED, 0.0) for s in fusers}
        for stem in stems:
            ir, vi = load_pair(root, ds, stem)
            for s, fu in fusers.items():
                for k, v in compute_metrics(ir, vi, fused_u8(fu, ir, vi), profile="cddfuse",
                                            metrics=TEXTURE + RANKED).items():
                    sums[s][k] += v / len(stems)
        rk = mean_ranks(sums, TEXTURE + RANKED)
        out[ds] = {s: {**sums[s], "rank": rk[s]} for s in fusers} | {"n": len(stems)}
    return out


def emit(text: str, md: Path | None) -> None:
    """Print a report and also write it to ``md`` when given."""
    print(text)
    if md:
        Path(md).write_text(text + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", action="store_true", help="print the split and the hold-out stems")
    ap.add_argument("--align", metavar="OUT", help="write the aligned pool (without hold-outs) to OUT")
    ap.add_argument("--patch", type=int, default=128, choices=(64, 128),
                    help="--align: patch size (128: the robust recipes' pool; 64: the paper network's)")
    ap.add_argument("--validate", nargs="+", metavar="MODEL", help="model names, weights files, checkpoints, runs")
    ap.add_argument("--dark", nargs="+", metavar="MODEL", help="dark-pixel %% on every dataset of the data root")
    ap.add_argument("--sanity", nargs="+", metavar="MODEL", help="LLVIP-32 / MSRS-12 (partly seen): 8 metrics, rank")
    ap.add_argument("--rank", nargs="+", metavar="MODEL", help="rank score v2: each model among the fixed panel")
    ap.add_argument("--together", action="store_true", help="--rank: all models in one table with the panel")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every-pair", type=int, metavar="K", choices=range(len(EVERY_PAIR_CONDITIONS) + 1),
                    help="keep the first K every-pair conditions (earlier protocols' tables: 0 before session 15, "
                         "1 session 15, 3 sessions 16-17; default: all)")
    ap.add_argument("--six-conditions", action="store_const", const=0, dest="every_pair", help="= --every-pair 0")
    ap.add_argument("--seven-conditions", action="store_const", const=1, dest="every_pair", help="= --every-pair 1")
    args = ap.parse_args(argv)
    if args.every_pair is not None:  # this process's protocol: the earlier conditions only
        EVERY_PAIR_CONDITIONS[:] = EVERY_PAIR_CONDITIONS[:args.every_pair]
    torch.set_num_threads(args.threads)
    root = data_root()
    result: dict = {}
    if args.show:
        result["stems"] = validation_stems(root)
        print(json.dumps(result["stems"], indent=1))
    if args.align:
        print(f"aligned pool written to {build_align(root, Path(args.align), args.patch)}")
    if args.validate:
        result["validation"] = validate(args.validate)
        print(format_validation(result["validation"]))
    if args.rank:
        result["rank"] = rank_candidates(args.rank, together=args.together)
        print(format_ranks(result["rank"]))
    if args.dark:
        result["dark"] = dark_table(args.dark)
        print(json.dumps(result["dark"], indent=1))
    if args.sanity:
        result["sanity"] = sanity_table(args.sanity)
        print(json.dumps(result["sanity"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def format_validation(val: dict[str, dict]) -> str:
    lines = ["| model | subset | score | clean | corrupted | dark % | clean MI / SCD / VIF / Qabf / SSIM | "
             "corrupted MI / SCD / VIF / Qabf / SSIM |", "|---|---|---|---|---|---|---|---|"]
    for s, per in val.items():
        for subset, v in per.items():
            cl = " / ".join(f"{v['clean'][m]:.3f}" for m in RANKED)
            co = " / ".join(f"{v['corrupted'][m]:.3f}" for m in RANKED)
            lines.append(f"| {s} | {subset} | {v['score']:.4f} | {v['score_clean']:.4f} | {v['score_corrupted']:.4f} "
                         f"| {v['dark_pct']:.2f} | {cl} | {co} |")
    return "\n".join(lines)


def format_ranks(ranks: dict[str, dict]) -> str:
    """Every row of every table of :func:`rank_candidates` (keyed by candidate, or ``together``), best first."""
    lines = ["| candidate | row | rank score | clean rank | corrupted rank | best on | below fast on | dark % | "
             "ratio score |", "|---|---|---|---|---|---|---|---|---|"]
    for cand, table in ranks.items():
        for row, v in sorted(table.items(), key=lambda kv: kv[1]["rank_score"]):
            lines.append(f"| {cand} | {row} | {v['rank_score']:.3f} | {v['clean_rank']:.3f} | {v['corrupted_rank']:.3f}"
                         f" | {len(v['best_on'])} | {len(v['below_fast_on'])} | {v['dark_pct_max_subset']:.2f} | "
                         f"{v.get('ratio_score', float('nan')):.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
