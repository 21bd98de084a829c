"""Time ``crossfuse bench robustness`` on TNO-C: the default model and both baselines, 17 x 42 pairs each.

Builds TNO-C with ``../shared/bench/make_corrupted.py`` (checked against ``TNO-C.sha256``) unless ``--tree`` names
an existing copy, runs the benchmark into a fresh ``--out`` and prints the wall time of each step (the issue asks
for <= 10 minutes on the 2-core CPU machine), plus the default model's rows beside PEERS_ROBUST.md's. With
``--screenshot FILE`` it also renders report.html in headless Chromium.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_robustness.py --work /tmp/robust [--jobs 2] \
        [--screenshot docs/img/robustness_report.png]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from crossfuse.models import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def build_tree(work: Path) -> Path:
    tree = work / "TNO-C"
    if tree.is_dir():
        shutil.rmtree(tree)
    t = time.perf_counter()
    subprocess.run([sys.executable, str(SHARED / "bench" / "make_corrupted.py"), "--data", str(SHARED / "data" / "TNO"),
                    "--out", str(tree), "--verify", str(SHARED / "bench" / "TNO-C.sha256")], check=True)
    print(f"TNO-C built in {time.perf_counter() - t:.1f} s")
    return tree


def screenshot(report: Path, png: Path) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("chromium not found: no screenshot (apt-get install -y chromium)")
        return
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--hide-scrollbars", "--window-size=1400,2200", f"--screenshot={png.resolve()}",
                    report.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    print(f"screenshot: {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (TNO-C and the output go here)")
    ap.add_argument("--tree", type=Path, default=None, help="an existing TNO-C (default: build it in --work)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--screenshot", type=Path, default=None)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    tree = a.tree or build_tree(a.work)
    out = a.work / "out"
    if out.exists():
        shutil.rmtree(out)  # time a cold run (no cached fused images or scores)
    cmd = [str(Path(sys.executable).with_name("crossfuse")), "bench", "robustness", "--clean",
           str(SHARED / "data" / "TNO"), "--corrupted", str(tree), "--out", str(out), "--jobs", str(a.jobs),
           "--threads", "1", "--thumbs", "1", "--quiet"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t
    print(f"bench robustness ({DEFAULT_MODEL} + max + average, 17 x 42 pairs, --jobs {a.jobs}): {wall:.0f} s "
          f"wall on {os.cpu_count()} CPUs")
    rows = list(csv.DictReader(open(out / "summary.csv")))
    print("| condition | method | MI | SCD | VIF | Qabf | SSIM | rank |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['condition']} | {r['method']} | " + " | ".join(f"{float(r[m]):.3f}" for m in
              ("MI", "SCD", "VIF", "Qabf", "SSIM")) + f" | {float(r['rank']):.2f} |")
    if a.screenshot:
        screenshot(out / "report.html", a.screenshot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
