"""The spread-noise gate of a network, by the rule declared in docs/protocol.md H74 (training frames only).

For each clean training frame of the protocol (the RoadScene train split, and the LLVIP and MSRS pairs that feed the
aligned pool, i.e. not held out for validation) the frame goes through ``crossfuse.infer.Fuser``'s input steps as at
inference; where the denoising step leaves the visible plane alone, the frame mean of the network's visible
restoration share is read from the pass that fuses it. The gate is the largest of these shares rounded up to 0.01,
plus 0.01. No validation or test frame is read.

Run:  PYTHONPATH=src python benchmarks/spread_gate.py MODEL [MODEL ...]
      (crossfuse-robust16 -> 0.12, the gate crossfuse-robust17 ships; export it with
       crossfuse export --format pt --model M --set spread_noise_gate=G)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robust_protocol as rp  # noqa: E402

from crossfuse.data import make_split  # noqa: E402
from crossfuse.infer import Fuser  # noqa: E402
from crossfuse.models import load_model  # noqa: E402
from crossfuse.nets import build  # noqa: E402


def training_frames(root: Path) -> list[tuple[str, str]]:
    """(dataset, stem) of every clean training frame: RoadScene train + the external pool pairs."""
    frames = [("RoadScene", s) for s in rp.roadscene_split(root).train]
    for name, held in rp.HOLDOUT.items():
        frames += [(name, s) for s in make_split(root / name, None, held, 0).train]
    return frames


def probe_fuser(spec: str) -> Fuser:
    """``spec``'s network with a gate it cannot reach (1 - 1e-9): the Fuser reads the share of every frame and
    never denoises for it, so the readings are those of the network as it fuses."""
    net = load_model(spec)
    if not getattr(net, "restore", False):
        raise SystemExit(f"{spec}: the network has no restoration share (needs restore)")
    probe = build("fast", **{**net.config, "spread_noise_gate": 1.0 - 1e-9})
    probe.load_state_dict(net.state_dict())
    return Fuser(probe.eval(), device="cpu")


def gate_of(spec: str, root: Path) -> tuple[float, np.ndarray, int]:
    """``(gate, shares, frames)``: the rule's gate, the shares it was read from, the frames seen."""
    fuser, shares = probe_fuser(spec), []
    frames = training_frames(root)
    for dataset, stem in frames:
        fuser.fuse_y(*rp.load_pair(root, dataset, stem))
        if "spread_share" in fuser.last_levels:  # absent where the denoising step took the visible plane
            shares.append(fuser.last_levels["spread_share"])
    return math.ceil(max(shares) * 100) / 100 + 0.01, np.asarray(shares), len(frames)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model specs (name, weights .pt, checkpoint or run folder)")
    args = ap.parse_args(argv)
    root = rp.data_root()
    for spec in args.models:
        gate, shares, n = gate_of(spec, root)
        print(f"{spec}: gate {gate:.2f} (largest clean training share {shares.max():.4f}, 99th percentile "
              f"{np.percentile(shares, 99):.4f}; {len(shares)} of {n} frames read)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
