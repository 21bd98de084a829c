"""A model on TNO-C next to the methods of PEERS_ROBUST.md: per condition@severity table, mean rank, sets won.

    PYTHONPATH=src python benchmarks/tnoc_vs_peers.py MODEL --tnoc /tmp/tnoc [--cache DIR] [--md out.md]

MODEL is anything ``benchmarks/robust_protocol.as_fuser`` takes (shipped name, weights, checkpoint, run folder).
All 42 pairs of every set are fused through ``crossfuse.infer.Fuser`` and scored against the CLEAN TNO sources on
MI, SCD, VIF, Qabf, SSIM (``cddfuse`` profile; per-image values cached by ``ablation_seeds.cached``). Ranks are
recomputed among the rows of each PEERS_ROBUST.md table plus the model, on the 3 decimals shown (ties share the mean
rank), as in PEERS_ROBUST.md. A test-set report: it chooses nothing (docs/protocol.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from ablation_seeds import cached
from eval_model import mean_ranks, parse_peers
from robust_protocol import RANKED, data_root, emit


def set_means(rows: dict[str, dict]) -> dict[str, dict[str, float]]:
    sets = sorted({k.split("/")[1] for k in rows if k.startswith("tnoc/")})
    return {s: {m: float(np.mean([v[m] for k, v in rows.items() if k.startswith(f"tnoc/{s}/")])) for m in RANKED}
            for s in sets}


def ranks(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean rank over RANKED on the 3 decimals shown (as PEERS_ROBUST.md ranks its rows)."""
    return mean_ranks({n: {m: round(v[m], 3) for m in RANKED} for n, v in table.items()}, RANKED)


def report(name: str, means: dict[str, dict[str, float]], peers: dict) -> tuple[str, int, int]:
    """Markdown tables, number of sets where ``name`` has the best mean rank, and sets where it ranks below
    crossfuse-fast."""
    lines, won, tied, below = [], 0, 0, 0
    summary = ["| set | rank of " + name + " | best other (rank) | crossfuse-fast rank | rows |",
               "|---|---|---|---|---|"]
    for s, mine in means.items():
        table = {m: {k: v[k] for k in RANKED} for m, v in peers.get(s, {}).items()}
        table[name] = mine
        rk = ranks(table)
        best_other = min((m for m in rk if m != name), key=rk.get)
        won += rk[name] <= min(rk.values())
        tied += rk[name] == rk[best_other]  # a shared best counts as best (as PEERS_ROBUST.md ranks), said apart
        below += "crossfuse-fast" in rk and rk[name] > rk["crossfuse-fast"]
        summary.append(f"| {s} | {rk[name]:.2f} | {best_other} ({rk[best_other]:.2f}) | "
                       f"{rk.get('crossfuse-fast', float('nan')):.2f} | {len(rk)} |")
        lines += [f"\n#### {s}\n", "| method | " + " | ".join(RANKED) + " | rank |", "|---" * (len(RANKED) + 2) + "|"]
        for m in sorted(rk, key=rk.get):
            label = f"**{m}**" if m == name else m
            lines.append(f"| {label} | " + " | ".join(f"{table[m][k]:.3f}" for k in RANKED) + f" | {rk[m]:.2f} |")
    head = (f"{name}: best mean rank on {won} of {len(means)} TNO-C sets ({tied} of them tied with another row); "
            f"below crossfuse-fast on {below}.\n\n"
            + "\n".join(summary))
    return head + "\n" + "\n".join(lines), won, below


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--name", help="row label (default: the model spec)")
    ap.add_argument("--tnoc", type=Path, required=True)
    ap.add_argument("--peers", type=Path, default=None, help="PEERS_ROBUST.md (default DATA/../docs/PEERS_ROBUST.md)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/crossfuse_ablation_cache"))
    ap.add_argument("--md", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--register", action="store_true", help="register each pair first (crossfuse fuse --register)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = data_root()
    peers = parse_peers(args.peers or root.parent / "docs" / "PEERS_ROBUST.md")
    rows = cached(args.model, args.cache, root, args.tnoc, 1, args.register)
    text, _, _ = report(args.name or args.model, set_means(rows), peers)
    emit(text, args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
