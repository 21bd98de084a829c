"""Memory and tiling benchmark for `crossfuse fuse` (results go in docs/fuse.md).

1. A 4000x3000 pair (synthetic scene, written as PNG files) is read, fused and written on the CPU in a child
   process, once with the default memory budget (tiled) and once with an unlimited budget (whole frame); the peak
   RSS of each child comes from ``os.wait4`` (its own ``ru_maxrss``). If the default model's weights are present,
   the real ``crossfuse fuse`` command is measured the same way.
2. Tiled vs untiled agreement on a 1280x1024 LLVIP pair (synthetic if the data is missing): max grey-level
   difference away from the image borders (16 px) and the share of pixels differing by more than 1.
3. Optionally (``--latency``) the latency table of ``crossfuse bench`` for torch and onnx.

Run:  PYTHONPATH=src .venv/bin/python benchmarks/bench_fuse_memory.py [--model NAME|net:fast] [--threads 2]
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from crossfuse.bench import bench, format_table, run_child, synthetic_pair  # noqa: E402
from crossfuse.io import write_image  # noqa: E402


def default_model_available() -> bool:
    try:
        from crossfuse import models

        return models.weights_path(models.DEFAULT_MODEL).is_file()
    except Exception:  # models module missing or not importable
        return False


def measure_cli(argv: list[str], threads: int) -> tuple[int, float, float]:
    """Run ``crossfuse ARGV`` in a child; return (exit status, peak RSS MB, wall seconds)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS=str(threads or os.cpu_count()))
    code = "import sys; from crossfuse.cli import main; sys.exit(main(sys.argv[1:]))"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, time.perf_counter() - t0


def agreement(model: str, threads: int) -> dict:
    import torch

    from crossfuse.bench import make_fuser
    from crossfuse.io import read_image

    torch.set_num_threads(threads or torch.get_num_threads())
    llvip = REPO.parent / "shared" / "data" / "LLVIP"
    names = sorted((llvip / "ir").glob("*")) if llvip.is_dir() else []
    if names:
        ir, vi = read_image(names[0]), read_image(llvip / "vi" / names[0].name)
        source = f"LLVIP {names[0].name}"
    else:
        ir, vi = synthetic_pair(1280, 1024)
        source = "synthetic 1280x1024"
    whole = make_fuser(model, max_memory="16GB")(ir, vi).astype(np.int32)
    tiler = make_fuser(model, tile=512)
    tiled = tiler(ir, vi).astype(np.int32)
    d = np.abs(whole - tiled)[16:-16, 16:-16]
    return {"source": source, "tiles": tiler.last_tiles, "overlap": tiler.overlap, "max_diff": int(d.max()),
            "share_gt1": float((d > 1).mean()), "mean_diff": float(d.mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name, .onnx, or net:NAME (default: the default model "
                                                  "if its weights exist, else net:fast)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--latency", action="store_true", help="also run the latency table (torch and onnx)")
    ap.add_argument("--json", default=None, help="write all results here")
    a = ap.parse_args()
    model = a.model or ("crossfuse-fast" if default_model_available() else "net:fast")
    results: dict = {"model": model, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        ir, vi = synthetic_pair(4000, 3000, seed=7)
        ir_p, vi_p = write_image(Path(tmp) / "ir.png", ir), write_image(Path(tmp) / "vi.png", vi)
        del ir, vi
        rows = []
        for label, budget in (("default budget --max-memory 1GB", "1GB"), ("--max-memory 512MB", "512MB"),
                              ("unlimited budget (whole frame)", "64GB")):
            r = run_child(["--pair", str(ir_p), str(vi_p), "--out", str(Path(tmp) / "f.png"), "--model", model,
                           "--max-memory", budget, "--repeats", "1", "--warmup", "0", "--threads", str(a.threads)])
            rows.append({"case": label, **r})
            print(f"4000x3000 {label}: peak RSS {r['peak_rss_mb']:.0f} MB, fuse {r['median_s']:.1f} s, "
                  f"tiles {r['tiles']}, wall {r['wall_s']:.1f} s", flush=True)
        if not model.startswith("net:"):
            rc, peak, wall = measure_cli(["fuse", "--ir", str(ir_p), "--vi", str(vi_p), "--out",
                                          str(Path(tmp) / "cli.png"), "--device", "cpu", "--model", model,
                                          "--quiet"], a.threads)
            rows.append({"case": "crossfuse fuse CLI", "peak_rss_mb": round(peak, 1), "wall_s": round(wall, 1),
                         "exit": rc})
            print(f"4000x3000 crossfuse fuse CLI: exit {rc}, peak RSS {peak:.0f} MB, wall {wall:.1f} s", flush=True)
        results["memory_4000x3000"] = rows
    results["tiled_vs_untiled"] = agreement(model, a.threads)
    print("tiled vs untiled:", results["tiled_vs_untiled"], flush=True)
    if a.latency:
        lat = bench([(640, 480), (1280, 1024), (1920, 1080)], ["torch", "onnx"], model, repeats=5, warmup=2,
                    threads=a.threads)
        results["latency"] = lat
        print(format_table(lat))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
