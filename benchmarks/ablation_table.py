"""The views ablation: score several trained variants on TNO-42 and RoadScene-test50, clean and with corrupted
inputs, and print Markdown tables (cddfuse profile; corrupted inputs are scored against the clean sources).

    PYTHONPATH=src python benchmarks/ablation_table.py a=runs/ablation_a/last.pt b=runs/ablation_b/last.pt ...

Per condition: each variant's 8 metrics averaged over the pairs, and its mean rank over the 8 metrics among the
variants (1 = best). Conditions: clean, and gaussian_noise / blur / low_light at severities 1 and 2 (TNO only, to
keep the run short; ``--datasets`` changes that).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_model import METRICS, evaluate_dataset, mean_ranks  # noqa: E402

from crossfuse.infer import Fuser  # noqa: E402

CORRUPTED = [("gaussian_noise", 1.0), ("gaussian_noise", 2.0), ("blur", 1.0), ("blur", 2.0), ("low_light", 1.0),
             ("low_light", 2.0)]


def _cached(folder: str | None, label: str, key: str, compute) -> dict[str, float]:
    if folder is None:
        return compute()
    f = Path(folder) / f"{label}__{key.replace(' ', '_').replace('@', '-')}.json"
    if f.is_file():
        return json.loads(f.read_text())
    f.parent.mkdir(parents=True, exist_ok=True)
    res = compute()
    f.write_text(json.dumps(res) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help="label=MODEL (a checkpoint, run folder, weights file or name)")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--datasets", nargs="+", default=["TNO"], help="datasets for the corrupted conditions")
    ap.add_argument("--json", help="write all numbers here")
    ap.add_argument("--cache", help="folder for per-variant, per-condition results (reused when present)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    nets = {v.split("=", 1)[0]: Fuser(v.split("=", 1)[1], device="cpu") for v in args.variants}
    root = Path(args.data)
    conditions = [(ds, None) for ds in ("TNO", "RoadScene")] + [(ds, c) for ds in args.datasets for c in CORRUPTED]
    allres: dict[str, dict[str, dict[str, float]]] = {}
    for ds, corr in conditions:
        key = f"{ds} clean" if corr is None else f"{ds} {corr[0]}@{corr[1]:g}"
        table = {label: _cached(args.cache, label, key, lambda n=net: evaluate_dataset(n, root, ds, None, corr)[0])
                 for label, net in nets.items()}
        allres[key] = table
        ranks = mean_ranks(table)
        print(f"\n### {key}\n\n| variant | " + " | ".join(METRICS) + " | mean rank |")
        print("|---" * (len(METRICS) + 2) + "|")
        for label in nets:
            print(f"| {label} | " + " | ".join(f"{table[label][m]:.3f}" for m in METRICS) + f" | {ranks[label]:.2f} |")
        sys.stdout.flush()
    overall = {label: sum(mean_ranks(t)[label] for t in allres.values()) / len(allres) for label in nets}
    print("\nmean rank over all conditions: " + ", ".join(f"{k} {v:.2f}" for k, v in overall.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(allres, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
