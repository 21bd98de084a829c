"""``crossfuse align`` end to end: outputs, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_align import make_dataset as _make_dataset

from crossfuse.cli import main
from crossfuse.io import write_image


def make_dataset(root: Path, sizes, lo: int = 0, hi: int = 256, seed: int = 0, gray: bool = False) -> Path:
    return _make_dataset(root, sizes, lo, hi, seed, gray, ir_ext=".jpg")  # IR as JPEG here: mixed extensions


@pytest.fixture
def data(tmp_path):
    t = make_dataset(tmp_path / "target", {f"t{i}": (48, 48) for i in range(4)}, 100, 220, seed=1)
    e1 = make_dataset(tmp_path / "ext1", {"a": (64, 96), "b": (64, 64)}, 0, 150, seed=2)
    e2 = make_dataset(tmp_path / "ext2", {"c": (64, 64)}, 20, 250, seed=3)
    return tmp_path, t, e1, e2


def run(*args) -> int:
    return main(["align", *map(str, args)])


def test_cli_writes_the_documented_outputs(data, capsys):
    root, t, e1, e2 = data
    split = root / "train.txt"
    split.write_text("t0\nt1.png\nt3\n")
    out = root / "out"
    assert run("--target", t, "--external", e1, e2, "--patch", 16, "--stride", 16, "--k", 20, "--split", split,
               "--out", out) == 0
    msg = capsys.readouterr().out
    assert "selected 20 of 56 external patches" in msg and "gamma" in msg
    z = np.load(out / "patches.npz")
    assert z["vis_y"].shape == z["ir"].shape == (20, 16, 16) and z["vis_rgb"].shape == (20, 16, 16, 3)
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_target_images"] == 3 and rep["n_target_patches"] == 27 and rep["n_candidates"] == 56
    assert rep["candidates_per_dataset"] == {"ext1": 40, "ext2": 16}
    assert rep["selected"] == z["ids"].tolist() and rep["selected"][0].split("/")[0] in ("ext1", "ext2")
    assert np.all(np.abs(np.array(rep["selected_means_after"]) - rep["target_means"]) <= 0.5)
    assert rep["solver"] == "exact" and rep["distance"] == "mean"
    assert (out / "histograms.png").stat().st_size > 1000
    # the paper solver, another distance, K as a fraction, overwrite
    assert run("--target", t, "--external", e1, e2, "--patch", 16, "--stride", 16, "--k-fraction", 0.25,
               "--distance", "hist", "--paper-solver", "--out", out, "--overwrite") == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["k"] == 14 and rep["solver"] == "paper" and rep["settings"]["rounding"] == "truncate"
    assert rep["distance"] == "hist" and rep["solver_info"]["nfev"] > 0


@pytest.mark.parametrize("case,pattern", [
    ("gray", r"gray: no colour images in vi/ \(all 1 are gray\)"),
    ("k", r"K=500 is larger than the 40 candidate patches \(ext1: 40\)"),
    ("patch", r"patch 80x80 is larger than the image \(48x48, W x H\)"),
    ("unpaired", r"unpaired files: extra: no ir partner for vi/extra.png"),
    ("empty", r"no images found in"),
    ("missing_vi", r"no vi/ sub-folder"),
    ("exists", r"exists and is not empty"),
    ("distance", r"invalid choice: 'l2'"),
    ("no_exclude", r"--exclude \S*nofile.txt: file not found \(a text file with one image name per line\)"),
])
def test_cli_errors_are_one_line_and_write_nothing(data, capsys, case, pattern):
    root, t, e1, _ = data
    ext, extra = e1, []
    k, patch = "5", "16"
    if case == "gray":
        ext = make_dataset(root / "gray", {"g": (48, 48)}, gray=True)
    elif case == "k":
        k = "500"
    elif case == "patch":
        patch = "80"
    elif case == "unpaired":
        write_image(e1 / "vi" / "extra.png", np.zeros((48, 48, 3), np.uint8))
    elif case == "empty":
        (root / "empty" / "ir").mkdir(parents=True)
        (root / "empty" / "vi").mkdir(parents=True)
        ext = root / "empty"
    elif case == "missing_vi":
        (root / "novi" / "ir").mkdir(parents=True)
        ext = root / "novi"
    elif case == "exists":
        (root / "out").mkdir()
        (root / "out" / "keep.txt").write_text("mine")
    elif case == "distance":
        extra = ["--distance", "l2"]
    elif case == "no_exclude":  # CLI words, not the library's "split manifest not found"
        extra = ["--exclude", str(root / "nofile.txt")]
    if case == "distance":
        with pytest.raises(SystemExit):
            run("--target", t, "--external", ext, "--out", root / "out", *extra)
    else:
        assert run("--target", t, "--external", ext, "--patch", patch, "--stride", "16", "--k", k,
                   "--out", root / "out", *extra) == 1
    err = capsys.readouterr().err
    assert re.search(pattern, err), err
    if case != "distance":
        assert err.startswith("crossfuse align: error: ") and err.count("\n") == 1
    if case == "exists":
        assert sorted(p.name for p in (root / "out").iterdir()) == ["keep.txt"]
    else:
        assert not (root / "out").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".out")]


def test_cli_skip_unpaired_warns_and_runs(data, capsys):
    root, t, e1, _ = data
    write_image(e1 / "vi" / "extra.png", np.zeros((48, 48, 3), np.uint8))
    assert run("--target", t, "--external", e1, "--patch", 16, "--stride", 16, "--k", 5, "--skip-unpaired",
               "--out", root / "out") == 0
    assert "warning:" in capsys.readouterr().err
    rep = json.loads((root / "out" / "report.json").read_text())
    assert rep["skipped_unpaired"] == {"ext1": ["extra: no ir partner for vi/extra.png"]}


def test_cli_output_folder_and_files_follow_umask(data):
    import os

    root, t, e1, _ = data
    old = os.umask(0o022)
    try:
        assert run("--target", t, "--external", e1, "--patch", 16, "--stride", 16, "--k", 5, "--out",
                   root / "o") == 0
    finally:
        os.umask(old)
    assert (root / "o").stat().st_mode & 0o777 == 0o755  # not 0700 as with tempfile.mkdtemp
    assert {p.name: p.stat().st_mode & 0o777 for p in (root / "o").iterdir()} == {
        "patches.npz": 0o644, "report.json": 0o644, "histograms.png": 0o644}
