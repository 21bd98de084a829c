"""Screen local-contrast training targets as fusion rules on CLEAN validation, before training any of them.

    PYTHONPATH=src python benchmarks/screen_targets.py --json runs/h17/screen.json       # H17 stage B's grid
    PYTHONPATH=src python benchmarks/screen_targets.py --full --with crossfuse-robust4 \
        --rule 0.4,16,1,24 --rule 0.4,8,1.2,8 --rule 0.4,16,1.2,8                      # H22: clean AND corrupted

Each rule is ``crossfuse.losses.local_contrast_target`` (σ 8 for the weaker source's local mean) applied to the pair
itself (IR gray, visible luma; 8-bit rounded), scored with the ``cddfuse`` profile on the 8 metrics and ranked among
the rank-score panel of docs/protocol.md plus the rule (per validation subset, mean over subsets: the clean part of the
rank score v2). A rule is what a network trained on it would aim at on clean inputs; it says nothing about corrupted
ones -- unless ``--full``: then the rules given with ``--rule alpha,sigma,gain,gain_sigma`` and the models given with
``--with`` are ranked together with the panel on the whole rank score v2 (clean and corrupted validation, one table).
Validation pairs only (benchmarks/robust_protocol.py); no test set is read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robust_protocol as rp  # noqa: E402

from crossfuse.io import luma_u8, quantize  # noqa: E402
from crossfuse.losses import local_contrast_target  # noqa: E402

METRICS = rp.TEXTURE + rp.RANKED


def rule(alpha: float, gain: float, gain_sigma: float, sigma: float = 8.0):
    """The target of ``(alpha, gain, gain_sigma, sigma)`` as a fuser: (IR u8, stored visible u8) -> fused Y u8."""
    def fuse(ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
        t = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0)[None, None]  # noqa: E731
        out = local_contrast_target(t(ir), t(luma_u8(vi)), alpha, sigma, gain, gain_sigma)
        return quantize(out[0, 0].numpy().astype(np.float64) * 255.0)
    return fuse


def grid() -> dict[str, tuple[float, float, float]]:
    """H17 stage B (docs/protocol.md 06:00): α {0.1, 0.4} × (g 1, or g {1.2, 1.5} × σ_g {8, 24})."""
    out = {f"a{a}_g1": (a, 1.0, 24.0) for a in (0.1, 0.4)}
    out |= {f"a{a}_g{g}_s{s}": (a, g, float(s)) for a, g, s in itertools.product((0.1, 0.4), (1.2, 1.5), (8, 24))}
    return out


def screen(rules: dict[str, tuple[float, float, float]]) -> dict[str, dict]:
    fusers = {s: rp.as_fuser(s) for s in rp.PANEL} | {k: rule(*v) for k, v in rules.items()}
    rows = rp.validation_rows(fusers, clean_only=True)
    out = {}
    for name in rules:
        per = rp.clean_ranks({k: rows[k] for k in [*rp.PANEL, name]})
        out[name] = {k: float(np.mean([per[s][k] for s in per])) for k in [*rp.PANEL, name]}
        by_subset = {s: [r for r in rows[name] if r["subset"] == s] for s in per}
        out[name]["dark"] = max(float(np.mean([r["dark"] for r in rs])) for rs in by_subset.values())
        out[name]["means"] = {s: {m: float(np.mean([r[m] for r in rs])) for m in METRICS}
                              for s, rs in by_subset.items()}
    return out


def full_table(rules: list[str], models: list[str]) -> dict[str, dict]:
    """The rank score v2 (``robust_protocol.rank_table``) of the panel, ``models`` and the rules ``"alpha,sigma,gain,
    gain_sigma"`` (named ``rule_<spec>``), all in one table, clean and corrupted validation."""
    fusers = {s: rp.as_fuser(s) for s in dict.fromkeys([*rp.PANEL, *models])}
    for spec in rules:
        alpha, sigma, gain, gain_sigma = (float(v) for v in spec.split(","))
        fusers[f"rule_{spec}"] = rule(alpha, gain, gain_sigma, sigma)
    return rp.rank_table(rp.validation_rows(fusers))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="rank --rule / --with on clean AND corrupted validation")
    ap.add_argument("--rule", action="append", default=[], help="alpha,sigma,gain,gain_sigma (with --full)")
    ap.add_argument("--with", dest="models", action="append", default=[], help="a model to rank too (with --full)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.full:
        tab = full_table(args.rule, args.models)
        print(rp.format_ranks({"together": tab}))
        if args.json:
            Path(args.json).write_text(json.dumps(tab, indent=1) + "\n")
        return 0
    res = screen(grid())
    print("| rule | clean rank | crossfuse-robust3 | max | dark % |\n|---|---|---|---|---|")
    for name, v in res.items():
        print(f"| {name} | {v[name]:.3f} | {v['crossfuse-robust3']:.3f} | {v['max']:.3f} | {v['dark']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
