"""``crossfuse bench robustness``: fuse a corrupted tree with models, baselines and external methods; score every
output against the clean sources; write tables, curves and a self-contained HTML report (see docs/robustness.md).

It has its own parser (``crossfuse bench`` is the speed benchmark): :func:`crossfuse.cli.main` routes
``bench robustness ...`` here. Exit status: 0 when everything asked for was scored; problems (missing conditions or
images, size mismatches) are listed in the report and make it 1 only with ``--strict``; 1 when nothing was scored.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from crossfuse.metrics.registry import list_profiles


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crossfuse bench robustness",
        description="Fuse every <condition>@<severity>/{ir,vi} folder of a corrupted tree (and the clean pairs) "
                    "with each method and score each output against the CLEAN sources. Re-running the same command "
                    "resumes: existing fused files and cached scores are reused.")
    p.add_argument("--clean", required=True, type=Path, help="clean dataset with ir/ and vi/ (the reference)")
    p.add_argument("--corrupted", required=True, type=Path, help="tree of <condition>@<severity>/{ir,vi}/ folders")
    p.add_argument("--out", required=True, type=Path, help="output folder (fused images, tables, report)")
    p.add_argument("--models", default=None,
                   help="comma-separated crossfuse models, each SPEC or NAME=SPEC (a model name, weights, checkpoint, "
                        "run folder or .onnx, as for fuse --model); default: the default model; "
                        "'none' for no model")
    p.add_argument("--baselines", default="max,average", help="comma-separated: max, average (default both); "
                                                              "'none' for none")
    p.add_argument("--method", action="append", default=[], metavar="NAME=FUSED_TREE",
                   help="an external method's outputs FUSED_TREE/<condition>/<stem>.png (repeatable); "
                        "FUSED_TREE/clean/ is optional (needed for its drop from clean input)")
    p.add_argument("--conditions", default=None, help="only these conditions (names like vis_noise@1, or bases)")
    p.add_argument("--profile", default="cddfuse", choices=list_profiles(), help="metric profile (default cddfuse)")
    p.add_argument("--reference", default=None, help="method the bootstrap compares the others with (default: "
                                                     "the first method)")
    p.add_argument("--jobs", type=int, default=1, help="scoring processes (default 1)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the models (default: torch's)")
    p.add_argument("--thumbs", type=int, default=1, help="thumbnail rows per condition in the report (default 1)")
    p.add_argument("--strict", action="store_true", help="exit 1 if anything was skipped")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run, command="bench robustness")
    return p


def _list(value: str | None, default: list[str]) -> list[str]:
    if value is None:
        return default
    items = [v.strip() for v in value.split(",") if v.strip()]
    return [] if items == ["none"] else items


def run(args: argparse.Namespace) -> int:
    from crossfuse.models import DEFAULT_MODEL
    from crossfuse.robust import parse_methods, run_benchmark
    from crossfuse.robust_report import write_outputs

    if args.jobs < 1 or args.thumbs < 0 or args.threads < 0:
        raise ValueError("--jobs must be >= 1, --thumbs and --threads >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    methods = parse_methods(_list(args.models, [DEFAULT_MODEL]), _list(args.baselines, []), args.method)
    if args.reference and args.reference not in [m.name for m in methods]:
        raise KeyError(f"--reference {args.reference!r} is not one of the methods: "
                       f"{', '.join(m.name for m in methods)}")
    res = run_benchmark(args.clean, args.corrupted, args.out, methods, profile=args.profile, jobs=args.jobs,
                        conditions=_list(args.conditions, []) or None, progress=not args.quiet)
    command = "crossfuse bench robustness " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["bench", "robustness"] else ""
    paths = write_outputs(res, args.out, reference=args.reference, thumbs=args.thumbs, command=command)
    print(f"scored {len(res.rows)} fused images ({len(res.methods)} methods x {len(res.conditions)} conditions "
          f"incl. clean); report: {paths['report.html']}")
    for prob in res.problems:
        print(f"  skipped: {prob}", file=sys.stderr)
    if not res.rows:
        print("crossfuse bench robustness: error: nothing could be scored", file=sys.stderr)
        return 1
    if res.problems:
        print(f"crossfuse bench robustness: warning: {len(res.problems)} problem(s), listed in the report",
              file=sys.stderr)
        return 1 if args.strict else 0
    return 0
