"""The spread-noise gates of a network, by the rule declared in docs/protocol.md H74 / H75 (training frames only).

For each clean training frame of the protocol (the RoadScene train split, and the LLVIP and MSRS pairs that feed the
aligned pool, i.e. not held out for validation) the frame goes through ``crossfuse.infer.Fuser``'s input steps as at
inference; where the earlier steps leave a plane alone (visible: the denoising step; IR: destriping and denoising),
the frame mean of the network's restoration share of that plane is read from the pass that fuses it. A plane's gate
is the largest of its shares rounded up to 0.01, plus 0.01; the excess gate (H77) the same of the visible share
minus the IR share, over the frames where both planes were left alone. No validation or test frame is read.

Run:  PYTHONPATH=src python benchmarks/spread_gate.py MODEL [MODEL ...] [--steps-of SHIPPED]
      (crossfuse-robust16 -> visible 0.12, IR 0.14, excess 0.02, the gates crossfuse-robust19 ships; export them
       with crossfuse export --format pt --model M --set spread_noise_gate=V --set spread_noise_gate_ir=I
       --set spread_noise_gate_excess=X)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robust_protocol as rp  # noqa: E402

from crossfuse.backends import SPREAD_EXCESS_GATE, SPREAD_GATES  # noqa: E402
from crossfuse.infer import Fuser  # noqa: E402
from crossfuse.models import load_model  # noqa: E402

GATE_KEYS = {**SPREAD_GATES, "excess": SPREAD_EXCESS_GATE}  # what gates_of reads -> the network constant it sets
READINGS = {"vis": "vis share", "ir": "ir share", "excess": "vis share - ir share"}


def training_frames(root: Path) -> list[tuple[str, str]]:
    """(dataset, stem) of every clean training frame: RoadScene train + the external pool pairs."""
    frames = [("RoadScene", s) for s in rp.roadscene_split(root).train]
    for name in rp.HOLDOUT:
        frames += [(name, s) for s in rp.external_split(root, name).train]
    return frames


def probe_fuser(spec: str, steps: dict | None = None) -> Fuser:
    """``spec``'s network with gates it cannot reach (1 - 1e-9): the Fuser reads the shares of every frame and never
    denoises for them, so the readings are those of the network as it fuses. ``steps``: the input steps to run it
    with instead of those it declares (the gates belong to the denoising step: it must be on)."""
    net = load_model(spec)
    if not getattr(net, "restore", False):
        raise SystemExit(f"{spec}: the network has no restoration share (needs restore)")
    probe = load_model(spec, constants={"spread_noise_gate": 1.0 - 1e-9, "spread_noise_gate_ir": 1.0 - 1e-9})
    return Fuser(probe, device="cpu", **(steps or {}))


def gates_of(spec: str, root: Path, steps: dict | None = None) -> tuple[dict[str, float], dict[str, np.ndarray], int]:
    """``(gates, shares, frames)`` per plane (``"vis"``, ``"ir"``) and for the visible share's excess over the IR
    share on frames where both planes came through the steps as they were (``"excess"``): the rule's gate, the
    readings it was read from, and the number of frames seen (``steps``: as :func:`probe_fuser`)."""
    fuser, shares, excess = probe_fuser(spec, steps), {plane: [] for plane in SPREAD_GATES}, []
    if not fuser.denoise:
        raise SystemExit(f"{spec}: the model does not declare the denoising step, which the gates belong to "
                         f"(run it with --steps-of a model that does, e.g. crossfuse-robust18)")
    frames = training_frames(root)
    for dataset, stem in frames:
        fuser.fuse_y(*rp.load_pair(root, dataset, stem))
        for plane, read in shares.items():  # absent where an earlier step took the plane
            if f"spread_share_{plane}" in fuser.last_levels:
                read.append(fuser.last_levels[f"spread_share_{plane}"])
        if all(f"spread_share_{p}" in fuser.last_levels for p in SPREAD_GATES):  # both planes as they came
            excess.append(fuser.last_levels["spread_share_vis"] - fuser.last_levels["spread_share_ir"])
    shares["excess"] = excess
    # the rule (H74, H75, H77): the largest reading rounded up to 0.01, plus 0.01 (at least 0.01: a gate is > 0)
    gates = {p: max(math.ceil(max(v) * 100) / 100, 0.0) + 0.01 for p, v in shares.items()}
    return gates, {p: np.asarray(v) for p, v in shares.items()}, len(frames)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model specs (name, weights .pt, checkpoint or run folder)")
    ap.add_argument("--steps-of", metavar="MODEL",
                    help="read the frames through the input steps MODEL declares (as ablation_seeds.py --steps-of)")
    args = ap.parse_args(argv)
    root = rp.data_root()
    steps = None
    if args.steps_of:
        from ablation_seeds import steps_declared_by

        steps = steps_declared_by(args.steps_of)
    for spec in args.models:
        gates, shares, n = gates_of(spec, root, steps)
        for plane, key in GATE_KEYS.items():
            x = shares[plane]
            print(f"{spec}: {key} {gates[plane]:.2f} (largest clean training {READINGS[plane]} {x.max():.4f}, 99th "
                  f"percentile {np.percentile(x, 99):.4f}; {len(x)} of {n} frames read)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
