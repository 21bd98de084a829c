"""Public metric API: registry, compute_metrics input handling, profiles, cheap import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import crossfuse.metrics as M
from crossfuse.metrics import registry

RNG = np.random.default_rng(3)
IR = RNG.integers(0, 256, (48, 64), dtype=np.uint8)
VI = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
FUSED = np.round((IR.astype(np.float64) + VI.mean(axis=2)) / 2).astype(np.uint8)


def test_registry_lists_and_rejects_with_valid_names():
    assert set(M.list_profiles()) == {"canonical", "vifb", "cddfuse"}
    canon = M.list_metrics("canonical")
    for name in ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "Nabf", "SSIM", "MS-SSIM", "CC", "PSNR", "MSE",
                 "RMSE", "CE", "EI", "Qcb", "Qcv"):
        assert name in canon
    assert M.list_metrics("cddfuse") == ["EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "CC", "PSNR",
                                         "MSE"]
    with pytest.raises(KeyError, match="valid profiles: canonical, vifb, cddfuse"):
        M.get_profile("matlab")
    with pytest.raises(KeyError, match="valid metrics: EN, SD"):
        M.get_metric("FMI", "cddfuse")
    spec = M.get_metric("Nabf", "canonical")
    assert spec.needs_sources and not spec.higher_is_better
    assert not M.get_metric("EN").needs_sources


def test_profiles_describe_themselves():
    for name in ("canonical", "cddfuse"):
        prof = M.get_profile(name)
        assert prof.name == name and prof.reference and prof.colour
        assert prof.default_metrics == ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")


def test_missing_profile_module_is_a_key_error(monkeypatch):
    monkeypatch.setitem(registry._PROFILE_MODULES, "ghost", "crossfuse.metrics.ghost_profile_not_here")
    with pytest.raises(KeyError, match="not available"):
        M.get_profile("ghost")


def test_compute_metrics_defaults_names_and_order():
    vals = M.compute_metrics(IR, VI, FUSED)
    assert list(vals) == ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"]
    picked = M.compute_metrics(IR, VI, FUSED, "canonical", "psnr, EN,ms-ssim")
    assert list(picked) == ["PSNR", "EN", "MS-SSIM"]
    with pytest.raises(KeyError, match="unknown metric 'XYZ'"):
        M.compute_metrics(IR, VI, FUSED, "canonical", ["EN", "XYZ"])


def test_compute_metrics_accepts_uint8_uint16_float_gray_and_rgb():
    base = M.compute_metrics(IR, VI, FUSED, "canonical", ["EN", "MI", "SSIM", "PSNR"])
    as16 = M.compute_metrics(IR.astype(np.uint16) * 257, VI.astype(np.uint16) * 257, FUSED.astype(np.uint16) * 257,
                             "canonical", ["EN", "MI", "SSIM", "PSNR"])
    asfloat = M.compute_metrics(IR.astype(np.float32), VI.astype(np.float64), FUSED.astype(np.float64),
                                "canonical", ["EN", "MI", "SSIM", "PSNR"])
    assert as16 == pytest.approx(base) and asfloat == pytest.approx(base)
    # a colour fused image is scored on its BT.601 gray; (H, W, 1) is gray
    rgb_fused = np.repeat(FUSED[:, :, None], 3, axis=2)
    assert M.compute_metrics(IR, VI, rgb_fused, "cddfuse") == pytest.approx(M.compute_metrics(IR, VI, FUSED))
    assert M.compute_metrics(IR[:, :, None], VI, FUSED) == pytest.approx(M.compute_metrics(IR, VI, FUSED))


def test_compute_metrics_rejects_bad_arrays_with_readable_errors():
    with pytest.raises(ValueError, match=r"size mismatch: infrared 64x48, visible 63x48"):
        M.compute_metrics(IR, VI[:, :-1], FUSED)
    with pytest.raises(ValueError, match="fused image must be"):
        M.compute_metrics(IR, VI, np.zeros((48, 64, 2)))
    bad = FUSED.astype(np.float64)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.compute_metrics(IR, VI, bad)


def test_cddfuse_reads_16_bit_as_opencv_does():
    """cv2.imread without flags reduces 16-bit data with a shift by 8 bits; the cddfuse profile does the same."""
    x16 = (IR.astype(np.uint16) << 8) + 200  # low byte must be dropped, not rounded
    (f, a, _), = M.get_profile("cddfuse").prepare(x16, VI, x16)
    assert np.array_equal(a, IR.astype(np.float64)) and np.array_equal(f, a)


def test_import_is_cheap():
    code = "import sys, crossfuse.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("profile", ["cddfuse", "canonical", "vifb"])
def test_values_outside_0_255_are_refused_naming_the_range(profile):
    # before: cddfuse tried to allocate ~50 GiB of histogram, canonical returned EN = SD = SF = MI = 0 silently
    big = RNG.uniform(0, 1e6, (48, 64))
    with pytest.raises(ValueError, match=r"fused image has values from [0-9.e+]+ to [0-9.e+]+; metrics take uint8, "
                                         r"uint16 or float images on the 0-255 scale"):
        M.compute_metrics(IR, VI, big, profile=profile, metrics=["EN", "MI"] if profile != "vifb" else ["EN"])
    with pytest.raises(ValueError, match="infrared image has values from -5 to"):
        M.compute_metrics(IR.astype(np.float32) - 5, VI, FUSED, profile=profile)
    with pytest.raises(ValueError, match="visible image has values from 0 to 70000"):
        M.compute_metrics(IR, np.full((48, 64), 70000, np.int32) * (np.arange(64) > 0), FUSED, profile=profile)
    ok = M.compute_metrics(IR, VI, FUSED.astype(np.float64) + 0.4, profile=profile)  # rounding slack is fine
    assert all(np.isfinite(v) for v in ok.values())


def test_every_profile_states_its_conventions_as_data():
    cdd = registry.conventions("cddfuse")
    assert any("SSIM, VIF and MI are sums over the two sources" in c for c in cdd)
    assert any("population standard deviation" in c and "one image shows std 0" in c for c in cdd)
    for name in M.list_profiles():
        notes = registry.conventions(name)
        assert len(notes) >= 2 and registry.SUMMARY_CONVENTIONS[0] in notes
        assert any("sums over the two sources" in c for c in notes)
