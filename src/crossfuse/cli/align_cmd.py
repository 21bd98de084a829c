"""``crossfuse align``: Top-K selective vision alignment of external datasets to a target (``docs/align.md``)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "align", help="select and gamma-align external patches to a target dataset (CrossFuse Top-K alignment)",
        description="Cut target and external datasets (folders with ir/ and vi/) into grid patches, keep the K "
                    "external patches whose colour statistics are nearest to the target training split's, fit one "
                    "gamma per RGB channel so their channel means match the target's, and write patches.npz, "
                    "report.json and histograms.png into OUT.")
    p.add_argument("--target", required=True, type=Path, metavar="DIR", help="target dataset folder (ir/, vi/)")
    p.add_argument("--external", required=True, nargs="+", type=Path, metavar="DIR",
                   help="one or more external dataset folders (ir/, vi/), in candidate order")
    p.add_argument("--out", required=True, type=Path, metavar="OUT", help="output folder (created)")
    p.add_argument("--patch", type=int, default=64, help="patch size in pixels (default 64)")
    p.add_argument("--stride", type=int, default=200, help="grid stride in pixels (default 200, the reference's)")
    k = p.add_mutually_exclusive_group()
    k.add_argument("--k", type=int, default=None, help="number of patches to keep (default 1000)")
    k.add_argument("--k-fraction", type=float, default=None, metavar="F",
                   help="keep this fraction of the external candidates instead of a count")
    p.add_argument("--distance", choices=("mean", "meanstd", "hist"), default="mean",
                   help="mean: L1 of channel means (paper); meanstd: + L1 of channel stds; hist: channel histograms")
    p.add_argument("--split", type=Path, metavar="FILE",
                   help="target training-split manifest: one image name per line (statistics use only these)")
    p.add_argument("--exclude", type=Path, metavar="FILE",
                   help="target images to leave out, one name per line (e.g. a test list)")
    p.add_argument("--paper-solver", action="store_true",
                   help="reference solver: joint Nelder-Mead from 0.5 on a truncating LUT (for comparison)")
    p.add_argument("--skip-unpaired", action="store_true",
                   help="skip files without a partner (with a warning) instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of an existing OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossfuse.align import align, save_alignment

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise FileExistsError(f"--out {out}: exists and is not empty (--overwrite replaces it)")
    for opt, path in (("--split", args.split), ("--exclude", args.exclude)):
        if path is not None and not path.is_file():  # say which option, not the library's "list of image names"
            raise FileNotFoundError(f"{opt} {path}: file not found (a text file with one image name per line)")
    k = args.k if args.k is not None or args.k_fraction is not None else 1000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = align(args.target, list(args.external), patch=args.patch, stride=args.stride, k=k,
                       k_fraction=args.k_fraction, distance=args.distance,
                       solver="paper" if args.paper_solver else "exact", split=args.split, exclude=args.exclude,
                       skip_unpaired=args.skip_unpaired)
    for w in caught:
        print(f"crossfuse align: warning: {w.message}", file=sys.stderr)
    save_alignment(result, out, overwrite=args.overwrite)
    r = result.report

    def fmt(v: list[float]) -> str:
        return "[" + ", ".join(f"{x:.2f}" for x in v) + "]"

    print(f"selected {r['k']} of {r['n_candidates']} external patches "
          f"({', '.join(f'{n}: {c}' for n, c in r['selected_per_dataset'].items())})")
    print(f"target means (RGB) {fmt(r['target_means'])}; selected before {fmt(r['selected_means_before'])}, "
          f"after {fmt(r['selected_means_after'])}; gamma {fmt(r['gamma'])} ({r['solver']} solver)")
    print(f"wrote {out}/patches.npz, report.json, histograms.png in {r['timings_s']['total']:.2f} s")
    return 0
