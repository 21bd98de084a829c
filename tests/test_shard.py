"""Sharded runs: rank/world from torchrun's environment, job splitting, merging; and a real 2-process torchrun (gloo,
CPU) of ``crossfuse fuse`` and ``crossfuse eval`` on 40 RoadScene pairs, byte-identical to one process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_data

from crossfuse.cli.fuse_cmd import Summary
from crossfuse.errors import InputError
from crossfuse.metrics.evaluate import EvalResult
from crossfuse.shard import Shard, merge_eval, merge_fields


def test_rank_and_world_from_env():
    assert Shard.from_env({}) == Shard(0, 1) and not Shard.from_env({}).active
    assert Shard.from_env({"RANK": "1", "WORLD_SIZE": "3"}) == Shard(1, 3)
    with pytest.raises(InputError, match="need 0 <= RANK < WORLD_SIZE"):
        Shard.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(InputError, match="WORLD_SIZE='two' is not an integer"):
        Shard.from_env({"WORLD_SIZE": "two"})


def test_take_splits_every_job_exactly_once():
    jobs = [f"p{i:02d}" for i in range(11)]
    shares = [Shard(r, 3).take(jobs) for r in range(3)]
    assert shares[0] == ["p00", "p03", "p06", "p09"] and sorted(sum(shares, [])) == jobs
    assert Shard(0, 1).take(jobs) == jobs and Shard(0, 1).merged("x") == "x"


def test_merges():
    def result(rows, skipped):
        return EvalResult("cddfuse", "ref", "gray", ["EN"], rows=rows, skipped=skipped, folders={"ir": "i"})

    a = result([("a", {"EN": 1.0}), ("c", {"EN": 3.0})], [("z", "no fused partner")])
    b = result([("b", {"EN": 2.0})], [("z", "no fused partner"), ("y", "unreadable")])
    m = merge_eval([a, b])
    assert [r[0] for r in m.rows] == ["a", "b", "c"] and m.skipped == [("y", "unreadable"), ("z", "no fused partner")]
    assert m.folders == {"ir": "i"} and m.mean["EN"] == 2.0
    s = merge_fields([Summary(["b"], [], [("q", "no vi partner")]), Summary(["a"], ["c"], [("q", "no vi partner")])])
    assert s == Summary(["a", "b"], ["c"], [("q", "no vi partner")])


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def commands() -> tuple[str, list[str]]:
    """The crossfuse console script, and the torchrun prefix that starts it in 2 processes; skips without it."""
    exe = shutil.which("crossfuse", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the crossfuse console script is not installed beside this Python")
    return exe, [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "--no-python", "--", exe]


def copy_pairs(src: Path, dst: Path, names: list[str]) -> None:
    """``src/{ir,vi}/<name>`` into ``dst/{ir,vi}/``."""
    for m in ("ir", "vi"):
        (dst / m).mkdir(parents=True)
        for n in names:
            shutil.copy(src / m / n, dst / m / n)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    exe, run2 = commands()
    rs = require_data("RoadScene")
    copy_pairs(rs, tmp_path, sorted(p.name for p in (rs / "ir").iterdir())[:40])
    src = ["--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi")]
    one = _run([exe, "fuse", *src, "--out", str(tmp_path / "one"), "--quiet"])
    two = _run([*run2, "fuse", *src, "--out", str(tmp_path / "two"), "--quiet"])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("fused: 40 written, 0 failed") == 1  # rank 0 alone reports, for both ranks
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(names) == 40 and names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for n in names:
        assert (tmp_path / "one" / n).read_bytes() == (tmp_path / "two" / n).read_bytes(), n
    e1 = _run([exe, "eval", *src, "--fused", str(tmp_path / "one"), "--csv", str(tmp_path / "e1.csv"), "--quiet"])
    e2 = _run([*run2, "eval", *src, "--fused", str(tmp_path / "two"), "--csv", str(tmp_path / "e2.csv"), "--quiet"])
    assert e1.returncode == 0 and e2.returncode == 0, e2.stderr[-2000:]
    assert (tmp_path / "e1.csv").read_bytes() == (tmp_path / "e2.csv").read_bytes()
    assert len((tmp_path / "e2.csv").read_text().splitlines()) == 41
