"""Temporal stability of video fusion: frame-to-frame change in static regions, fused output against its inputs.

A fusion method applied frame by frame can flicker where nothing moves (its output jumps with sensor noise or with
a per-frame normalisation). For consecutive frames t-1, t the **static mask** holds the pixels where neither input
changes by more than ``threshold`` grey levels (after a 5x5 box filter, so sensor noise alone does not break it);
the **flicker** of a sequence is the mean absolute frame difference inside that mask. A stable method's fused
flicker stays at or below the larger of its inputs' (``ratio <= 1``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from crossfuse import io as cio

DEFAULT_THRESHOLD = 4.0  # grey levels, on 5x5-averaged frames


def _gray(x: np.ndarray) -> np.ndarray:
    return cio.rgb_to_gray(cio.to_float255(np.asarray(x)))


def static_mask(ir0: np.ndarray, ir1: np.ndarray, vi0: np.ndarray, vi1: np.ndarray,
                threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Pixels where neither the IR nor the visible (gray) frame changes by more than ``threshold`` (5x5 means)."""
    def change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.abs(cv2.blur(_gray(b), (5, 5)) - cv2.blur(_gray(a), (5, 5)))

    return (change(ir0, ir1) <= threshold) & (change(vi0, vi1) <= threshold)


def flicker(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Per frame pair: mean |frame[t] - frame[t-1]| (gray, 0-255) inside ``masks[t-1]`` (NaN for an empty mask)."""
    g = [_gray(f) for f in frames]  # once per frame, not once per pair it belongs to
    out = []
    for t, m in enumerate(masks, start=1):
        d = np.abs(g[t] - g[t - 1])
        out.append(float(d[m].mean()) if m.any() else float("nan"))
    return np.array(out)


def temporal_stability(ir: Sequence[np.ndarray], vi: Sequence[np.ndarray], fused: dict[str, Sequence[np.ndarray]],
                       threshold: float = DEFAULT_THRESHOLD) -> dict[str, dict]:
    """Flicker per frame pair of the inputs (``"IR"``, ``"visible"``) and of each fused sequence, its mean, the
    static fraction of the frame, and for the fused sequences ``ratio`` = mean flicker / the larger input mean."""
    if not (len(ir) == len(vi) and all(len(f) == len(ir) for f in fused.values()) and len(ir) >= 2):
        raise ValueError("need at least two frames, and as many of each sequence")
    masks = [static_mask(ir[t - 1], ir[t], vi[t - 1], vi[t], threshold) for t in range(1, len(ir))]
    res = {name: {"per_pair": flicker(seq, masks)} for name, seq in (("IR", ir), ("visible", vi), *fused.items())}
    for r in res.values():
        r["mean"] = float(np.nanmean(r["per_pair"]))
    ref = max(res["IR"]["mean"], res["visible"]["mean"])
    for name in fused:
        res[name]["ratio"] = res[name]["mean"] / ref if ref > 0 else float("nan")
    res["static_fraction"] = {"mean": float(np.mean([m.mean() for m in masks]))}
    return res


def plot(res: dict[str, dict], path: str, title: str = "") -> None:
    """Flicker per frame pair, one line per sequence (inputs dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for name, r in res.items():
        if "per_pair" not in r:
            continue
        style = "--" if name in ("IR", "visible") else "-"
        ax.plot(np.arange(1, len(r["per_pair"]) + 1), r["per_pair"], style, marker="o", ms=2.5,
                label=f"{name} (mean {r['mean']:.2f})")
    ax.set_xlabel("frame pair (t-1, t)")
    ax.set_ylabel("mean |frame difference|\nin static regions (grey levels)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
