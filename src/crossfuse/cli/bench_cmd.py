"""``crossfuse bench``: warmed-up median latency per image size and backend, peak RSS, parameters."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="measure fusion latency and peak memory per image size and backend; "
                      "`bench robustness` scores methods on corrupted inputs",
        description="Each case runs in its own process (peak RSS from wait4 is that process's own, including the "
                    "Python/torch runtime); latency is the median of --repeats timed calls after --warmup untimed "
                    "ones, on a synthetic pair of each size.",
        epilog="The robustness benchmark is a second mode: `crossfuse bench robustness --clean DIR --corrupted TREE "
               "--out OUT` (see `crossfuse bench robustness --help`).")
    p.add_argument("--sizes", default="640x480,1280x1024", help="comma-separated WxH (default 640x480,1280x1024)")
    p.add_argument("--backend", default="torch", help="comma-separated backends: torch, onnx (default torch)")
    p.add_argument("--model", default=None,
                   help="shipped model name, exported weights .pt, training checkpoint (last.pt / best.pt) or run "
                        "folder, .onnx file, or net:NAME (untrained, timing only)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per case (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--threads", default="0",
                   help="threads in each case; a comma list (1,2,4) times each count (default 0: torch's default)")
    p.add_argument("--max-memory", default="1GB", help="memory budget passed to the Fuser (default 1GB)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from crossfuse.bench import bench, format_table, parse_sizes, recommend
    from crossfuse.io import check_overwrite, write_bytes_atomic

    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    for b in backends:
        if b not in ("torch", "onnx"):
            raise ValueError(f"unknown backend {b!r}; use torch and/or onnx")
    if args.json:
        check_overwrite(args.json, args.overwrite)  # refuse before the (slow) timings, not after
    if args.repeats < 1 or args.warmup < 0:
        raise ValueError("--repeats must be >= 1 and --warmup >= 0")
    try:
        threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--threads {args.threads}: use a count or a comma list, e.g. 1,2,4") from None
    if not threads or min(threads) < 0:
        raise ValueError(f"--threads {args.threads}: counts must be >= 0")
    rows = bench(parse_sizes(args.sizes), backends, args.model, repeats=args.repeats, warmup=args.warmup,
                 device=args.device, threads=threads, max_memory=args.max_memory)
    print(format_table(rows))
    print(recommend(rows, args.device))
    if args.json:
        write_bytes_atomic(args.json, json.dumps(rows, indent=1), overwrite=args.overwrite)
    return 0
