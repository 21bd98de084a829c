"""Latency benchmark of the fusion networks on this CPU (fp32, eval, no_grad, one IR/VIS pair per call).

Each (network, size) runs in a forked child process so its peak RSS is its own; the table gives the median of
``--repeats`` timed calls after ``--warmup`` untimed ones (wall clock), the fastest call, seconds per megapixel,
parameters, peak RSS and the median process CPU time per call. On a shared machine the wall clock suffers from
other jobs (with 2 threads on 2 busy cores, PyTorch's thread barriers make it many times slower); the CPU time
with ``--threads 1`` is the contention-robust measure of the work itself.
Optionally also times the ONNX export of each network under onnxruntime (``--onnx``).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_nets.py                       # defaults below
    PYTHONPATH=src .venv/bin/python benchmarks/bench_nets.py --nets fast --sizes 480x640 --onnx
    PYTHONPATH=src .venv/bin/python benchmarks/bench_nets.py --nets crossfuse-fast,paper   # the shipped model
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time

DEFAULT_SIZES = "256x256,480x640,768x1024,1024x1280"


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            h, w = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"bad size {item!r}: use HxW, e.g. 480x640") from None
        sizes.append((h, w))
    return sizes


def _time(fuser, ir, vis, warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    times, cpu = [], []
    for i in range(warmup + repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fuser.fuse_planes(ir, vis)  # the inference path: pad (reflect) -> backend -> crop, no tiles
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return times, cpu


def _measure(name: str, h: int, w: int, threads: int, warmup: int, repeats: int, onnx: bool) -> dict:
    """Runs in a child process: a Fuser per backend on random planes, timed without tiling."""
    import numpy as np
    import torch

    from crossfuse import models
    from crossfuse.infer import Fuser
    from crossfuse.nets.common import count_parameters

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # a shipped model keeps its own config (e.g. the complement head); other names are untrained networks
    spec = name if name in models.list_models() else f"net:{name}"
    fuser = Fuser(spec, device="cpu", max_memory="64GB")
    rng = np.random.default_rng(0)
    ir, vis = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
    times, cpu = _time(fuser, ir, vis, warmup, repeats)
    out = {"net": name, "size": f"{h}x{w}", "mpx": h * w / 1e6,
           "params": count_parameters(models.load_model(spec)), "median_s": statistics.median(times),
           "min_s": min(times), "n": repeats, "cpu_s": statistics.median(cpu),
           "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if onnx:
        onnx_fuser = Fuser(spec, device="cpu", backend="onnx", threads=threads, max_memory="64GB")
        out["onnx_median_s"] = statistics.median(_time(onnx_fuser, ir, vis, warmup, repeats)[0])
    return out


def _child(conn, *args) -> None:
    try:
        conn.send(_measure(*args))
    except BaseException as exc:  # report, don't hang the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _run_isolated(*args) -> dict:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, *args))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="fast,fast-s,paper",
                    help="comma-separated registry names or shipped model names (crossfuse-fast)")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"HxW list for the fast nets (default {DEFAULT_SIZES})")
    ap.add_argument("--paper-sizes", default="256x256", help="HxW list for 'paper' (slow: tens of s per Mpx)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--paper-repeats", type=int, default=3)
    ap.add_argument("--onnx", action="store_true", help="also time the ONNX export under onnxruntime")
    args = ap.parse_args(argv)

    load0 = os.getloadavg()[0]
    rows = []
    for name in [n.strip() for n in args.nets.split(",") if n.strip()]:
        is_paper = name in ("paper", "crossfuse-paper-short")
        sizes = _parse_sizes(args.paper_sizes if is_paper else args.sizes)
        for h, w in sizes:
            res = _run_isolated(name, h, w, args.threads, 1 if is_paper else args.warmup,
                                args.paper_repeats if is_paper else args.repeats, args.onnx and not is_paper)
            if "error" in res:
                print(f"{name} {h}x{w}: {res['error']}", file=sys.stderr)
                return 1
            rows.append(res)
            print(f"# {name} {h}x{w}: {res['median_s']:.4f} s", file=sys.stderr, flush=True)

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}, 1-min load average before {load0:.2f} / after {os.getloadavg()[0]:.2f}; "
          f"Python {platform.python_version()}")
    head = "| net | params | size (H×W) | median s | min s | s/Mpx (median) | s/Mpx (min) | CPU s/Mpx | peak RSS MiB |"
    sep = "|---|---|---|---|---|---|---|---|---|"
    if args.onnx:
        head, sep = head + " onnxruntime s/Mpx |", sep + "---|"
    print(head)
    print(sep)
    for r in rows:
        line = (f"| {r['net']} | {r['params']:,} | {r['size']} | {r['median_s']:.4f} | {r['min_s']:.4f} | "
                f"{r['median_s'] / r['mpx']:.3f} | {r['min_s'] / r['mpx']:.3f} | {r['cpu_s'] / r['mpx']:.3f} | "
                f"{r['rss_mib']:.0f} |")
        if args.onnx:
            line += f" {r['onnx_median_s'] / r['mpx']:.3f} |" if "onnx_median_s" in r else " – |"
        print(line)
    # speed ratio on the sizes both were run at
    by = {(r["net"], r["size"]): r for r in rows}
    for (net, size), r in by.items():
        if net != "paper" and ("paper", size) in by:
            ratio = by[("paper", size)]["median_s"] / r["median_s"]
            cpu_ratio = by[("paper", size)]["cpu_s"] / r["cpu_s"]
            print(f"\n{net} is {ratio:.0f}× faster than paper at {size} (median wall clock; {cpu_ratio:.0f}× in CPU "
                  "time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
