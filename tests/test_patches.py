"""crossfuse.patches: grid, order, exact statistics, pixels, loading and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossfuse.io import ImageError, PairingError, read_stem_list, write_image
from crossfuse.patches import (
    channel_histograms,
    coverage_histogram,
    extract_candidates,
    grid_starts,
    load_pairs,
)


def make_dataset(root: Path, sizes: dict[str, tuple[int, int]], seed: int = 0, gray: tuple[str, ...] = ()) -> Path:
    rng = np.random.default_rng(seed)
    for stem, (h, w) in sizes.items():
        vis = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if stem in gray:
            vis[:, :, 1] = vis[:, :, 2] = vis[:, :, 0]
        write_image(root / "vi" / f"{stem}.png", vis)
        write_image(root / "ir" / f"{stem}.png", rng.integers(0, 256, (h, w), dtype=np.uint8))
    return root


def test_grid_starts_whole_patches_only():
    assert grid_starts(100, 64, 200).tolist() == [0]
    assert grid_starts(464, 64, 200).tolist() == [0, 200, 400]
    assert grid_starts(463, 64, 200).tolist() == [0, 200]
    assert grid_starts(130, 64, 33).tolist() == [0, 33, 66]
    assert grid_starts(129, 64, 33).tolist() == [0, 33]
    assert grid_starts(63, 64, 1).tolist() == []


@pytest.mark.parametrize("patch,stride", [(8, 8), (8, 5), (7, 11), (16, 3)])
def test_candidates_match_brute_force(tmp_path, patch, stride):
    ds = load_pairs(make_dataset(tmp_path, {"b": (30, 41), "a": (23, 37), "c": (16, 16)}))
    assert [im.stem for im in ds.images] == ["a", "b", "c"]
    cands = extract_candidates(ds.images, patch, stride, squares=True)
    rows = []
    for i, im in enumerate(ds.images):  # reference order: image, then y, then x
        h, w = im.vis.shape[:2]
        for y in range(0, h - patch + 1, stride):
            for x in range(0, w - patch + 1, stride):
                rows.append((i, y, x))
    assert list(zip(cands.image_index.tolist(), cands.y.tolist(), cands.x.tolist())) == rows
    vis, ir = cands.pixels(np.arange(len(cands))[::-1])  # any order
    for j, (i, y, x) in enumerate(rows[::-1]):
        im = ds.images[i]
        p = im.vis[y:y + patch, x:x + patch]
        assert np.array_equal(vis[j], p) and np.array_equal(ir[j], im.load_ir()[y:y + patch, x:x + patch])
        means = [np.mean(p[:, :, c]) for c in range(3)]
        assert cands.means[len(rows) - 1 - j].tolist() == means  # bit-identical to np.mean per patch
        assert np.allclose(cands.stds[len(rows) - 1 - j], [np.std(p[:, :, c]) for c in range(3)], atol=1e-9)
    assert cands.ids([0])[0] == f"{tmp_path.name}/a:0:0"


def test_channel_histograms_match_brute_force(tmp_path):
    ds = load_pairs(make_dataset(tmp_path, {"a": (20, 24), "b": (24, 20)}))
    cands = extract_candidates(ds.images, 8, 6)
    h = channel_histograms(cands, 32)
    vis, _ = cands.pixels(np.arange(len(cands)))
    for j in range(len(cands)):
        for c in range(3):
            ref = np.bincount(vis[j, :, :, c].ravel() // 8, minlength=32) / 64
            assert np.array_equal(h[j, c], ref)
    with pytest.raises(ValueError, match="divide 256"):
        channel_histograms(cands, 30)


@pytest.mark.parametrize("patch,stride", [(8, 8), (8, 11), (8, 3)])
def test_coverage_histogram_counts_every_patch_pixel(tmp_path, patch, stride):
    ds = load_pairs(make_dataset(tmp_path, {"a": (20, 27), "b": (31, 17)}))
    cands = extract_candidates(ds.images, patch, stride)
    vis, _ = cands.pixels(np.arange(len(cands)))
    ref = np.stack([np.bincount(vis[..., c].ravel(), minlength=256) for c in range(3)])
    assert np.array_equal(coverage_histogram(cands), ref)


def test_gray_visible_flagged_and_replicated(tmp_path):
    ds = load_pairs(make_dataset(tmp_path, {"a": (16, 16), "g": (16, 16)}, gray=("g",)))
    a, g = ds.images
    assert not a.gray and g.gray and g.vis.shape == (16, 16, 3)
    assert np.array_equal(g.vis[:, :, 0], g.vis[:, :, 2])


def test_split_and_exclude_lists(tmp_path):
    root = make_dataset(tmp_path / "d", {"a": (16, 16), "b": (16, 16), "c": (16, 16)})
    manifest = tmp_path / "train.txt"
    manifest.write_text("# training split\na.png\n\nc   # trailing comment\n")
    assert read_stem_list(manifest) == ["a", "c"]
    assert [im.stem for im in load_pairs(root, include=["a", "c"]).images] == ["a", "c"]
    assert [im.stem for im in load_pairs(root, exclude=["a"]).images] == ["b", "c"]
    with pytest.raises(PairingError, match="split manifest names images without an ir/vi pair: zz"):
        load_pairs(root, include=["a", "zz"])
    with pytest.raises(PairingError, match="no image pairs"):
        load_pairs(root, exclude=["a", "b", "c"])
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="names no images"):
        read_stem_list(empty)
    with pytest.raises(FileNotFoundError, match="list of image names not found"):
        read_stem_list(tmp_path / "nope.txt")


def test_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_pairs(tmp_path / "missing")
    (tmp_path / "noir" / "vi").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no ir/ sub-folder"):
        load_pairs(tmp_path / "noir")
    (tmp_path / "empty" / "vi").mkdir(parents=True)
    (tmp_path / "empty" / "ir").mkdir(parents=True)
    with pytest.raises(PairingError, match="no images found"):
        load_pairs(tmp_path / "empty")
    root = make_dataset(tmp_path / "unpaired", {"a": (16, 16), "b": (16, 16)})
    (root / "ir" / "b.png").unlink()
    with pytest.raises(PairingError, match=r"unpaired files: b: no ir partner for vi/b.png"):
        load_pairs(root)
    with pytest.warns(UserWarning, match="skipping unpaired files: b"):
        ds = load_pairs(root, skip_unpaired=True)
    assert [im.stem for im in ds.images] == ["a"] and ds.skipped
    bad = make_dataset(tmp_path / "size", {"a": (16, 16)})
    write_image(bad / "ir" / "a.png", np.zeros((16, 18), np.uint8), overwrite=True)
    with pytest.raises(ImageError, match="size mismatch"):
        load_pairs(bad)
    assert load_pairs(bad, lazy_ir=True).images[0].ir is None  # read only when used
    with pytest.raises(ImageError, match="size mismatch"):
        load_pairs(bad, lazy_ir=True).images[0].load_ir()
    small = load_pairs(make_dataset(tmp_path / "small", {"a": (16, 40)}))
    with pytest.raises(ValueError, match=r"a.png: patch 32x32 is larger than the image \(40x16, W x H\)"):
        extract_candidates(small.images, 32, 8)
    corrupt = make_dataset(tmp_path / "corrupt", {"a": (16, 16)})
    (corrupt / "vi" / "a.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="a.png"):
        load_pairs(corrupt)
