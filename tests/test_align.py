"""crossfuse.align: distances, tie order, K, gamma solvers, output files, and the issue's claims on real data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, require_data

from crossfuse import align as AL
from crossfuse.io import luma_u8, read_stem_list, rgb_to_ycrcb, write_image
from crossfuse.patches import extract_candidates, load_pairs

sys.path.insert(0, str(REPO / "benchmarks"))
import reference_align as REF  # noqa: E402  (the slow re-implementation of the reference script)


def make_dataset(root: Path, sizes: dict[str, tuple[int, int]], lo: int = 0, hi: int = 256, seed: int = 0,
                 gray: bool = False, ir_ext: str = ".png") -> Path:
    """A synthetic paired dataset: visible values uniform in ``[lo, hi)`` (gray = 3 equal channels), random IR."""
    rng = np.random.default_rng(seed)
    for stem, (h, w) in sizes.items():
        vis = rng.integers(lo, hi, (h, w, 3), dtype=np.uint8)
        if gray:
            vis[:, :, 1] = vis[:, :, 2] = vis[:, :, 0]
        write_image(root / "vi" / f"{stem}.png", vis)
        write_image(root / "ir" / f"{stem}{ir_ext}", rng.integers(0, 256, (h, w), dtype=np.uint8))
    return root


@pytest.fixture
def toy(tmp_path):
    target = make_dataset(tmp_path / "T", {f"t{i}": (40, 48) for i in range(3)}, 120, 230, seed=1)
    ext1 = make_dataset(tmp_path / "E1", {"a": (48, 64), "b": (40, 40)}, 0, 140, seed=2)
    ext2 = make_dataset(tmp_path / "E2", {"c": (32, 80)}, 30, 200, seed=3)
    return target, ext1, ext2


def test_distances_match_the_reference_formulas(toy):
    target, ext1, ext2 = toy
    tc = extract_candidates(load_pairs(target).images, 8, 8, squares=True)
    ec = extract_candidates(load_pairs(ext1).images + load_pairs(ext2).images, 8, 6, squares=True)
    tv, _ = tc.pixels(np.arange(len(tc)))
    ev, _ = ec.pixels(np.arange(len(ec)))
    bgr_t = [(None, p[:, :, ::-1]) for p in tv]
    mu_bgr = REF.mean_of_patch_means(bgr_t)
    assert AL.target_means(tc).tolist() == mu_bgr[::-1]
    ref_d = REF.patch_distances([(None, p[:, :, ::-1]) for p in ev], mu_bgr)
    assert AL.distances(ec, tc, "mean").tolist() == ref_d  # bit-identical
    sigma = np.mean([[np.std(p[:, :, c]) for c in range(3)] for p in tv], axis=0)
    ms = [sum(abs(np.mean(p[:, :, c]) - m) + abs(np.std(p[:, :, c]) - s) for c, m, s in
              zip(range(3), mu_bgr[::-1], sigma)) for p in ev]
    assert np.allclose(AL.distances(ec, tc, "meanstd"), ms, atol=1e-9)
    ht = np.mean([[np.bincount(p[:, :, c].ravel() // 8, minlength=32) / 64 for c in range(3)] for p in tv], axis=0)
    hd = [0.5 * sum(np.abs(np.bincount(p[:, :, c].ravel() // 8, minlength=32) / 64 - ht[c]).sum() for c in range(3))
          for p in ev]
    assert np.allclose(AL.distances(ec, tc, "hist"), hd, atol=1e-12)
    with pytest.raises(KeyError, match="valid names: mean, meanstd, hist"):
        AL.distances(ec, tc, "emd")


def test_ties_keep_candidate_order(tmp_path):
    # two external datasets with the same picture: every distance appears twice -> dataset order decides
    e1 = make_dataset(tmp_path / "E1", {"x": (16, 32), "y": (16, 32)}, seed=5)
    e2 = make_dataset(tmp_path / "E2", {"x": (16, 32)}, seed=5)
    t = make_dataset(tmp_path / "T", {"t": (16, 16)}, seed=6)
    res = AL.align(t, [e1, e2], patch=8, stride=8, k=16)
    ref = REF.reference_align(str(t), [str(e1), str(e2)], 8, 8, 16, solve=False)
    assert res.ids == ref["ids"]
    d = AL.distances(res.external, res.target)
    assert res.selection.tolist() == sorted(range(len(d)), key=lambda i: d[i])[:16]
    pos = {i: n for n, i in enumerate(res.ids)}
    for pid in res.ids:
        if pid.startswith("E2/x:"):
            assert pos["E1/" + pid[3:]] < pos[pid]  # identical patch: the earlier dataset wins the tie


def test_resolve_k():
    counts = {"A": 30, "B": 10}
    assert AL.resolve_k(7, None, 40, counts) == 7
    assert AL.resolve_k(None, 0.25, 40, counts) == 10
    assert AL.resolve_k(None, 0.001, 40, counts) == 1
    with pytest.raises(ValueError, match=r"K=41 is larger than the 40 candidate patches \(A: 30, B: 10\)"):
        AL.resolve_k(41, None, 40, counts)
    with pytest.raises(ValueError, match="not both"):
        AL.resolve_k(5, 0.5, 40, counts)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="positive"):
            AL.resolve_k(bad, None, 40, counts)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        AL.resolve_k(None, 1.5, 40, counts)


def test_gamma_lut_and_apply():
    assert np.array_equal(AL.gamma_lut(1.0), np.arange(256))
    v = 255 * (np.arange(256) / 255) ** (1 / 2.2)
    assert np.array_equal(AL.gamma_lut(2.2), np.round(v).astype(np.uint8))
    assert np.array_equal(AL.gamma_lut(2.2, "truncate"), REF.truncating_lut(2.2))
    assert np.array_equal(AL.gamma_lut(2.2, "truncate"), np.floor(v + 1e-9).astype(np.uint8))
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    g = np.array([0.6, 1.0, 3.0])
    out = AL.apply_gamma(x, g)
    for c in range(3):
        assert np.array_equal(out[..., c], AL.gamma_lut(g[c])[x[..., c]])
    y = np.clip(np.round(rgb_to_ycrcb(x.reshape(-1, 8, 3))[..., 0]), 0, 255).astype(np.uint8).reshape(5, 8, 8)
    assert np.array_equal(luma_u8(x), y)


@pytest.mark.parametrize("seed", range(6))
def test_exact_solver_reaches_half_a_grey_level(seed):
    rng = np.random.default_rng(seed)
    pix = np.clip(rng.normal(rng.uniform(20, 200), rng.uniform(5, 60), 20000), 1, 254).astype(np.uint8)  # unsaturated
    hist = np.bincount(pix, minlength=256)
    reach = AL.gamma_lut(AL.GAMMA_BOUNDS[0])[pix].mean(), AL.gamma_lut(AL.GAMMA_BOUNDS[1])[pix].mean()
    for target in (15.0, 60.3, 128.0, 201.7):
        g, bound = AL.solve_gamma_channel(hist, target)
        achieved = AL.gamma_lut(g)[pix].mean()
        if reach[0] <= target <= reach[1]:
            assert not bound and abs(achieved - target) <= 0.5, (seed, target, g, achieved)
            assert abs(achieved - target) <= 0.05  # far better than the 0.5 promise with this many pixels
        else:  # out of reach of gamma in the bounds: flagged, and the nearer bound is returned
            assert bound and g in AL.GAMMA_BOUNDS and abs(achieved - target) == min(abs(r - target) for r in reach)
    # out of reach: everything dark, target almost white -> the bound binds and says so
    dark = np.bincount(rng.integers(3, 9, 1000), minlength=256)
    g, bound = AL.solve_gamma_channel(dark, 252.0)
    assert bound and g == AL.GAMMA_BOUNDS[1]


def test_quantised_mean_is_monotone_in_gamma():
    hist = np.bincount(np.random.default_rng(1).integers(0, 256, 5000), minlength=256)
    means = [AL._mean_from_hist(hist, AL.gamma_lut(g)) for g in np.geomspace(0.05, 20, 400)]
    assert all(a <= b for a, b in zip(means, means[1:]))


def test_paper_loss_equals_the_reference_objective(toy):
    _, ext1, _ = toy
    ec = extract_candidates(load_pairs(ext1).images, 16, 8)
    vis, _ = ec.pixels(np.arange(len(ec)))
    hist = AL.pixel_histograms(vis)
    mu = np.array([150.3, 140.1, 160.7])
    patches = [(None, p[:, :, ::-1]) for p in vis]
    for g_bgr in ([0.5, 0.5, 0.5], [1.7, 2.3, 0.9]):
        means = REF.mean_of_patch_means(REF.gamma_patches(patches, *g_bgr))
        ref = sum([abs(m - r) for m, r in zip(means, mu[::-1])])
        assert AL.paper_loss(np.array(g_bgr), hist, mu, 16, len(ec)) == ref
    assert AL.paper_loss(np.array([0.5, -1.0, 0.5]), hist, mu, 16, len(ec)) == np.inf


def test_align_result_and_save(toy, tmp_path):
    target, ext1, ext2 = toy
    res = AL.align(target, [ext1, ext2], patch=8, stride=8, k=None, k_fraction=0.5)
    r = res.report
    assert r["k"] == round(0.5 * r["n_candidates"]) == len(res.ids) == res.vis_y.shape[0]
    assert r["candidates_per_dataset"] == {"E1": 48 + 25, "E2": 40}
    assert sum(r["selected_per_dataset"].values()) == r["k"]
    after = res.vis_rgb.reshape(r["k"], -1, 3).mean(axis=1).mean(axis=0)
    assert np.allclose(after, r["selected_means_after"], atol=1e-9)
    assert np.all(np.abs(np.array(r["selected_means_after"]) - r["target_means"]) <= 0.5)
    assert np.array_equal(res.vis_y, luma_u8(res.vis_rgb))
    # IR patches cut at the same places as the visible ones
    ims = {(im.dataset, im.stem): im for im in res.external.images}
    for pid, irp in zip(res.ids[:10], res.ir[:10]):
        ds, rest = pid.split("/")
        stem, x, y = rest.split(":")
        assert np.array_equal(irp, ims[ds, stem].load_ir()[int(y):int(y) + 8, int(x):int(x) + 8])
    out = AL.save_alignment(res, tmp_path / "out")
    z = np.load(out / "patches.npz")
    assert z["vis_y"].dtype == z["ir"].dtype == z["vis_rgb"].dtype == np.uint8
    assert z["vis_y"].shape == z["ir"].shape == (r["k"], 8, 8) and z["vis_rgb"].shape == (r["k"], 8, 8, 3)
    assert z["ids"].tolist() == res.ids
    rep = json.loads((out / "report.json").read_text())
    for key in ("target_means", "external_means_before", "selected_means_before", "selected_means_after", "gamma"):
        assert len(rep[key]) == 3
    assert rep["selected"] == res.ids and rep["n_candidates"] == 113 and rep["k"] == r["k"]
    assert (out / "histograms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="not empty"):
        AL.save_alignment(res, out)
    AL.save_alignment(res, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["histograms.png", "patches.npz", "report.json"]


def test_save_is_all_or_nothing(toy, tmp_path, monkeypatch):
    target, ext1, _ = toy
    res = AL.align(target, ext1, patch=8, stride=8, k=5)

    def boom(*a, **k):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(AL, "plot_histograms", boom)
    with pytest.raises(RuntimeError):
        AL.save_alignment(res, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["E1", "E2", "T"]  # no temporary folder left behind


def test_align_errors(toy, tmp_path):
    target, ext1, _ = toy
    gray = make_dataset(tmp_path / "G", {"g": (32, 32)}, gray=True)
    with pytest.raises(ValueError, match=r"G: no colour images in vi/ \(all 1 are gray\)"):
        AL.align(target, [ext1, gray], patch=8, stride=8, k=5)
    with pytest.raises(ValueError, match=r"K=1000 is larger than the 73 candidate patches \(E1: 73\)"):
        AL.align(target, ext1, patch=8, stride=8, k=1000)
    with pytest.raises(ValueError, match=r"T/vi/t0.png: patch 41x41 is larger than the image \(48x40, W x H\)"):
        AL.align(target, ext1, patch=41, stride=8, k=1)
    with pytest.raises(KeyError, match="valid names"):
        AL.align(target, ext1, patch=8, stride=8, k=5, solver="newton")
    bright = make_dataset(tmp_path / "B", {"b": (16, 16)}, 250, 256)
    dark = make_dataset(tmp_path / "D", {"d": (16, 16)}, 3, 9)
    with pytest.warns(AL.GammaBoundWarning, match="hit the bounds"):
        res = AL.align(bright, dark, patch=8, stride=8, k=4)
    assert res.report["solver_info"]["bound_hit"] == {"R": True, "G": True, "B": True}


def test_real_data_selection_equals_reference_and_gamma_within_half_level():
    """Issue 3's claims with the paper's settings (patch 64, stride 200, K = 1000): RoadScene minus its CDDFuse
    test-50 list as target, LLVIP + MSRS as external (1228 candidates, so K = 1000 is usable)."""
    data = require_data()
    test50 = read_stem_list(data / "RoadScene" / "cddfuse_test50.txt")
    target, ext = data / "RoadScene", [data / "LLVIP", data / "MSRS"]
    ours = AL.align(target, ext, patch=64, stride=200, k=1000, exclude=test50)
    r = ours.report
    assert r["n_target_images"] == 171 and r["n_candidates"] == 1228 and r["k"] == 1000
    ref = REF.reference_align(str(target), [str(e) for e in ext], 64, 200, 1000, exclude=set(test50), solve=False)
    assert ours.ids == ref["ids"]  # the same 1000 patches in the same order
    assert r["target_means"] == ref["target_means"]
    mu = np.array(r["target_means"])
    err_ours = np.abs(np.array(r["selected_means_after"]) - mu)
    assert err_ours.max() <= 0.5
    paper = AL.align(target, ext, patch=64, stride=200, k=1000, exclude=test50, solver="paper")
    assert paper.ids == ours.ids
    err_paper = np.abs(np.array(paper.report["selected_means_after"]) - mu)
    print(f"\nmean error after gamma (R, G, B): exact {err_ours.round(4)}, reference Nelder-Mead {err_paper.round(4)}")
    assert err_ours.max() < err_paper.max()  # on this data the reference solver does worse
    # the fast paper solver is the reference's Nelder-Mead, operation for operation: same gammas, same pixels
    # (checked on the first 60 selected patches to keep the slow reference short)
    sub = ref["top_vis"][:60]
    g_ref = REF.nelder_mead_gamma(sub, ref["target_means"][::-1])[::-1]
    vis_sub = np.stack([p[:, :, ::-1] for _, p in sub])
    g_fast, _ = AL.solve_gamma_paper(AL.pixel_histograms(vis_sub), mu, 64, 60)
    assert np.array_equal(g_fast, np.array(g_ref))
    assert np.array_equal(AL.apply_gamma(vis_sub, g_fast, "truncate"),
                          np.stack([p[:, :, ::-1] for _, p in REF.gamma_patches(sub, *g_ref[::-1])]))
