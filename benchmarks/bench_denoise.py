"""Cost of the denoising step (crossfuse.denoise) and of the default model with it (results in docs/fuse.md).

For each size: a synthetic pair (crossfuse.bench.synthetic_pair), as drawn and with white Gaussian noise of
``--sigma`` grey levels on both images (seeded, through 8 bits). Times, median of ``--repeats``: reading one plane's
noise level (``noise_sigma``), denoising one noisy plane (``denoise``), and one ``Fuser.fuse_y`` call of ``--model``
with the step on and off on the noisy pair and on the plain one (``bench_deblock.step_table``). Also checks that the
plain pair is fused bit for bit as without the step and reports the noise levels read (IR, visible).

Run:  PYTHONPATH=src .venv/bin/python benchmarks/bench_denoise.py [--model crossfuse-robust12] [--threads 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_deblock import bench_step, step_parser  # noqa: E402

from crossfuse.denoise import denoise, noise_sigma  # noqa: E402
from crossfuse.io import quantize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = step_parser(__doc__, "crossfuse-robust12")
    ap.add_argument("--sigma", type=float, default=15.0)
    args = ap.parse_args(argv)

    def noisy(img: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(img.ndim)
        return quantize(img + rng.normal(0.0, args.sigma, img.shape))

    return bench_step(args, "denoise", f"noise sigma {args.sigma}", noisy, noise_sigma,
                      lambda p: denoise(p.astype(np.float32) / 255.0),
                      lambda f: tuple(round(f.last_levels[k], 2) for k in ("denoise_ir", "denoise_vis")))


if __name__ == "__main__":
    raise SystemExit(main())
