"""``crossfuse data``: dataset recipes (``docs/datasets.md``): list the shipped manifests, verify a local copy,
prepare a release folder into ``ir/`` + ``vi/``.

Exit status: ``verify`` 0 when every listed file matches, 1 otherwise (each failing file named); ``prepare`` 0 when
every pair was written, 1 when any file failed (listed; the others are still written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="dataset recipes: list, verify, prepare",
                              description="Manifests of the standard IVIF datasets (names, sizes, hashes, splits, "
                                          "sources). The data itself is never redistributed.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the shipped manifests and where to get each dataset")
    ls.set_defaults(func=run_list)
    v = sub.add_parser("verify", help="check a folder with ir/ and vi/ against a manifest")
    v.add_argument("name", help="dataset name (see `crossfuse data list`)")
    v.add_argument("folder", type=Path, help="folder holding ir/ and vi/")
    v.add_argument("--split", default=None, help="check only this split (e.g. cddfuse_test50)")
    v.set_defaults(func=run_verify)
    pr = sub.add_parser("prepare", help="normalise a release folder into DIR/ir + DIR/vi",
                        description="Find the infrared/visible folders of SRC (known layouts, or folder names such "
                                    "as Inf/Vis, ir/vi, infrared/visible, lwir/visible), and write DIR/ir + DIR/vi: "
                                    "files already normal are copied byte for byte; 3-channel gray IR becomes 1 "
                                    "channel (lossless PNG); 16-bit is kept unless --bit-depth 8.")
    pr.add_argument("name", help="dataset name (see `crossfuse data list`)")
    pr.add_argument("src", type=Path, help="the dataset as downloaded")
    pr.add_argument("dir", type=Path, help="output folder (DIR/ir, DIR/vi)")
    pr.add_argument("--ir", default=None, help="infrared folder inside SRC (with --vi; default: detected)")
    pr.add_argument("--vi", default=None, help="visible folder inside SRC (with --ir)")
    pr.add_argument("--split", default=None, help="only this split's pairs, written under the manifest's names")
    pr.add_argument("--bit-depth", choices=("keep", "8"), default="keep",
                    help="16-bit images: keep (default, 16-bit PNG) or 8 (value / 257, rounded)")
    pr.add_argument("--overwrite", action="store_true", help="replace existing files in DIR")
    pr.set_defaults(func=run_prepare)


def run_list(args: argparse.Namespace) -> int:
    from crossfuse.datasets import DATASETS, get_manifest

    for name in DATASETS:
        m = get_manifest(name)
        src = m["source"]
        where = f"{src['repo']}@{src['commit'][:8]}" if "commit" in src else src["repo"]
        partial = " (partial: see note)" if m.get("partial") else ""
        print(f"{name:10s} {m['counts']['listed']:4d} pairs listed{partial}  splits: "
              f"{', '.join(m['splits']) or '-'}  source: {where}")
        print(f"{'':10s} {m['title']}; licence: {m['licence']}")
        if m.get("partial_note"):
            print(f"{'':10s} note: {m['partial_note']}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from crossfuse.datasets import verify

    report = verify(args.name, args.folder, split=args.split)
    for c in report.failures:
        print(f"FAIL {c.modality}/{c.pair}: {c.detail}")
    if report.note:
        print(report.note)
    if report.extra:
        print(f"{len(report.extra)} image(s) not in the manifest (not checked): {', '.join(report.extra[:6])}"
              f"{' ...' if len(report.extra) > 6 else ''}")
    reencoded = sum(c.ok and c.detail != "file sha256" for c in report.checks)
    n_ok = len(report.checks) - len(report.failures)
    print(f"{report.dataset} {args.folder}: {n_ok}/{len(report.checks)} files match"
          f"{f' ({reencoded} re-encoded with the same pixels)' if reencoded else ''}")
    if not report.ok:
        print(f"crossfuse data verify: error: {report.dataset} check failed ({len(report.failures)} file(s))"
              if report.checks else "crossfuse data verify: error: nothing to verify", file=sys.stderr)
        return 1
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from crossfuse.datasets import prepare

    report = prepare(args.name, args.src, args.dir, ir=args.ir, vi=args.vi, split=args.split,
                     bit_depth=args.bit_depth, overwrite=args.overwrite)
    print(f"from {report.ir_dir} + {report.vi_dir}: {report.written['copied']} file(s) copied, "
          f"{report.written['converted']} converted -> {args.dir}/ir, {args.dir}/vi")
    for n in report.notes:
        print(f"  {n}")
    for p in report.problems:
        print(f"crossfuse data prepare: problem: {p}", file=sys.stderr)
    return 1 if report.problems else 0
