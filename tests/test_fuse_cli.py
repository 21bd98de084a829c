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
