"""Evaluate a fusion model on TNO-42 and RoadScene-test50 with the ``cddfuse`` profile, next to the peers.

Fuses every pair through :class:`crossfuse.infer.Fuser` exactly as ``crossfuse fuse --gray`` does (fused Y, 8 bit,
no stretching; the same input scaling for 8- and 16-bit files), scores it with
``crossfuse.metrics.compute_metrics(ir, vi, fused, profile="cddfuse")`` on the stored IR/VIS files, and prints, per
dataset, a Markdown table with the peers and baselines of ``../shared/docs/PEERS.md``, every method's mean rank over
the 8 metrics (rank 1 = best, ties share the mean rank) and, for each peer, how many of the 8 metrics the model beats.
This is where the model cards' metric tables come from.

    PYTHONPATH=src python benchmarks/eval_model.py --model crossfuse-fast
    PYTHONPATH=src python benchmarks/eval_model.py --checkpoint /work/runs/fast/best.pt --json out.json
    PYTHONPATH=src python benchmarks/eval_model.py --model crossfuse-fast --corrupt gaussian_noise --severity 2
    PYTHONPATH=src python benchmarks/eval_model.py --rule 0.4 0.45 1.2

``--rule ALPHA PIVOT CONTRAST`` scores the training target of the ``intensity_complement`` loss itself
(``crossfuse.losses.complement_target``: a fixed per-pixel rule, no network) as if it were a method, so a model
card can show what the network adds over the rule it was taught.

With ``--corrupt NAME --severity S`` the model's *inputs* are corrupted first (``crossfuse.corruptions.corrupt``,
seeded per image; ``low_light`` hits the visible image only, the others both) and the fused result is scored against
the *clean* sources: how much of the clean scene survives. The peers' rows are clean-input numbers then, for
orientation only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from crossfuse.io import list_images, read_image, read_stem_list, write_image
from crossfuse.metrics import compute_metrics

METRICS = ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"]
PEERS = ["CAF", "DATFuse", "DIDFuse", "DenseFuse", "IFCNN", "MMDRFuse", "SHIP", "SeAFusion", "TarDAL", "U2Fusion"]
BASELINES = ["average", "max"]
DATASETS = {"TNO": ("TNO", None, "TNO, all 42 pairs"),
            "RoadScene": ("RoadScene", "RoadScene/cddfuse_test50.txt", "RoadScene, the 50-pair test list")}


def parse_peers(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{section title: {method: {metric: value}}} from the Markdown tables of PEERS.md."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    section, header = None, None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            section, header = line[3:].strip(), None
            out[section] = {}
        elif line.startswith("|") and section:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == "method":
                header = cells
            elif header and not set(cells[0]) <= {"-"}:
                out[section][cells[0]] = {h: float(c) for h, c in zip(header[2:], cells[2:])}
    return out


class RuleFusion(torch.nn.Module):
    """The ``intensity_complement`` training target as a parameter-free "network" (for ``--rule``)."""

    pad_multiple = 1

    def __init__(self, alpha: float, pivot: float, contrast: float) -> None:
        super().__init__()
        self.alpha, self.pivot, self.contrast = alpha, pivot, contrast

    def forward(self, ir: torch.Tensor, vis_y: torch.Tensor) -> torch.Tensor:
        from crossfuse.losses import complement_target

        return complement_target(ir, vis_y, self.alpha, self.pivot, self.contrast)


def make_fuser(args: argparse.Namespace):
    """The :class:`crossfuse.infer.Fuser` the CLI would build for this model (CPU; ``--rule``: the target rule)."""
    from crossfuse.infer import Fuser

    if args.rule:
        alpha, pivot, contrast = args.rule
        fuser = Fuser(RuleFusion(alpha, pivot, contrast), device="cpu")
        fuser.model_name = f"rule({alpha:g}, {pivot:g}, {contrast:g})"
        return fuser
    return Fuser(args.checkpoint or args.weights or args.model, device="cpu")


def fuse(fuser, ir: np.ndarray, vi: np.ndarray, corruption: tuple[str, float, int] | None = None) -> np.ndarray:
    """Fused Y (uint8) of one stored pair at native resolution, exactly as ``crossfuse fuse --gray`` writes it; with
    ``corruption`` = ``(name, severity, seed)`` the pair's IR and visible Y are corrupted first and stored as 8-bit
    planes (as a corrupted frame on disk is), then fused through the same ``Fuser`` call, the model's input steps
    (veil, deblocking, destriping, denoising) included, in their order."""
    if corruption is None:
        return fuser.fuse(ir, vi, gray=True, dtype=np.uint8)
    from crossfuse.corruptions import corrupt
    from crossfuse.infer import normalize_ir, resolve_ir_window, visible_y
    from crossfuse.io import quantize

    ir01, y01 = normalize_ir(ir, resolve_ir_window(ir, fuser.ir_window)), visible_y(vi)  # no input step yet
    a, b = torch.from_numpy(ir01)[None, None], torch.from_numpy(y01)[None, None]
    name, sev, seed = corruption
    g = torch.Generator().manual_seed(seed)
    b = corrupt(name, b, sev, g, "vis")
    if name != "low_light":
        a = corrupt(name, a, sev, g, "ir")
    ir8, y8 = (quantize(t[0, 0].numpy() * 255.0) for t in (a, b))
    return quantize(fuser.fuse_y(ir8, y8) * 255.0)


def evaluate_dataset(fuser, root: Path, key: str, save: Path | None, corruption: tuple[str, float] | None = None,
                     limit: int | None = None) -> tuple[dict[str, float], int, float]:
    folder, test_list, _ = DATASETS[key]
    irs, vis = list_images(root / folder / "ir"), list_images(root / folder / "vi")
    stems = read_stem_list(root / test_list) if test_list else sorted(set(irs) & set(vis))
    stems = stems[:limit] if limit else stems
    sums = dict.fromkeys(METRICS, 0.0)
    t_fuse = 0.0
    for i, stem in enumerate(stems):
        ir, vi = read_image(irs[stem]), read_image(vis[stem])
        t0 = time.perf_counter()
        f = fuse(fuser, ir, vi, None if corruption is None else (*corruption, i))
        t_fuse += time.perf_counter() - t0
        if save is not None:
            (save / key).mkdir(parents=True, exist_ok=True)
            write_image(save / key / f"{stem}.png", f, overwrite=True)
        for k, v in compute_metrics(ir, vi, f, profile="cddfuse", metrics=METRICS).items():
            sums[k] += v
    return {k: v / len(stems) for k, v in sums.items()}, len(stems), t_fuse


def mean_ranks(table: dict[str, dict[str, float]], metrics: list[str] = METRICS) -> dict[str, float]:
    """Mean over ``metrics`` of each method's rank (1 = highest value; ties get the mean of their ranks)."""
    from scipy.stats import rankdata

    methods = list(table)
    ranks = np.zeros(len(methods))
    for m in metrics:
        ranks += rankdata([-table[x][m] for x in methods], method="average")
    return {x: float(r / len(metrics)) for x, r in zip(methods, ranks)}


def report(name: str, results: dict[str, dict[str, float]], peers: dict, counts: dict[str, int]) -> str:
    lines = []
    for key, (_, _, title) in DATASETS.items():
        if key not in results:
            continue
        table = {m: peers[title][m] for m in PEERS + BASELINES if m in peers.get(title, {})}
        table[name] = results[key]
        ranks = mean_ranks(table)
        lines.append(f"\n### {title} (n = {counts[key]})\n")
        lines.append("| method | " + " | ".join(METRICS) + " | mean rank |")
        lines.append("|---" * (len(METRICS) + 2) + "|")
        for m in sorted(table, key=lambda x: ranks[x]):
            row = " | ".join(f"{table[m][k]:.3f}" for k in METRICS)
            label = f"**{m}**" if m == name else m
            lines.append(f"| {label} | {row} | {ranks[m]:.2f} |")
        beats = {p: sum(results[key][k] > table[p][k] for k in METRICS) for p in PEERS if p in table}
        lines.append("\nmetrics (of 8) on which " + name + " beats each peer: "
                     + ", ".join(f"{p} {n}" for p, n in beats.items())
                     + f"; beats every peer on >= 5: {'yes' if min(beats.values()) >= 5 else 'no'}; best mean rank: "
                     + ("yes" if min(ranks, key=ranks.get) == name else "no"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--model", default="crossfuse-fast", help="shipped model name (default crossfuse-fast)")
    src.add_argument("--weights", help="a crossfuse weights file (.pt) or an .onnx file")
    src.add_argument("--checkpoint", help="a training checkpoint (last.pt / best.pt) or a run folder")
    src.add_argument("--rule", nargs=3, type=float, metavar=("ALPHA", "PIVOT", "CONTRAST"),
                     help="score the intensity_complement target rule itself (no network)")
    ap.add_argument("--data", default=os.environ.get("CROSSFUSE_DATA", "../shared/data"), help="shared data root")
    ap.add_argument("--peers", default=None, help="PEERS.md (default: DATA/../docs/PEERS.md)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--save", help="also write the fused Y PNGs under this folder")
    ap.add_argument("--json", help="write the mean metrics as JSON here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, help="only the first N pairs of each set (list order) - for slow networks; "
                    "the peers' rows stay full-set numbers, so the ranks are only indicative then")
    ap.add_argument("--corrupt", help="corrupt the inputs with this crossfuse.corruptions name (scored vs clean)")
    ap.add_argument("--severity", type=float, default=1.0, help="corruption severity (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(args.data)
    peers = parse_peers(Path(args.peers) if args.peers else root.parent / "docs" / "PEERS.md")
    fuser = make_fuser(args)
    name = fuser.model_name
    results, counts, times = {}, {}, {}
    save = Path(args.save) if args.save else None
    corruption = (args.corrupt, args.severity) if args.corrupt else None
    for key in args.datasets:
        results[key], counts[key], times[key] = evaluate_dataset(fuser, root, key, save, corruption, args.limit)
    if args.corrupt:
        name = f"{name} [{args.corrupt}@{args.severity:g}]"
    if args.limit:
        name = f"{name} [first {args.limit}]"
    print(f"model: {name}; cddfuse profile; fused Y, 8-bit, no stretching; "
          + ", ".join(f"{k}: fusion {times[k]:.1f} s for {counts[k]} pairs" for k in results))
    print(report(name, results, peers, counts))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": name, "corruption": args.corrupt, "severity": args.severity,
                                               "results": results, "counts": counts}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
