"""``crossfuse demo --out DIR``: fuse synthetic scenes (no data needed) and show the result with a metric table.

Writes ``DIR/ir``, ``DIR/vi`` and ``DIR/fused`` (PNG, one per scene), ``DIR/figure.png`` (IR | visible | fused per
scene, and the metric table) and ``DIR/metrics.md``. The table compares the model with two training-free baselines
on the same luminance/colour pipeline: per-pixel **max** and **average** of IR and visible Y.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_METRICS = ("EN", "SD", "SF", "MI", "SCD", "Qabf", "SSIM")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="fuse synthetic IR/visible scenes and write a figure with metrics (no data needed)",
        description="Generates synthetic street scenes with hot targets hidden in dark or smoky visible regions, "
                    "fuses them with the default model, and writes the inputs, the fused images, a side-by-side "
                    "figure and a metric table (cddfuse profile) against max/average baselines.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None, help="model name (default: the default model)")
    p.add_argument("--scenes", type=int, default=3, help="number of scenes (default 3)")
    p.add_argument("--size", default="640x480", help="scene size WxH (default 640x480)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first scene (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, mps")
    p.add_argument("--overwrite", action="store_true", help="replace existing demo files")
    p.set_defaults(func=run)


def make_fuser(args: argparse.Namespace):
    """The fuser of the demo (a seam for tests)."""
    from crossfuse.infer import Fuser

    return Fuser(args.model, device=args.device)


def render_figure(scenes: list[tuple], table: list[tuple[str, dict]], notes: str = ""):
    """The demo figure (a matplotlib ``Figure``): IR | visible | fused per scene, then the metric table.

    ``notes`` (the profile's conventions) is printed under the table.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(scenes)
    h, w = scenes[0][0].shape[:2]
    table_height = 0.45 + 0.12 * len(table) + (0.15 if notes else 0.0)
    fig = Figure(figsize=(12, 3.0 * n * h / w + 1.6 + 0.25 * len(table)), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(n + 1, 3, height_ratios=[1.0] * n + [table_height], hspace=0.15, wspace=0.03)
    for i, (ir, vi, fused) in enumerate(scenes):
        for j, (img, title) in enumerate(((ir, "infrared"), (vi, "visible"), (fused, "fused"))):
            ax = fig.add_subplot(grid[i, j])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title)
    ax = fig.add_subplot(grid[n, :])
    ax.axis("off")
    cols = list(table[0][1])
    cells = [[f"{vals[c]:.3f}" for c in cols] for _, vals in table]
    # The table fills the middle of its own axes, the title above and the notes below it inside the same axes,
    # so nothing reaches into the image grid (matplotlib's loc="center" table overflows its axes).
    bottom = 0.16 if notes else 0.0
    tab = ax.table(cellText=cells, rowLabels=[name for name, _ in table], colLabels=cols,
                   bbox=[0.22, bottom, 0.78, 0.76 - bottom])
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    ax.text(0.5, 0.88, f"cddfuse metrics, mean over {n} scenes (higher is better for all)", ha="center",
            va="center", fontsize=10, transform=ax.transAxes)
    if notes:
        ax.text(0.5, 0.02, notes, ha="center", va="bottom", fontsize=8, transform=ax.transAxes, wrap=True)
    return fig


def _write_figure(path: Path, fig, overwrite: bool) -> None:
    import io

    from crossfuse.io import write_bytes_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from crossfuse.bench import parse_sizes
    from crossfuse.io import write_bytes_atomic, write_image
    from crossfuse.metrics import compute_metrics, get_profile
    from crossfuse.pixels import compose_output, visible_y
    from crossfuse.synthetic import make_scene

    if args.scenes < 1:
        raise ValueError(f"--scenes must be >= 1, got {args.scenes}")
    (w, h), = parse_sizes(args.size)
    out = Path(args.out)
    fuser = make_fuser(args)
    methods = {"model": [], "max": [], "average": []}
    shown = []
    for k in range(args.scenes):
        sc = make_scene(h, w, seed=args.seed + k)
        fused = fuser(sc.ir, sc.vis)
        ir01, y01 = sc.ir.astype(np.float32) / 255, visible_y(sc.vis)
        results = {"model": fused, "max": compose_output(np.maximum(ir01, y01), sc.vis),
                   "average": compose_output(0.5 * (ir01 + y01), sc.vis)}
        name = f"scene_{args.seed + k:03d}.png"
        write_image(out / "ir" / name, sc.ir, overwrite=args.overwrite)
        write_image(out / "vi" / name, sc.vis, overwrite=args.overwrite)
        write_image(out / "fused" / name, fused, overwrite=args.overwrite)
        for method, img in results.items():
            methods[method].append(compute_metrics(sc.ir, sc.vis, img, profile="cddfuse", metrics=list(DEMO_METRICS)))
        shown.append((sc.ir, sc.vis, fused))
    model_label = f"{fuser.model_name} (model)"
    table = [(model_label if m == "model" else f"{m} baseline",
              {c: float(np.mean([r[c] for r in rows])) for c in DEMO_METRICS}) for m, rows in methods.items()]
    notes = list(get_profile("cddfuse").conventions)  # how to read the numbers (SSIM above 1 is a sum)
    _write_figure(out / "figure.png", render_figure(shown, table, notes=notes[0]), args.overwrite)
    lines = ["| method | " + " | ".join(DEMO_METRICS) + " |", "|---|" + "---:|" * len(DEMO_METRICS)]
    lines += [f"| {name} | " + " | ".join(f"{vals[c]:.3f}" for c in DEMO_METRICS) + " |" for name, vals in table]
    lines += ["", "notes (cddfuse profile):"] + [f"- {note}" for note in notes]
    write_bytes_atomic(out / "metrics.md", f"# crossfuse demo: {args.scenes} synthetic scenes, {w}x{h}, cddfuse "
                       "profile\n\n" + "\n".join(lines) + "\n", overwrite=args.overwrite)
    print("\n".join(lines))
    print(f"wrote {args.scenes} scenes to {out}/ir, {out}/vi, {out}/fused; figure: {out / 'figure.png'}")
    return 0
