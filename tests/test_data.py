"""Training data: splits, in-memory pairs, on-the-fly patches, external patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_data

from crossfuse import data as D
from crossfuse.io import PairingError, read_image, read_stem_list, rgb_to_ycrcb, write_image


def test_roadscene_split_excludes_test_list():
    rs = require_data("RoadScene")
    split = D.make_split(rs, rs / "cddfuse_test50.txt", val_count=10, seed=0)
    test = read_stem_list(rs / "cddfuse_test50.txt")
    assert len(split.test) == 50 and split.test == test
    assert len(split.val) == 10 and len(split.train) == 221 - 50 - 10
    assert not (set(split.train) & set(split.test)) and not (set(split.val) & set(split.test))
    assert not set(split.train) & set(split.val)
    assert D.make_split(rs, rs / "cddfuse_test50.txt", val_count=10, seed=0) == split  # seeded, reproducible
    assert D.make_split(rs, rs / "cddfuse_test50.txt", val_count=10, seed=1).val != split.val


def test_load_pairs_gives_ir_gray_and_vis_luminance():
    rs = require_data("RoadScene")
    stem = "FLIR_00006"
    pairs = D.load_pairs(rs, [stem])
    vi = read_image(rs / "vi" / f"{stem}.jpg")
    ir = read_image(rs / "ir" / f"{stem}.jpg")
    assert pairs.stems == [stem] and pairs.ir[0].dtype == np.uint8 and pairs.vis_y[0].dtype == np.uint8
    np.testing.assert_array_equal(pairs.ir[0], ir)
    want = np.clip(np.round(rgb_to_ycrcb(vi)[..., 0]), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pairs.vis_y[0], want)
    # BT.601 luma by hand on one pixel
    r, g, b = vi[10, 20].astype(float)
    assert abs(int(pairs.vis_y[0][10, 20]) - (0.299 * r + 0.587 * g + 0.114 * b)) <= 0.5 + 1e-6


def _write_pairs(root, n=3, size=(40, 50)):
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(root / "ir" / f"p{i}.png", rng.integers(0, 256, size, dtype=np.uint8))
        write_image(root / "vi" / f"p{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def test_patch_dataset_is_seeded_and_in_range(tmp_path):
    _write_pairs(tmp_path)
    pairs = D.load_pairs(tmp_path)
    ds = D.PatchDataset(pairs, patch=16, length=10, seed=3)
    ir, vis = ds[4]
    assert ir.shape == vis.shape == (1, 16, 16) and ir.dtype == torch.float32
    assert 0 <= float(ir.min()) and float(ir.max()) <= 1
    again = D.PatchDataset(pairs, patch=16, length=10, seed=3)[4]
    assert torch.equal(again[0], ir) and torch.equal(again[1], vis)
    ds.set_epoch(1)
    assert not torch.equal(ds[4][0], ir)
    # every patch is a window (possibly flipped) of one of the images
    a = (ir[0].numpy() * 255).round().astype(np.uint8)
    found = False
    for img in pairs.ir:
        for cand in (img, img[:, ::-1]):
            win = np.lib.stride_tricks.sliding_window_view(cand, (16, 16))
            found |= bool((win == a).all(axis=(2, 3)).any())
    assert found


def test_external_patches_and_ratio(tmp_path):
    _write_pairs(tmp_path)
    pairs = D.load_pairs(tmp_path)
    ext_vis = np.full((5, 16, 16), 7, np.uint8)
    ext_ir = np.full((5, 16, 16), 9, np.uint8)
    np.savez(tmp_path / "patches.npz", vis_y=ext_vis, ir=ext_ir, ids=np.arange(5))
    ext = D.load_external(tmp_path / "patches.npz")
    only = D.PatchDataset(pairs, patch=16, length=20, external=ext, external_ratio=1.0)
    assert all(float(only[i][1].max()) == pytest.approx(7 / 255) for i in range(20))
    half = D.PatchDataset(pairs, patch=16, length=400, external=ext, external_ratio=0.5)
    n_ext = sum(float(half[i][0].max()) == pytest.approx(9 / 255) and float(half[i][0].min()) == pytest.approx(9 / 255)
                for i in range(400))
    assert 150 < n_ext < 250
    with pytest.raises(ValueError, match="external patches are"):
        D.PatchDataset(pairs, patch=32, external=ext, external_ratio=0.5)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        D.load_pairs(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="aligned external patches not found"):
        D.load_external(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", vis_y=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="missing array 'ir'"):
        D.load_external(tmp_path / "bad.npz")
    _write_pairs(tmp_path / "set")
    write_image(tmp_path / "set" / "ir" / "lonely.png", np.zeros((40, 50), np.uint8))
    with pytest.warns(UserWarning, match="skipping unpaired files: lonely: no vi partner for ir/lonely.png"), \
            pytest.raises(PairingError, match="split manifest names images without an ir/vi pair: nope"):
        D.load_pairs(tmp_path / "set", ["nope"])
    write_image(tmp_path / "set" / "vi" / "lonely.png", np.zeros((30, 50), np.uint8))
    with pytest.raises(Exception, match="size mismatch"):
        D.load_pairs(tmp_path / "set", ["lonely"])
    with pytest.raises(ValueError, match="larger than pair"):
        D.PatchDataset(D.load_pairs(tmp_path / "set", ["p0"]), patch=64)
    with pytest.raises((PairingError, ValueError), match="val_count"):
        D.make_split(tmp_path / "set", None, val_count=10)
