"""Honest inference benchmarks: warmed-up median latency per image size and backend, peak memory, parameters.

Each case runs in its own child process (``python -m crossfuse.bench child ...``) so that its peak resident set
size is its own: the parent waits with ``os.wait4`` and reads ``ru_maxrss`` of that child (Python's
``tracemalloc`` does not see torch's allocations). The child builds the :class:`crossfuse.infer.Fuser`, makes a
synthetic pair of the requested size (or reads a pair of files), runs ``warmup`` untimed calls and ``repeats``
timed ones, and prints one JSON line. Peak RSS therefore includes the Python/torch runtime (~0.3 GB), the inputs
and the output: what a user's process needs.

Model specs: anything :func:`crossfuse.models.resolve` takes (a shipped name, an exported weights ``.pt``, a training
checkpoint or run folder, an ``.onnx`` file) or ``net:NAME`` (an *untrained* network from :mod:`crossfuse.nets`, for
timing before weights exist; latency does not depend on weights). :func:`recommend` turns the rows into one line:
the fastest backend and thread count measured on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from crossfuse.errors import CrossfuseError


def parse_sizes(spec: str) -> list[tuple[int, int]]:
    """``"640x480,1280x1024"`` -> ``[(640, 480), (1280, 1024)]`` (W x H)."""
    out = []
    for part in spec.split(","):
        try:
            w, h = (int(v) for v in part.lower().strip().split("x"))
        except ValueError:
            raise ValueError(f"cannot read size {part!r}; use WxH, e.g. 640x480") from None
        if w < 16 or h < 16:
            raise ValueError(f"size {part!r} is too small (at least 16x16)")
        out.append((w, h))
    return out


def make_fuser(spec: str | None, backend: str = "torch", device: str = "cpu", threads: int = 0, **kwargs: Any):
    from crossfuse.infer import Fuser

    return Fuser(spec, device=device, backend=backend, threads=threads, **kwargs)


def count_parameters(spec: str | None) -> int | None:
    from crossfuse.models import resolve

    r = resolve(spec)
    return None if r.module is None else int(sum(p.numel() for p in r.module.parameters()))


def synthetic_pair(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic scene at ``width`` x ``height``: drawn at <= 1 Mpx, then resized (cheap in memory)."""
    import cv2

    from crossfuse.synthetic import make_scene

    f = min(1.0, (1_000_000 / (width * height)) ** 0.5)
    sc = make_scene(max(32, int(height * f)), max(32, int(width * f)), seed=seed)
    if f == 1.0:
        return sc.ir, sc.vis
    return (cv2.resize(sc.ir, (width, height), interpolation=cv2.INTER_LINEAR),
            cv2.resize(sc.vis, (width, height), interpolation=cv2.INTER_LINEAR))


def run_child(argv: list[str]) -> dict[str, Any]:
    """Run ``python -m crossfuse.bench child ARGV`` and return its JSON plus ``peak_rss_mb`` (from ``wait4``)."""
    cmd = [sys.executable, "-m", "crossfuse.bench", "child", *argv]
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as errfile:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile, text=True, env=env)
        out = _wait4(proc)
        errfile.seek(0)
        err = errfile.read()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no error output"])[-1]
        raise CrossfuseError(f"benchmark child failed ({' '.join(argv)}): {last}")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)
    return result


def _wait4(proc: subprocess.Popen) -> str:
    """Read the child's stdout, then reap it with ``os.wait4`` to get its own ``ru_maxrss``."""
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = usage.ru_maxrss  # kilobytes on Linux
    if proc.returncode == 0 and out.strip():
        data = json.loads(out.strip().splitlines()[-1])
        data["peak_rss_mb"] = round(peak_kb / 1024, 1)
        out = json.dumps(data)
    return out


def child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m crossfuse.bench child")
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default=None, help="WxH synthetic pair")
    p.add_argument("--pair", nargs=2, default=None, help="IR and visible files instead of --size")
    p.add_argument("--out", default=None, help="write the fused result here (with --pair)")
    p.add_argument("--max-memory", default="1GB")
    p.add_argument("--tile", type=int, default=None)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    import torch

    threads = a.threads or torch.get_num_threads()  # one known count for both backends (torch's default otherwise)
    torch.set_num_threads(threads)
    fuser = make_fuser(a.model, a.backend, a.device, threads, max_memory=a.max_memory, tile=a.tile)
    if a.pair:
        from crossfuse.infer import read_pair

        ir, vi = read_pair(*a.pair)
    else:
        w, h = parse_sizes(a.size)[0]
        ir, vi = synthetic_pair(w, h)
    fused = None
    for _ in range(a.warmup):
        fused = fuser(ir, vi)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        fused = fuser(ir, vi)
        fuser.runner.synchronize()
        times.append(time.perf_counter() - t0)
    if a.out and fused is not None:
        from crossfuse.io import write_image

        write_image(a.out, fused, overwrite=True)
    print(json.dumps({"size": f"{vi.shape[1]}x{vi.shape[0]}", "backend": fuser.backend, "model": a.model,
                      "median_s": float(np.median(times)) if times else None, "repeats": a.repeats,
                      "warmup": a.warmup, "tiles": fuser.last_tiles, "threads": threads}))
    return 0


def bench(sizes: list[tuple[int, int]], backends: list[str], model: str | None = None, *, repeats: int = 5,
          warmup: int = 2, device: str = "cpu", threads: int | list[int] = 0, max_memory: str = "1GB") -> list[dict]:
    """One child process per (size, backend, thread count); returns the rows (see the module docstring)."""
    params = count_parameters(model)
    rows = []
    for w, h in sizes:
        for backend in backends:
            for t in threads if isinstance(threads, list) else [threads]:
                argv = ["--size", f"{w}x{h}", "--backend", backend, "--device", device, "--repeats", str(repeats),
                        "--warmup", str(warmup), "--threads", str(t), "--max-memory", max_memory]
                if model:
                    argv += ["--model", str(model)]
                row = run_child(argv)
                row["params"] = params
                row["mpx_per_s"] = round(w * h / 1e6 / row["median_s"], 2) if row.get("median_s") else None
                rows.append(row)
    return rows


def recommend(rows: list[dict], device: str = "cpu") -> str:
    """One line: the fastest (backend, threads) measured at the largest size, for this machine."""
    timed = [r for r in rows if r.get("median_s")]
    if not timed:
        return "recommendation: none (nothing was timed)"
    area = lambda r: int(r["size"].split("x")[0]) * int(r["size"].split("x")[1])  # noqa: E731
    top = max(map(area, timed))
    largest = [r for r in timed if area(r) == top]
    best = min(largest, key=lambda r: r["median_s"])
    tried = sorted({r["threads"] for r in largest})
    line = (f"recommendation for this machine ({os.cpu_count()} CPUs, device {device}): --backend {best['backend']} "
            f"--threads {best['threads']} ({1000 * best['median_s']:.0f} ms at {best['size']}, fastest of "
            f"{len(largest)} measured)")
    if len(tried) == 1:
        line += "; compare thread counts with e.g. --threads 1,2,4"
    return line


def format_table(rows: list[dict]) -> str:
    lines = ["| size (W×H) | backend | threads | median latency (ms) | Mpx/s | peak RSS (MB) | tiles | parameters |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['backend']} | {r['threads']} | {1000 * r['median_s']:.1f} | "
                     f"{r['mpx_per_s']} | "
                     f"{r['peak_rss_mb']:.0f} | {r['tiles']} | {r['params'] if r['params'] is not None else '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the child entry point
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit("usage: python -m crossfuse.bench child ... (use `crossfuse bench` instead)")
