"""``crossfuse fuse`` end to end: pairs, folders with bad input, resume, bit depth, real data, ``eval`` on --gray."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from _fusetools import random_net
from conftest import require_data

import crossfuse.cli.fuse_cmd as fuse_cmd
from crossfuse import cli
from crossfuse import io as cio
from crossfuse.infer import Fuser
from crossfuse.synthetic import make_scene

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net():
    return random_net("fast", seed=1)


@pytest.fixture(autouse=True)
def random_model(net, monkeypatch):
    """The CLI with a random-init network (the flags that shape the Fuser are still honoured)."""

    def make(args):
        return Fuser(net, device="cpu", tile=args.tile, overlap=args.overlap or 128, max_memory=args.max_memory,
                     ir_window=args.ir_window, stretch=args.stretch)

    monkeypatch.setattr(fuse_cmd, "make_fuser", make)


def _write_pairs(root, n, h=48, w=64):
    for k in range(n):
        sc = make_scene(h, w, seed=k)
        cio.write_image(root / "ir" / f"p{k:02d}.png", sc.ir)
        cio.write_image(root / "vi" / f"p{k:02d}.jpg" if k % 2 else root / "vi" / f"p{k:02d}.png", sc.vis)


def test_folder_with_bad_pairs_then_resume(tmp_path, capsys):
    _write_pairs(tmp_path, 20)
    (tmp_path / "vi" / "p05.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not an image")  # corrupt
    cio.write_image(tmp_path / "ir" / "p07.png", make_scene(50, 64, seed=7).ir, overwrite=True)  # size mismatch
    (tmp_path / "vi" / "p11.jpg").unlink()  # missing partner
    out = tmp_path / "fused"
    argv = ["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"), "--out", str(out), "--jobs", "2",
            "--quiet"]
    assert cli.main(argv) == 1
    text = capsys.readouterr().out
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 17 and not {"p05.png", "p07.png", "p11.png"} & set(written)
    assert "fused: 17 written, 3 failed" in text and "skipped" not in text  # skips mentioned only when some
    failed = [line for line in text.splitlines() if line.strip().startswith("FAILED")]
    assert len(failed) == 3
    assert any("p05" in f and "p05.jpg" in f and "corrupt or truncated JPEG" in f for f in failed)
    assert any("p07" in f and "size mismatch" in f and "64x50" in f for f in failed)
    assert any("p11" in f and "no vi partner" in f for f in failed)
    for name in written:
        img = cio.read_image(out / name)
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli.main(argv) == 1  # the three failures are still reported
    text = capsys.readouterr().out
    assert "0 written, 17 skipped" in text and "3 failed" in text
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps  # nothing rewritten
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_pair_mode_colour_gray_bitdepth_overwrite(tmp_path, capsys):
    sc = make_scene(61, 87, seed=3)
    ir, vi, vi_gray = tmp_path / "a_ir.png", tmp_path / "a_vi.png", tmp_path / "a_vig.png"
    cio.write_image(ir, sc.ir)
    cio.write_image(vi, sc.vis)
    cio.write_image(vi_gray, cio.rgb_to_gray(sc.vis))
    base = ["fuse", "--ir", str(ir), "--quiet"]
    assert cli.main(base + ["--vi", str(vi), "--out", str(tmp_path / "c.png")]) == 0
    colour = cio.read_image(tmp_path / "c.png")
    assert colour.shape == (61, 87, 3)
    assert cli.main(base + ["--vi", str(vi_gray), "--out", str(tmp_path / "g.png")]) == 0
    assert cio.read_image(tmp_path / "g.png").shape == (61, 87)
    assert cli.main(base + ["--vi", str(vi), "--out", str(tmp_path / "y.png"), "--gray"]) == 0
    y = cio.read_image(tmp_path / "y.png")
    inside = (colour > 0).all(-1) & (colour < 255).all(-1)  # Y survives colour where no channel clipped
    assert y.shape == (61, 87) and np.abs(cio.rgb_to_ycrcb(colour)[..., 0] - y)[inside].max() < 1.5
    assert cli.main(base + ["--vi", str(vi), "--out", str(tmp_path / "d16.png"), "--bit-depth", "16"]) == 0
    d16 = cio.read_image(tmp_path / "d16.png")
    assert d16.dtype == np.uint16 and np.abs(d16 / 257.0 - colour).max() <= 1.0
    # output folder instead of a file name: named after the IR stem
    assert cli.main(base + ["--vi", str(vi), "--out", str(tmp_path / "outdir")]) == 0
    assert (tmp_path / "outdir" / "a_ir.png").is_file()
    capsys.readouterr()
    # existing output: skipped, then replaced with --overwrite
    stamp = (tmp_path / "c.png").stat().st_mtime_ns
    assert cli.main(base + ["--vi", str(vi), "--out", str(tmp_path / "c.png"), "--stretch"]) == 0
    assert "1 skipped" in capsys.readouterr().out and (tmp_path / "c.png").stat().st_mtime_ns == stamp
    assert cli.main(base + ["--vi", str(vi), "--out", str(tmp_path / "c.png"), "--stretch", "--overwrite"]) == 0
    stretched = cio.read_image(tmp_path / "c.png")
    assert stretched.max() == 255 and not np.array_equal(stretched, colour)


def test_cli_errors_are_one_line(tmp_path, capsys):
    sc = make_scene(40, 40, seed=0)
    cio.write_image(tmp_path / "ir.png", sc.ir)
    (tmp_path / "vi").mkdir()
    assert cli.main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vi", str(tmp_path / "vi"),
                     "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crossfuse fuse: error:") and "both be files or both be folders" in err
    assert cli.main(["fuse", "--ir", str(tmp_path / "nope.png"), "--vi", str(tmp_path / "ir.png"),
                     "--out", str(tmp_path / "o.png")]) == 1
    assert "nope.png" in capsys.readouterr().err
    assert cli.main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vi", str(tmp_path / "ir.png"),
                     "--out", str(tmp_path / "o.jpg"), "--bit-depth", "16"]) == 1
    assert "--bit-depth 16" in capsys.readouterr().err


def test_sixteen_bit_files(tmp_path):
    rng = np.random.default_rng(0)
    raw = (30000 + rng.normal(0, 500, (40, 56))).astype(np.uint16)
    raw[10:20, 10:20] = 40000
    cio.write_image(tmp_path / "ir.png", raw)
    cio.write_image(tmp_path / "vi.png", make_scene(40, 56, seed=1).vis)
    assert cio.read_image(tmp_path / "ir.png").dtype == np.uint16
    assert cli.main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vi", str(tmp_path / "vi.png"),
                     "--out", str(tmp_path / "f.png"), "--quiet", "--gray"]) == 0
    f = cio.read_image(tmp_path / "f.png")
    assert f.dtype == np.uint8 and f.shape == (40, 56)
    assert f[10:20, 10:20].mean() > f[25:, 30:].mean() + 30  # the hot square survives the window


@pytest.mark.parametrize("dataset,count", [("TNO", 2), ("RoadScene", 2), ("LLVIP", 1)])
def test_real_data_folders_keep_size_colour_and_evaluate(tmp_path, capsys, dataset, count):
    root = require_data(dataset)
    matched = cio.match_folders({"ir": root / "ir", "vi": root / "vi"})
    for stem, files in matched.items[:count]:  # symlinks: the data stays in ../shared/data
        for kind in ("ir", "vi"):
            (tmp_path / kind).mkdir(exist_ok=True)
            os.symlink(files[kind], tmp_path / kind / files[kind].name)
    args = ["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"), "--quiet"]
    assert cli.main(args + ["--out", str(tmp_path / "fused")]) == 0
    assert cli.main(args + ["--out", str(tmp_path / "gray"), "--gray"]) == 0
    for stem, files in matched.items[:count]:
        vi = cio.read_image(files["vi"])
        fused = cio.read_image(tmp_path / "fused" / f"{stem}.png", keep_channels=True)
        assert fused.shape[:2] == vi.shape[:2]
        assert (fused.ndim == 3) == (vi.ndim == 3)
        gray = cio.read_image(tmp_path / "gray" / f"{stem}.png")
        assert gray.shape == vi.shape[:2]
    capsys.readouterr()
    js = tmp_path / "eval.json"
    assert cli.main(["eval", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"),
                     "--fused", str(tmp_path / "gray"), "--json", str(js), "--quiet",
                     "--metrics", "EN,SD,SF"]) == 0
    summary = json.loads(js.read_text())
    assert summary["n"] == count and summary["skipped"] == []
    from crossfuse.metrics import compute_metrics

    direct = [compute_metrics(cio.read_image(f["ir"]), cio.read_image(f["vi"]),
                              cio.read_image(tmp_path / "gray" / f"{stem}.png"), metrics=["EN", "SD"])
              for stem, f in matched.items[:count]]
    for m in ("EN", "SD"):
        assert summary["mean"][m] == pytest.approx(np.mean([d[m] for d in direct]), rel=1e-9)


# --------------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def no_model(monkeypatch):
    """For checks that must fail before the model is loaded: loading it is an error here."""

    def refuse(args):
        raise AssertionError("the model was loaded before the bad option/output was found")

    monkeypatch.setattr(fuse_cmd, "make_fuser", refuse)


def _pair(tmp_path, h=40, w=48):
    sc = make_scene(h, w, seed=2)
    return cio.write_image(tmp_path / "ir.png", sc.ir), cio.write_image(tmp_path / "vi.png", sc.vis)


def test_corrupt_jpeg_pair_is_reported_failed(tmp_path, capsys):
    root = require_data("LLVIP")
    ir = root / "ir" / "010001.jpg"
    data = bytearray((root / "vi" / "010001.jpg").read_bytes())
    data[len(data) // 10] ^= 0xFF  # one flipped byte in the scan: OpenCV alone decodes it half grey, silently
    (tmp_path / "vi.jpg").write_bytes(bytes(data))
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(tmp_path / "vi.jpg"), "--out", str(tmp_path / "f.png"),
                     "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "fused: 0 written, 1 failed" in out
    assert "FAILED 010001:" in out and "vi.jpg: corrupt or truncated JPEG" in out
    assert not (tmp_path / "f.png").exists()


def test_output_location_is_checked_before_the_model_loads(tmp_path, capsys, no_model):
    ir, vi = _pair(tmp_path)
    base = ["fuse", "--ir", str(ir), "--vi", str(vi), "--quiet"]
    assert cli.main(base + ["--out", str(tmp_path / "new.txt")]) == 1
    err = capsys.readouterr().err
    assert "--out" in err and "new.txt: not an image file name" in err
    assert not (tmp_path / "new.txt").exists()  # no folder made
    (tmp_path / "old.txt").write_text("keep")
    assert cli.main(base + ["--out", str(tmp_path / "old.txt"), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "old.txt: exists and is neither a folder nor an image file" in err and "Errno" not in err
    assert (tmp_path / "old.txt").read_text() == "keep"
    assert cli.main(base + ["--out", str(tmp_path / "old.txt" / "f.png")]) == 1
    assert "old.txt: exists and is not a folder" in capsys.readouterr().err
    (tmp_path / "pairs" / "ir").mkdir(parents=True)
    (tmp_path / "pairs" / "vi").mkdir()
    cio.write_image(tmp_path / "pairs" / "ir" / "a.png", make_scene(40, 48, seed=1).ir)
    cio.write_image(tmp_path / "pairs" / "vi" / "a.png", make_scene(40, 48, seed=1).vis)
    assert cli.main(["fuse", "--ir", str(tmp_path / "pairs" / "ir"), "--vi", str(tmp_path / "pairs" / "vi"),
                     "--out", str(tmp_path / "old.txt"), "--quiet"]) == 1
    assert "--out" in capsys.readouterr().err


def test_unwritable_output_folder_is_found_before_fusing(tmp_path, capsys, no_model, monkeypatch):
    ir, vi = _pair(tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(out) else real_access(p, mode))
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(out / "f.png"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{out}: folder is not writable" in err and ".part" not in err


@pytest.mark.parametrize("argv,message", [
    (["--tile", "64"], "--tile 64 must be larger than --overlap (128) + 32 = 160"),
    (["--tile", "100", "--overlap", "80"], "--tile 100 must be larger than --overlap (80) + 32 = 112"),
    (["--overlap", "-1"], "--overlap must be >= 0"),
    (["--max-memory", "-1GB"], "--max-memory -1GB: not a positive size; use e.g. 1.5GB or 800MB"),
    (["--max-memory", "lots"], "--max-memory lots: not a positive size"),
    (["--ir-window", "p9,1"], "--ir-window p9,1:"),
])
def test_bad_options_fail_at_the_cli_before_the_model_loads(tmp_path, capsys, no_model, argv, message):
    ir, vi = _pair(tmp_path)
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(tmp_path / "f.png"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crossfuse fuse: error:") and message in err and "expected one argument" not in err
    assert len(err.strip().splitlines()) == 1


def test_tile_checked_against_the_loaded_model_too(tmp_path, capsys):
    ir, vi = _pair(tmp_path, 200, 240)
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(tmp_path / "f.png"), "--quiet",
                     "--tile", "192", "--overlap", "32"]) == 0  # a valid tile is used
    assert cio.read_image(tmp_path / "f.png").shape == (200, 240, 3)


def test_broken_symlinks_in_input_folders_are_failures(tmp_path, capsys):
    for stem in ("a", "b"):
        sc = make_scene(32, 40, seed=len(stem))
        cio.write_image(tmp_path / "ir" / f"{stem}.png", sc.ir)
        cio.write_image(tmp_path / "vi" / f"{stem}.png", sc.vis)
    os.symlink(tmp_path / "gone.png", tmp_path / "ir" / "c.png")
    os.symlink("d.png", tmp_path / "vi" / "d.png")  # a loop
    assert cli.main(["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"), "--out",
                     str(tmp_path / "out"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "fused: 2 written, 2 failed" in out
    assert "FAILED c: ir/c.png is a broken symbolic link" in out and "FAILED d: vi/d.png is a broken symbolic" in out


def test_float_tiff_visible_is_accepted(tmp_path, capsys):
    import cv2

    sc = make_scene(40, 48, seed=4)
    cio.write_image(tmp_path / "ir.png", sc.ir)
    cio.write_image(tmp_path / "vi.png", sc.vis)
    vis = sc.vis.astype(np.float32)  # float on the 0-255 scale, as docs/fuse.md says
    cv2.imwrite(str(tmp_path / "vi.tif"), np.ascontiguousarray(vis[:, :, ::-1]))
    base = ["fuse", "--ir", str(tmp_path / "ir.png"), "--quiet", "--out"]
    assert cli.main(base + [str(tmp_path / "f.png"), "--vi", str(tmp_path / "vi.tif")]) == 0
    assert cli.main(base + [str(tmp_path / "u.png"), "--vi", str(tmp_path / "vi.png")]) == 0
    fused, from_u8 = cio.read_image(tmp_path / "f.png"), cio.read_image(tmp_path / "u.png")
    assert fused.shape == (40, 48, 3) and fused.dtype == np.uint8  # colour in, colour out
    assert np.abs(fused.astype(int) - from_u8.astype(int)).max() <= 1  # the same pixels as the 8-bit file


def test_summary_mentions_skips_only_when_there_were_some():
    s = fuse_cmd.Summary(written=["a", "b"])
    assert s.line() == "fused: 2 written, 0 failed"
    s.skipped.append("c")
    assert s.line() == "fused: 2 written, 1 skipped (output exists; --overwrite replaces), 0 failed"


def test_fuse_help_states_the_colour_rule(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fuse", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "three equal channels, as all of TNO is - gives a gray output" in text
    assert "true colour gives a colour output" in text


def test_existing_output_message_uses_cli_words(tmp_path):
    p = cio.write_image(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(FileExistsError) as err:
        cio.write_image(p, np.zeros((2, 2), np.uint8))
    assert "--overwrite" in str(err.value) and "overwrite=True" not in str(err.value)
