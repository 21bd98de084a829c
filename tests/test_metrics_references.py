"""crossfuse metrics against independent implementations (scikit-image, and the plain CDDFuse-style reference in
``benchmarks/reference_cddfuse_evaluator.py`` built on SciPy ``convolve2d``)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from crossfuse.io import read_image
from crossfuse.metrics import compute_metrics, core, get_profile, structural
from tests.conftest import require_data

skm = pytest.importorskip("skimage.metrics")
skmeasure = pytest.importorskip("skimage.measure")

REPO = Path(__file__).resolve().parents[1]


def _reference_module():
    spec = importlib.util.spec_from_file_location("ref_cddfuse", REPO / "benchmarks" / "reference_cddfuse_evaluator.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def triplet():
    root = require_data("MSRS")
    ir = read_image(root / "ir" / "00003N.png")
    vi = read_image(root / "vi" / "00003N.png")
    (_, a, b), = get_profile("canonical").prepare(ir, vi, ir)
    a, b = a[:240, :320], b[:240, :320]
    return np.round(0.6 * a + 0.4 * b), a, b


def test_canonical_ssim_is_scikit_image_gaussian_ssim(triplet):
    f, a, _ = triplet
    ref = skm.structural_similarity(f, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255)
    assert structural.ssim_pair(f, a) == pytest.approx(ref, abs=1e-10)


def test_cddfuse_ssim_is_scikit_image_defaults_with_data_range_2_on_float32(triplet):
    f, a, b = triplet
    f32, a32, b32 = (x.astype(np.float32) for x in triplet)
    ref = skm.structural_similarity(f32, a32, data_range=2) + skm.structural_similarity(f32, b32, data_range=2)
    got = compute_metrics(a, b, f, "cddfuse", ["SSIM"])["SSIM"]
    assert got == pytest.approx(ref, rel=1e-12)


def test_mse_psnr_entropy_against_scikit_image(triplet):
    f, a, _ = triplet
    assert core.mse(f, a, a) == pytest.approx(skm.mean_squared_error(a, f), rel=1e-12)
    assert core.psnr(f, a, a) == pytest.approx(skm.peak_signal_noise_ratio(a, f, data_range=255), rel=1e-12)
    assert core.entropy(f) == pytest.approx(skmeasure.shannon_entropy(f, base=2), rel=1e-12)


def test_fast_metrics_equal_the_plain_convolve2d_reference(triplet):
    ref = _reference_module()
    f, a, b = triplet
    f32, a32, b32 = (x.astype(np.float32) for x in triplet)
    fast = compute_metrics(a, b, f, "cddfuse", ["EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "CC", "PSNR",
                                                  "MSE"])
    for name, value in fast.items():
        assert value == pytest.approx(ref.evaluate(name, f32, a32, b32), rel=1e-6), name


def test_canonical_mi_is_cddfuse_mi_in_bits(triplet):
    f, a, b = triplet
    bits = compute_metrics(a, b, f, "canonical", ["MI"])["MI"]
    nats = compute_metrics(a, b, f, "cddfuse", ["MI"])["MI"]
    assert bits * math.log(2) == pytest.approx(nats, rel=1e-12)


def test_canonical_gray_metrics_agree_with_the_independent_vifb_port():
    """On gray images the VIFB toolkit's Qabf, Qcb, Qcv, SSIM, CE and EI are the canonical definitions; the ``vifb``
    profile's Qabf and SSIM are a separate port (other code paths), so agreement checks both. (Its CE and EI call
    ``core`` per channel, so those two pairs only pin that wiring; ``core``'s CE and EI are checked against the
    toolkit's own numbers by the vifb calibration in ``test_metrics_vifb.py``. Qcb/Qcv: the canonical ones wrap
    the port.)"""
    vq = pytest.importorskip("crossfuse.metrics.vifb_quality")
    vs = pytest.importorskip("crossfuse.metrics.vifb_stats")
    from crossfuse.metrics import perceptual
    from crossfuse.metrics.canonical import to_gray255

    root = require_data("VIFB_calib")
    a, b = (to_gray255(read_image(root / sub / "fight.jpg")) for sub in ("ir", "vi"))
    f = to_gray255(read_image(root / "fused" / "CNN" / "fight.jpg"))
    pairs = [
        (structural.qabf(f, a, b), vq.qabf(f, a, b)),
        (structural.ssim(f, a, b), vq.ssim(f, a, b)),
        (perceptual.qcb(f, a, b), vq.qcb(f, a, b)),
        (perceptual.qcv(f, a, b), vq.qcv(f, a, b)),
        (core.cross_entropy(f, a, b), vs.cross_entropy(f, a, b)),
        (core.edge_intensity(f), vs.edge_intensity(f)),
    ]
    for ours, theirs in pairs:
        assert ours == pytest.approx(theirs, rel=1e-8)


def test_nabf_equals_a_plain_convolve2d_computation(triplet):
    """Kumar's modified Nabf written out directly (SciPy convolve2d on a mirrored image, explicit masks)."""
    from scipy.signal import convolve2d

    f, a, b = triplet
    kv = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8.0

    def edges(x):
        xe = np.pad(x, 1, mode="reflect")
        gv, gh = convolve2d(xe, kv, "valid"), convolve2d(xe, kv.T, "valid")
        with np.errstate(divide="ignore", invalid="ignore"):
            ang = np.where((gv == 0) & (gh == 0), 0.0, np.arctan(gv / gh))
        return np.hypot(gv, gh), ang

    (ga, aa), (gb, ab), (gf, af) = edges(a), edges(b), edges(f)

    def q(g, ang):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where((g == 0) | (gf == 0), 0.0, np.where(g > gf, gf / g, g / gf))
        o = np.abs(np.abs(ang - af) - np.pi / 2) * 2 / np.pi
        return np.sqrt(0.9999 / (1 + np.exp(-19 * (r - 0.5))) * 0.9995 / (1 + np.exp(-22 * (o - 0.5))))

    wa, wb = np.where(ga >= 2, ga ** 1.5, 0), np.where(gb >= 2, gb ** 1.5, 0)
    na = (gf > ga) & (gf > gb)
    expected = np.sum(na * ((1 - q(ga, aa)) * wa + (1 - q(gb, ab)) * wb)) / np.sum(wa + wb)
    assert structural.nabf(f, a, b) == pytest.approx(expected, rel=1e-10)
    assert 0.0 < expected < 0.5
