"""File-level corruption suite (``crossfuse.degrade``) and ``crossfuse corrupt``."""

from __future__ import annotations

import hashlib
import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import REPO, require_data

from crossfuse.cli import main
from crossfuse.degrade import SWEEPS, TNO_C, degrade_pair, get_degradation, list_degradations, seed_for
from crossfuse.io import read_image


def _scene(seed: int = 0, h: int = 96, w: int = 128, colour: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3) if colour else (h, w)), (0, 0), 1.5)
    return np.clip(40 + 0.7 * (base - base.min()) / np.ptp(base) * 255, 0, 255)


def test_unknown_condition_lists_names():
    with pytest.raises(KeyError, match="valid conditions: .*vis_low_light.*misreg_elastic"):
        get_degradation("fog")


@pytest.mark.parametrize("name", list_degradations())
def test_severity_zero_is_identity_and_calls_are_deterministic(name):
    ir, vi = _scene(1), _scene(2, colour=True)
    out_ir, out_vi = degrade_pair(name, 0, ir, vi, "x")
    assert np.array_equal(out_ir, np.round(ir)) and np.array_equal(out_vi, np.round(vi))
    a, b = degrade_pair(name, 2, ir, vi, "x"), degrade_pair(name, 2, ir, vi, "x")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].dtype == np.uint8 and a[1].shape == vi.shape


def _damage(clean: np.ndarray, out: np.ndarray) -> float:
    """Grey-level error, loss of correlation and change of contrast (log std ratio): a dark image can stop getting
    darker, but not less noisy; a hazy one stops correlating, but keeps losing contrast."""
    if np.array_equal(clean, out):
        return 0.0
    corr = np.corrcoef(clean.ravel(), out.ravel())[0, 1] if out.std() > 0 else 0.0
    contrast = abs(np.log(max(out.std(), 1e-3) / clean.std()))
    return float(np.abs(out - clean).mean() / 255.0 + 1.0 - corr + contrast)


def _textured(seed: int, h: int = 192, w: int = 256) -> np.ndarray:
    """Fine and coarse structure, so that blur and misregistration keep hurting as they grow."""
    rng = np.random.default_rng(seed)
    fine, mid, coarse = (cv2.GaussianBlur(rng.standard_normal((h, w)), (0, 0), s) for s in (1.5, 5.0, 16.0))
    x = fine / fine.std() + mid / mid.std() + 2.0 * coarse / coarse.std()
    return 128.0 + 30.0 * x / x.std()


@pytest.mark.parametrize("name", [n for n in list_degradations() if n not in SWEEPS])
def test_strength_grows_with_severity(name):
    ir, vi = _textured(3), _textured(4)
    err = []
    for s in (1, 3, 5):
        cir, cvi = degrade_pair(name, s, ir, vi, "x")
        err.append(_damage(np.round(ir), cir.astype(float)) + _damage(np.round(vi), cvi.astype(float)))
    assert err[0] > 0 and err[0] < err[1] < err[2], err


def test_random_draws_depend_on_the_file():
    ir, vi = _scene(5), _scene(6)
    a = degrade_pair("vis_noise", 1, ir, vi, "a")[1]
    b = degrade_pair("vis_noise", 1, ir, vi, "b")[1]
    assert not np.array_equal(a, b)


def test_sweeps_use_physical_units():
    ir = np.zeros((40, 60))
    ir[:, 30:] = 200.0
    shifted = degrade_pair("shift_px", 3, ir, ir.copy(), "x")[0]
    assert np.array_equal(shifted[:, 33:], ir[:, 33:].astype(np.uint8)) and shifted[0, 32] == 0


def test_corrupt_reproduces_tno_c_bytes(tmp_path):
    """Four TNO pairs through ``crossfuse corrupt``: every file matches make_corrupted.py's sha256 list."""
    tno = require_data("TNO")
    sums = REPO.parent / "shared" / "bench" / "TNO-C.sha256"
    if not sums.is_file():
        require_data("..", "bench", "TNO-C.sha256")
    data = tmp_path / "data"
    stems = ["01", "17", "30", "42"]
    for sub in ("ir", "vi"):
        (data / sub).mkdir(parents=True)
        for s in stems:
            shutil.copy(tno / sub / f"{s}.png", data / sub / f"{s}.png")
    out = tmp_path / "tree"
    assert main(["corrupt", "--data", str(data), "--out", str(out), "--quiet"]) == 0
    want = {p.strip(): h for h, p in (line.split(None, 1) for line in sums.read_text().splitlines())}
    checked = 0
    for cond in TNO_C:
        for sev in (1, 2):
            for sub in ("ir", "vi"):
                for s in stems:
                    rel = f"{cond}@{sev}/{sub}/{s}.png"
                    assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == want[rel], rel
                    checked += 1
    assert checked == 8 * 2 * 2 * 4


def test_corrupt_cli_layout_manifest_and_colour(tmp_path):
    data = tmp_path / "data"
    for sub, img in (("ir", _scene(7)), ("vi", _scene(8, colour=True))):
        (data / sub).mkdir(parents=True)
        cv2.imwrite(str(data / sub / "p1.png"), img.astype(np.uint8))
    out = tmp_path / "tree"
    argv = ["corrupt", "--data", str(data), "--out", str(out), "--conditions", "vis_rain,ir_stripe",
            "--severities", "1,3", "--quiet"]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["conditions"] == ["vis_rain@1", "vis_rain@3", "ir_stripe@1", "ir_stripe@3"]
    assert "column offsets" in manifest["scales"]["ir_stripe"]
    for tag in manifest["conditions"]:
        assert read_image(out / tag / "ir" / "p1.png").ndim == 2
        assert read_image(out / tag / "vi" / "p1.png").shape == (96, 128, 3)
    # the visible stays unchanged under an IR-only condition (lossless PNG, channel order kept)
    assert np.array_equal(read_image(out / "ir_stripe@3" / "vi" / "p1.png"), read_image(data / "vi" / "p1.png"))
    stamp = (out / "vis_rain@1" / "vi" / "p1.png").stat().st_mtime_ns
    assert main(argv) == 0 and (out / "vis_rain@1" / "vi" / "p1.png").stat().st_mtime_ns == stamp  # kept
    assert main(["corrupt", "--data", str(data), "--out", str(out), "--conditions", "nope", "--quiet"]) == 1
    assert main(["corrupt", "--data", str(data), "--out", str(out), "--conditions", "shift_px", "--severities", "4",
                 "--quiet"]) == 0  # a second call adds to the tree and its manifest
    assert json.loads((out / "manifest.json").read_text())["conditions"][-2:] == ["ir_stripe@3", "shift_px@4"]


def test_held_out_corruptions_at_file_level_are_the_tensor_ones():
    import torch

    from crossfuse.corruptions import corrupt

    ir, vi = _textured(7), _textured(8)
    cir, cvi = degrade_pair("column_fpn", 1.5, ir, vi, "x")
    assert np.array_equal(cvi, np.round(vi).astype(np.uint8))  # the visible is untouched
    col_spread = np.std((cir.astype(float) - np.round(ir)).mean(axis=0))
    assert col_spread > 1.0  # a per-column pattern (offsets ~ N(0, 0.03 * 255))
    # the same seed path through the tensor corruption gives the same IR
    rng = np.random.Generator(np.random.PCG64(seed_for("column_fpn", 1.5, "x")))
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    ref = corrupt("column_fpn", torch.from_numpy(ir / 255.0)[None, None], 1.5, g, "ir")[0, 0].numpy() * 255
    assert np.array_equal(cir, np.clip(np.round(ref), 0, 255).astype(np.uint8))
    nir, nvi = degrade_pair("correlated_noise", 1.5, ir, _scene(9, h=192, w=256, colour=True), "x")
    assert nvi.shape == (192, 256, 3) and not np.array_equal(nir, np.round(ir).astype(np.uint8))
