"""Sharded ``crossfuse bench robustness``: a real 2-process torchrun (gloo, CPU) on a small corrupted TNO tree writes
the same summary.csv / per_image.csv / summary.json as one process, and leaves one cache.jsonl behind."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from conftest import require_data
from test_shard import _run, commands, copy_pairs

from crossfuse.cli import main
from crossfuse.models import DEFAULT_MODEL
from crossfuse.robust import Share, merge_shares

STEMS = ("05", "08", "34", "35", "37")  # the smallest TNO pairs; an odd count splits unevenly over 2 ranks


def test_merged_shares_follow_one_process_order():
    a = Share(rows=[((0, "clean", "a"), {"r": 1}), ((1, "clean", "a"), {"r": 3})],
              problems=[((1, "n@1", "c"), "late")], outputs={"m": {("clean", "a"): Path("a")}})
    b = Share(rows=[((0, "clean", "b"), {"r": 2})], problems=[((0, "n@1", "d"), "early")],
              outputs={"m": {("clean", "b"): Path("b")}})
    m = merge_shares([a, b])
    assert [r["r"] for _, r in m.rows] == [1, 2, 3] and [p for _, p in m.problems] == ["early", "late"]
    assert m.outputs == {"m": {("clean", "a"): Path("a"), ("clean", "b"): Path("b")}}


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    exe, run2 = commands()
    clean, tree = tmp_path / "clean", tmp_path / "tree"
    copy_pairs(require_data("TNO"), clean, [f"{s}.png" for s in STEMS])
    assert main(["corrupt", "--data", str(clean), "--out", str(tree), "--conditions", "vis_noise,vis_blur",
                 "--severities", "1", "--quiet"]) == 0
    bad = tree / "vis_blur@1" / "vi" / "34.png"  # one pair of the wrong size: a per-image problem on one rank
    cv2.imwrite(str(bad), cv2.imread(str(bad))[:200])
    args = ["bench", "robustness", "--clean", str(clean), "--corrupted", str(tree), "--baselines", "max,average",
            "--threads", "1", "--quiet"]
    one = _run([exe, *args, "--out", str(tmp_path / "one")])
    two = _run([*run2, *args, "--out", str(tmp_path / "two")])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("scored 42 fused images") == 1  # rank 0 alone reports: 3 methods x 15 pairs - 3 bad
    for name in ("summary.csv", "per_image.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    j1, j2 = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert j1.pop("command") != j2.pop("command") and j1 == j2  # the command names its own --out
    assert sum("vis_blur@1/34: not fused" in p for p in j2["problems"]) == 3
    assert [p.name for p in (tmp_path / "two").glob("cache*")] == ["cache.jsonl"]  # the ranks' files folded in
    assert len((tmp_path / "two" / "cache.jsonl").read_text().splitlines()) == 42
    assert (tmp_path / "two" / "report.html").is_file() and (tmp_path / "two" / "curves.png").is_file()
    fused = tmp_path / "two" / "fused" / DEFAULT_MODEL / "vis_noise@1" / "37.png"
    stamp = fused.stat().st_mtime_ns
    again = _run([*run2, *args, "--out", str(tmp_path / "two")])  # resumes: nothing fused or scored again
    assert again.returncode == 0 and fused.stat().st_mtime_ns == stamp
    assert len((tmp_path / "two" / "cache.jsonl").read_text().splitlines()) == 42
    assert (tmp_path / "one" / "per_image.csv").read_bytes() == (tmp_path / "two" / "per_image.csv").read_bytes()


def test_rank_caches_fold_into_one(tmp_path):
    """An interrupted sharded run leaves cache.rank<R>.jsonl files: every later run reads them, and the process that
    writes the outputs folds them into cache.jsonl (a line cut by the interruption is ended, not glued to)."""
    from crossfuse.robust import fold_cache, load_cache

    cache = tmp_path / "cache.jsonl"
    cache.write_text(json.dumps({"key": "a", "values": {"MI": 1.0}}) + '\n{"key": "cu')
    (tmp_path / "cache.rank1.jsonl").write_text(json.dumps({"key": "b", "values": {"MI": 2.0}}) + "\n"
                                                + json.dumps({"key": "a", "values": {"MI": 1.0}}) + "\n")
    assert load_cache(cache) == {"a": {"MI": 1.0}, "b": {"MI": 2.0}}
    fold_cache(cache)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.jsonl"]
    lines = cache.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2]) == {"key": "b", "values": {"MI": 2.0}}
    assert load_cache(cache) == {"a": {"MI": 1.0}, "b": {"MI": 2.0}}
