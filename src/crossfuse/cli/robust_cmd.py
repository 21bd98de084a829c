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
from crossfuse.shard import Shard


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crossfuse bench robustness",
        description="Fuse every <condition>@<severity>/{ir,vi} folder of a corrupted tree (and the clean pairs) "
                    "with each method and score each output against the CLEAN sources. Re-running the same command "
                    "resumes: existing fused files and cached scores are reused.")
    p.add_argument("--clean", required=True, type=Path, action="append",
                   help="clean dataset with ir/ and vi/ (the reference); repeat with --corrupted for several "
                        "datasets (cross-dataset mode: one report each in OUT/<clean folder name>/)")
    p.add_argument("--corrupted", required=True, type=Path, action="append",
                   help="tree of <condition>@<severity>/{ir,vi}/ folders (one per --clean, same order)")
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
    shard = Shard.from_env()  # under torchrun: each rank scores its share, rank 0 merges and writes (docs/sharding.md)
    with shard.session():  # one process group for every dataset's gather
        return _run(args, shard)


def _run(args: argparse.Namespace, shard: Shard) -> int:
    from crossfuse.models import DEFAULT_MODEL
    from crossfuse.robust import parse_methods

    if args.jobs < 1 or args.thumbs < 0 or args.threads < 0:
        raise ValueError("--jobs must be >= 1, --thumbs and --threads >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    methods = parse_methods(_list(args.models, [DEFAULT_MODEL]), _list(args.baselines, []), args.method)
    if args.reference and args.reference not in [m.name for m in methods]:
        raise KeyError(f"--reference {args.reference!r} is not one of the methods: "
                       f"{', '.join(m.name for m in methods)}")
    if len(args.clean) != len(args.corrupted):
        raise ValueError(f"{len(args.clean)} --clean but {len(args.corrupted)} --corrupted: give one tree per dataset")
    names = [c.resolve().name for c in args.clean]
    if len(set(names)) != len(names):
        raise ValueError(f"--clean folders must have distinct names (they name the output folders): {names}")
    single = len(args.clean) == 1
    status, lines = 0, []
    for clean, tree, name in zip(args.clean, args.corrupted, names):
        out = args.out if single else args.out / name
        code, ranks = _one(args, methods, clean, tree, out, shard)
        status = max(status, code)
        lines += [f"{name},{m},{r!r}" for m, r in ranks.items()]
    if not single and shard.rank == 0:
        from crossfuse.io import write_bytes_atomic

        path = write_bytes_atomic(args.out / "datasets.csv", "dataset,method,mean_rank\n" + "\n".join(lines) + "\n",
                                  overwrite=True)
        print(f"mean rank per dataset and method (over its corrupted conditions): {path}")
    return status


def _one(args: argparse.Namespace, methods: list, clean: Path, tree: Path, out: Path,
         shard: Shard) -> tuple[int, dict]:
    """One dataset: run, write the outputs, report problems (rank 0 only when sharded). Returns the exit status and
    the mean rank of each method over the corrupted conditions."""
    from crossfuse.robust import CLEAN, run_benchmark
    from crossfuse.robust_report import write_outputs

    res = run_benchmark(clean, tree, out, methods, profile=args.profile, jobs=args.jobs,
                        conditions=_list(args.conditions, []) or None, progress=not args.quiet, shard=shard)
    if res is None:  # another rank than 0: rank 0 writes and reports for all
        return 0, {}
    command = "crossfuse bench robustness " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["bench", "robustness"] else ""
    paths, t = write_outputs(res, out, reference=args.reference, thumbs=args.thumbs, command=command)
    print(f"{clean}: scored {len(res.rows)} fused images ({len(res.methods)} methods x {len(res.conditions)} "
          f"conditions incl. clean); report: {paths['report.html']}")
    for prob in res.problems:
        print(f"  skipped: {prob}", file=sys.stderr)
    ranks = {m.name: [r["rank"] for r in t["summary"] if r["method"] == m.name and r["condition"] != CLEAN]
             for m in methods}
    mean = {m: sum(v) / len(v) for m, v in ranks.items() if v}
    if not res.rows:
        print(f"crossfuse bench robustness: error: nothing could be scored for {clean}", file=sys.stderr)
        return 1, mean
    if res.problems:
        print(f"crossfuse bench robustness: warning: {len(res.problems)} problem(s), listed in the report",
              file=sys.stderr)
        return (1 if args.strict else 0), mean
    return 0, mean
