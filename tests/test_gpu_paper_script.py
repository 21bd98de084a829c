"""benchmarks/gpu_paper.sh, the lent GPU's time slice of the paper network, run here on the CPU with a tiny epoch:
it builds the protocol's 64-px pool without the validation hold-outs, stops after the first epoch past its budget,
copies the run to $OUT, and a second slice resumes where the first stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch
from conftest import REPO, SHARED_DATA, require_data


def test_the_gpu_slice_script_builds_the_pool_trains_a_slice_and_resumes(tmp_path):
    require_data("RoadScene")
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    for name in ("src", "benchmarks"):  # the script runs from a repository root and writes runs/ there
        (work / name).symlink_to(REPO / name)
    env = {**os.environ, "DEVICE": "cpu", "MINUTES": "0", "DATA": str(SHARED_DATA), "PY": sys.executable,
           "OUT": str(out), "EXTRA": "data.patches_per_epoch=8 validation.every=0", "OMP_NUM_THREADS": "2"}
    for epoch in (1, 2):
        done = subprocess.run(["bash", "benchmarks/gpu_paper.sh"], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"stopped after epoch {epoch} of 160" in done.stdout, done.stdout[-2000:]
        ck = torch.load(out / "paper" / "last.pt", weights_only=True)
        assert ck["epoch"] == epoch and ck["net"] == "paper"
    pool = np.load(work / "runs" / "align64_ho" / "patches.npz")
    assert pool["ir"].shape == (1000, 64, 64)  # K 1000 patches of the paper's 64 px
    report = json.loads((work / "runs" / "align64_ho" / "report.json").read_text())
    assert report["n_target_images"] == 221 - 50 - 10  # target statistics on the RoadScene train split only
    assert sorted(p.name for p in (out / "paper").iterdir()) == ["config.toml", "env.json", "last.pt", "log.csv"]
