"""``crossfuse bench robustness``: the evaluator reproduces PEERS_ROBUST.md's baselines on TNO-C, and bad input is
named and skipped (``--strict`` makes it an error); statistics helpers on known numbers."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, require_data

from crossfuse.cli import main
from crossfuse.robust import noise_sigma, parse_condition
from crossfuse.robust_stats import mean_ranks, paired_bootstrap

SHARED = REPO.parent / "shared"


def peers_rows(method: str) -> dict[str, dict[str, float]]:
    """The rows of ``method`` in every table of PEERS_ROBUST.md: {condition: {metric: value}}."""
    text = (SHARED / "docs" / "PEERS_ROBUST.md").read_text()
    out = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        cond = section.split("\n", 1)[0].strip()
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == method:
                out[cond] = dict(zip(("MI", "SCD", "VIF", "Qabf", "SSIM"), map(float, cells[2:7])))
    return out


@pytest.fixture(scope="session")
def tno_c(tmp_path_factory) -> Path:
    """TNO-C built with ../shared/bench/make_corrupted.py and checked against its sha256 list."""
    tno = require_data("TNO")
    script = SHARED / "bench" / "make_corrupted.py"
    if not script.is_file():
        require_data("..", "bench", "make_corrupted.py")
    out = tmp_path_factory.mktemp("tnoc") / "TNO-C"
    subprocess.run([sys.executable, str(script), "--data", str(tno), "--out", str(out), "--verify",
                    str(SHARED / "bench" / "TNO-C.sha256")], check=True, capture_output=True)
    return out


@pytest.mark.slow
def test_max_rows_reproduce_peers_robust(tno_c, tmp_path):
    out = tmp_path / "bench"
    rc = main(["bench", "robustness", "--clean", str(require_data("TNO")), "--corrupted", str(tno_c), "--out",
               str(out), "--models", "none", "--baselines", "max", "--jobs", "2", "--quiet", "--strict"])
    assert rc == 0
    with open(out / "summary.csv") as fh:
        assert fh.readline().startswith("condition,method,n,MI,SCD,VIF,Qabf,SSIM")
    got = {r["condition"]: r for r in csv.DictReader(open(out / "summary.csv")) if r["method"] == "max"}
    want = peers_rows("max")
    assert len(want) == 16 and set(want) <= set(got)
    for cond, ref in want.items():
        assert int(got[cond]["n"]) == 42
        for metric, value in ref.items():
            assert abs(float(got[cond][metric]) - value) <= 1e-3, (cond, metric, got[cond][metric], value)
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and not re.search(r"(src|href)=['\"]https?:", page)


# --------------------------------------------------------------------------------------------------- tiny trees


def _scene(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.uniform(0, 255, (h, w)), (0, 0), 2.0)


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(np.round(img), 0, 255).astype(np.uint8))


@pytest.fixture
def tiny(tmp_path) -> dict[str, Path]:
    """3 clean pairs; a tree with noise@1 (complete), noise@2 (one pair missing, one of the wrong size), a
    manifest that also lists blur@1 (absent); an external method missing one image of noise@1."""
    clean, tree, ext = tmp_path / "clean", tmp_path / "tree", tmp_path / "ext"
    for i, stem in enumerate(("a", "b", "c")):
        ir, vi = _scene(i), _scene(10 + i)
        _write(clean / "ir" / f"{stem}.png", ir)
        _write(clean / "vi" / f"{stem}.png", vi)
        for s in (1, 2):
            if s == 2 and stem == "c":
                continue
            noisy = vi + np.random.default_rng(i).normal(0, 10 * s, vi.shape)
            bad = s == 2 and stem == "b"
            _write(tree / f"noise@{s}" / "ir" / f"{stem}.png", ir[:40] if bad else ir)
            _write(tree / f"noise@{s}" / "vi" / f"{stem}.png", noisy[:40] if bad else noisy)
            if not (s == 1 and stem == "b"):
                _write(ext / f"noise@{s}" / f"{stem}.png", np.maximum(ir, noisy))
    (tree / "manifest.json").write_text(json.dumps({"conditions": ["noise@1", "noise@2", "blur@1"]}))
    _write(ext / "blur@3" / "a.png", _scene(0))
    return {"clean": clean, "tree": tree, "ext": ext, "out": tmp_path / "out"}


def _run(t: dict[str, Path], *extra: str) -> int:
    return main(["bench", "robustness", "--clean", str(t["clean"]), "--corrupted", str(t["tree"]), "--out",
                 str(t["out"]), "--models", "none", "--baselines", "max,average", "--method", f"ext={t['ext']}",
                 "--quiet", *extra])


def test_bad_input_named_skipped_and_strict(tiny, capsys):
    assert _run(tiny) == 0
    summary = json.loads((tiny["out"] / "summary.json").read_text())
    problems = "\n".join(summary["problems"])
    assert "blur@1" in problems and "missing" in problems  # condition in the manifest, not in the tree
    assert "noise@2: 1 clean pair(s) missing from the tree: c" in problems
    assert "ext noise@1: 1 fused image(s) missing" in problems and ": b" in problems
    assert "size mismatch" in problems and "noise@2" in problems
    assert "ext: " in problems and "blur@3 has no counterpart" in problems  # an output folder the tree lacks
    rows = {(r["condition"], r["method"]): r for r in summary["summary"]}
    assert rows[("noise@1", "max")]["n"] == 3 and rows[("noise@1", "ext")]["n"] == 2
    assert rows[("noise@2", "max")]["n"] == 1  # b has mismatched sizes, c is missing
    # the external folder holds max of the same inputs: identical scores on the images it has
    per = {(r["condition"], r["method"], r["image"]): r for r in csv.DictReader(open(tiny["out"] / "per_image.csv"))}
    assert per[("noise@1", "ext", "a")]["Qabf"] == per[("noise@1", "max", "a")]["Qabf"]
    page = (tiny["out"] / "report.html").read_text()
    assert "blur@1" in page and "size mismatch" in page
    assert _run(tiny, "--strict") == 1


def test_resume_scores_only_new_rows(tiny):
    assert _run(tiny) == 0
    cache = tiny["out"] / "cache.jsonl"
    n = len(cache.read_text().splitlines())
    fused = tiny["out"] / "fused" / "max" / "noise@1" / "a.png"
    stamp = fused.stat().st_mtime_ns
    assert _run(tiny) == 0
    assert len(cache.read_text().splitlines()) == n and fused.stat().st_mtime_ns == stamp
    _write(tiny["ext"] / "noise@1" / "b.png", _scene(1))  # the missing image appears: only it is scored
    assert _run(tiny) == 0
    assert len(cache.read_text().splitlines()) == n + 1


def test_outputs_of_another_model_under_the_same_name_are_redone(tiny, capsys):
    """``--models m=FILE``: after FILE changes (a retrained model), m's fused images are made again."""
    import torch

    from crossfuse.models import weights_path

    weights = tiny["out"].parent / "m.pt"
    shutil.copy(weights_path("crossfuse-fast"), weights)
    argv = ["bench", "robustness", "--clean", str(tiny["clean"]), "--corrupted", str(tiny["tree"]), "--out",
            str(tiny["out"]), "--models", f"m={weights}", "--baselines", "none", "--conditions", "noise@1", "--quiet"]
    assert main(argv) == 0
    fused = tiny["out"] / "fused" / "m" / "noise@1" / "a.png"
    stamp = fused.stat().st_mtime_ns
    assert main(argv) == 0 and fused.stat().st_mtime_ns == stamp  # same model: reused
    blob = torch.load(weights, weights_only=True)
    torch.save(blob, weights)  # same content, new file: treated as a new model
    capsys.readouterr()
    assert main(argv) == 0 and fused.stat().st_mtime_ns != stamp
    assert "fusing m again" in capsys.readouterr().err


def test_drop_is_relative_to_clean_input(tiny):
    assert _run(tiny) == 0
    rows = {(r["condition"], r["method"]): r for r in csv.DictReader(open(tiny["out"] / "summary.csv"))}
    clean, noisy = rows[("clean", "average")], rows[("noise@1", "average")]
    want = 100 * (float(noisy["SSIM"]) - float(clean["SSIM"])) / float(clean["SSIM"])
    assert float(noisy["drop_SSIM"]) == pytest.approx(want) and want < 0


def test_paired_bootstrap_known_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 200)
    mean, lo, hi = paired_bootstrap(a + 0.5, a, seed=1)
    assert mean == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    b = a + rng.normal(0.3, 0.2, 200)
    mean, lo, hi = paired_bootstrap(b, a, seed=1)
    assert lo < mean < hi and 0.25 < lo and hi < 0.35
    assert paired_bootstrap(b, a, seed=1) == (mean, lo, hi)


def test_mean_rank_and_condition_names():
    rows = [{"condition": "x", "method": m, "MI": v, "SSIM": w} for m, v, w in
            (("p", 3.0, 0.5), ("q", 2.0, 0.9), ("r", 1.0, 0.1))]
    assert mean_ranks(rows, ("MI", "SSIM")) == {("x", "p"): 1.5, ("x", "q"): 1.5, ("x", "r"): 3.0}
    assert parse_condition("vis_noise@1") == ("vis_noise", 1.0) and parse_condition("clean") is None


def test_noise_estimate_tracks_added_noise():
    flat = np.full((200, 200), 120.0)
    for sigma in (2.0, 10.0):
        noisy = flat + np.random.default_rng(3).normal(0, sigma, flat.shape)
        assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.05)


def test_cross_dataset_mode_one_report_each(tiny):
    other = tiny["clean"].parent / "other"
    shutil.copytree(tiny["clean"], other)
    out = tiny["out"]
    argv = ["bench", "robustness", "--clean", str(tiny["clean"]), "--corrupted", str(tiny["tree"]), "--clean",
            str(other), "--corrupted", str(tiny["tree"]), "--out", str(out), "--models", "none", "--quiet"]
    assert main(argv) == 0
    for name in ("clean", "other"):
        assert (out / name / "report.html").is_file()
        rows = list(csv.DictReader(open(out / name / "summary.csv")))
        assert {r["method"] for r in rows} == {"max", "average"}
    table = list(csv.DictReader(open(out / "datasets.csv")))
    assert [(r["dataset"], r["method"]) for r in table] == [("clean", "max"), ("clean", "average"), ("other", "max"),
                                                           ("other", "average")]
    assert table[0]["mean_rank"] == table[2]["mean_rank"]  # same images, same scores
    assert main(argv[:6] + argv[8:]) == 1  # two --clean, one --corrupted


def test_hole_in_the_severity_grid_is_named(tiny):
    """No manifest: noise has severities 1 and 2, so a lone jpeg@1 means jpeg@2 is missing."""
    (tiny["tree"] / "manifest.json").unlink()
    for sub in ("ir", "vi"):
        shutil.copytree(tiny["tree"] / "noise@1" / sub, tiny["tree"] / "jpeg@1" / sub)
    assert _run(tiny, "--strict") == 1
    problems = json.loads((tiny["out"] / "summary.json").read_text())["problems"]
    assert any("jpeg@2: missing (other conditions have severity 2)" in p for p in problems)
    assert not any("blur@1" in p for p in problems)  # only the manifest named it
