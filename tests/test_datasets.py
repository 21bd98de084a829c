"""Dataset recipes: shipped manifests, ``crossfuse data verify`` and ``crossfuse data prepare`` on real TNO files."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from conftest import require_data

from crossfuse import io as cio
from crossfuse.cli import main
from crossfuse.datasets import DATASETS, get_manifest, normalise, pixel_sha256, prepare, verify
from crossfuse.errors import UnknownNameError


def test_manifests_ship_the_documented_counts_and_splits():
    counts = {n: get_manifest(n)["counts"]["listed"] for n in DATASETS}
    assert counts == {"TNO": 42, "RoadScene": 221, "MSRS": 12, "LLVIP": 32, "M3FD": 0}
    rs = get_manifest("roadscene")  # case-insensitive
    assert len(rs["splits"]["cddfuse_test50"]["names"]) == 50
    assert set(rs["splits"]["cddfuse_test50"]["names"]) <= {f["name"][:-4] for f in rs["files"]}
    tno = get_manifest("TNO")
    assert tno["splits"]["cddfuse_tno25"]["source_names"]["06"] == "05"
    assert get_manifest("MSRS")["partial"] and get_manifest("LLVIP")["partial"]
    with pytest.raises(UnknownNameError, match="valid datasets: TNO, RoadScene"):
        get_manifest("KAIST")


def test_verify_tno_passes(capsys):
    folder = require_data("TNO")
    assert main(["data", "verify", "TNO", str(folder)]) == 0
    assert "84/84 files match" in capsys.readouterr().out


def _copy_tno(tmp_path, names=None):
    src = require_data("TNO")
    dst = tmp_path / "TNO"
    for m in ("ir", "vi"):
        (dst / m).mkdir(parents=True)
        for f in sorted((src / m).iterdir()):
            if names is None or f.stem in names:
                shutil.copy(f, dst / m / f.name)
    return dst


def test_verify_names_a_modified_file_and_fails(tmp_path, capsys):
    dst = _copy_tno(tmp_path)
    img = cv2.imread(str(dst / "vi" / "17.png"))
    img[10, 10] = (img[10, 10].astype(int) + 1) % 256  # one pixel, all channels alike: still gray content
    cv2.imwrite(str(dst / "vi" / "17.png"), img)
    assert main(["data", "verify", "TNO", str(dst)]) == 1
    out = capsys.readouterr().out
    assert "FAIL vi/17: content differs" in out
    assert out.count("FAIL") == 1 and "83/84 files match" in out


def test_verify_reports_missing_and_resized_files(tmp_path):
    dst = _copy_tno(tmp_path, names={"01", "02"})
    cio.write_image(dst / "ir" / "02.png", np.zeros((10, 12), np.uint8), overwrite=True)
    report = verify("TNO", dst, split="tno42")
    details = {(c.modality, c.pair): c.detail for c in report.failures}
    assert details[("ir", "02")] == "size 12x10, expected 768x576"
    assert details[("ir", "03")] == "missing"
    assert ("ir", "01") not in details and not report.ok


def test_prepare_original_layout_gives_what_verify_accepts(tmp_path, capsys):
    """A release laid out as Inf/ + Vis/ with 3-channel IR: prepare writes 1-channel IR that verify accepts."""
    tno = require_data("TNO")
    release = tmp_path / "release" / "TNO_Image_Fusion"
    for m, sub in (("ir", "Inf"), ("vi", "Vis")):
        (release / sub).mkdir(parents=True)
        for f in (tno / m).iterdir():
            shutil.copy(f, release / sub / f.name)
    out = tmp_path / "prepared"
    assert main(["data", "prepare", "TNO", str(tmp_path / "release"), str(out)]) == 0
    text = capsys.readouterr().out
    assert "42 file(s) copied, 42 converted" in text and "3-channel gray IR -> 1 channel: 42 file(s)" in text
    ir = cv2.imread(str(out / "ir" / "01.png"), cv2.IMREAD_UNCHANGED)
    assert ir.ndim == 2  # stored as one channel now
    assert main(["data", "verify", "TNO", str(out)]) == 0
    assert "84/84 files match (42 re-encoded with the same pixels)" in capsys.readouterr().out
    # nothing overwritten silently: a second run reports every existing file and fails
    assert main(["data", "prepare", "TNO", str(tmp_path / "release"), str(out)]) == 1


def test_prepare_split_renames_cddfuse_names(tmp_path):
    tno = require_data("TNO")
    src = tmp_path / "cddfuse"
    for m, sub in (("ir", "ir"), ("vi", "vi")):
        (src / sub).mkdir(parents=True)
        for ours, theirs in (("06", "05"), ("42", "25")):
            shutil.copy(tno / m / f"{ours}.png", src / sub / f"{theirs}.png")
    report = prepare("TNO", src, tmp_path / "out", split="cddfuse_tno25")
    assert sorted(p.name for p in (tmp_path / "out" / "ir").iterdir()) == ["06.png", "42.png"]
    assert len(report.problems) == 23  # the other 23 split pairs are named as not found
    assert verify("TNO", tmp_path / "out").failures[0].detail == "missing"


def test_normalise_16bit_and_colour_ir():
    ir16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    kept, notes = normalise(ir16, "ir", "keep")
    assert kept is ir16 and notes == []
    eight, notes = normalise(ir16, "ir", "8")
    assert eight.dtype == np.uint8 and eight[0, 1] == round(5000 / 257) and notes == ["16-bit -> 8-bit (value / 257)"]
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[..., 0] = 100  # R only: luma 0.299 * 100
    gray, notes = normalise(colour, "ir", "keep")
    assert gray.shape == (2, 2) and gray[0, 0] == 30 and notes == ["colour IR -> BT.601 luma"]
    vis, notes = normalise(colour, "vi", "keep")
    assert vis is colour and notes == []


def test_prepare_ambiguous_layout_is_one_clear_error(tmp_path, capsys):
    for scene in ("Beach", "Alley"):
        for sub in ("Ir", "Vis"):
            (tmp_path / "M3FD" / scene / sub).mkdir(parents=True)
    assert main(["data", "prepare", "M3FD", str(tmp_path / "M3FD"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "several folder pairs" in err and "pass --ir and --vi" in err
    assert main(["data", "prepare", "TNO", str(tmp_path / "nowhere"), str(tmp_path / "o")]) == 1
    assert "nowhere: not a folder" in capsys.readouterr().err


def test_pixel_hash_separates_dtype_and_shape():
    a = np.zeros((2, 2), np.uint8)
    assert pixel_sha256(a) != pixel_sha256(a.astype(np.uint16)) != pixel_sha256(np.zeros((2, 2, 1), np.uint8))
    assert pixel_sha256(a) == pixel_sha256(a.copy())
