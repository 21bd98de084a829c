"""``crossfuse eval``: score fused images against their infrared/visible sources (see ``docs/metrics.md``).

Exit status: 0 when at least one triplet was scored (skipped triplets are listed with their reasons, and make the
status 1 only with ``--strict``); 1 when nothing could be scored or the input is unusable (one-line error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crossfuse.metrics.registry import list_profiles


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="compute fusion metrics for a folder of fused images",
        description="Score fused images against their sources. Images are matched by file stem across the three "
                    "folders (extensions may differ). The profile selects which reference's definitions are used; "
                    "the notes under the table say how to read its numbers (e.g. cddfuse SSIM, VIF and MI are sums "
                    "over the two sources, so SSIM can exceed 1; std is the population std).")
    p.add_argument("--ir", required=True, type=Path, help="folder of infrared source images")
    p.add_argument("--vi", required=True, type=Path, help="folder of visible source images")
    p.add_argument("--fused", required=True, type=Path, help="folder of fused images")
    p.add_argument("--profile", default="cddfuse", choices=list_profiles(),
                   help="metric definitions: canonical (METRICS.md), vifb (VIFB MATLAB toolkit), "
                        "cddfuse (MMIF-CDDFuse Evaluator.py; default)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names in output order (default: the profile's standard set)")
    p.add_argument("--csv", type=Path, default=None, help="write per-image values here (image,<metric>,...)")
    p.add_argument("--json", type=Path, default=None,
                   help="write the summary (mean, std, skipped, the profile's conventions) here")
    p.add_argument("--report", type=Path, default=None,
                   help="write a self-contained HTML page here (profile, summary, sortable per-image rows with "
                        "IR | VIS | fused thumbnails; docs/report.md)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --csv/--json files")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any triplet was skipped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossfuse.io import check_overwrite, ensure_folder
    from crossfuse.metrics import evaluate, resolve_metrics
    from crossfuse.shard import Shard, merge_eval

    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    for path in (args.csv, args.json, args.report):
        if path is not None:  # before the (long) scoring, not after it
            check_overwrite(path, args.overwrite)
            ensure_folder(path.parent)
    resolve_metrics(args.profile, args.metrics)  # unknown names fail before any work
    shard = Shard.from_env()  # under torchrun: score this rank's share, rank 0 merges and writes (docs/sharding.md)
    result = evaluate(args.ir, args.vi, args.fused, profile=args.profile, metrics=args.metrics, jobs=args.jobs,
                      progress=not args.quiet, shard=(shard.rank, shard.world) if shard.active else None)
    result = shard.merged(result, merge_eval)
    if result is None:
        return 0
    print(result.table())
    if result.n == 0:
        print(f"crossfuse eval: error: none of the {len(result.skipped)} triplets could be scored (see above)",
              file=sys.stderr)
        return 1
    if args.csv is not None:
        print(f"per-image values: {result.to_csv(args.csv, overwrite=args.overwrite)}")
    if args.json is not None:
        print(f"summary: {result.to_json(args.json, overwrite=args.overwrite)}")
    if args.report is not None:
        from crossfuse.report import write_eval_report

        print(f"report: {write_eval_report(result, args.report, overwrite=args.overwrite)}")
    if result.skipped:
        print(f"crossfuse eval: warning: {len(result.skipped)} triplet(s) skipped (listed above)", file=sys.stderr)
        return 1 if args.strict else 0
    return 0
