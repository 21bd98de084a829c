"""Metric invariants and closed forms (METRICS.md): extremes for identical inputs, symmetry, argument order,
constant images, known values on constructed images."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest

from crossfuse.metrics import compute_metrics, core, list_metrics, perceptual, structural

RNG = np.random.default_rng(7)


def _scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random scene with edges, rounded to 8-bit levels (float64)."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w)) * 255.0, (0, 0), 3.0)
    x = (x - x.min()) / (x.max() - x.min()) * 200.0 + 20.0
    x[h // 3: h // 2, w // 4: w // 2] += 30.0
    return np.round(np.clip(x, 0, 255))


A, B = _scene(seed=1), _scene(seed=2)
F = np.round((A + B) / 2.0)


# ----------------------------------------------------------------------------------------- closed forms


def test_entropy_sd_of_two_level_images():
    x = np.zeros((20, 30))
    x[:, 15:] = 255.0
    assert core.entropy(x) == pytest.approx(1.0, abs=1e-12)
    assert core.std(x) == pytest.approx(127.5)
    q = np.tile(np.repeat([0.0, 50.0, 100.0, 150.0], 5), (8, 1))
    assert core.entropy(q) == pytest.approx(2.0, abs=1e-12)


def test_spatial_frequency_and_average_gradient_on_stripes_and_ramps():
    stripes = np.tile([0.0, 10.0], (12, 8))  # columns alternate 0 / 10
    assert core.spatial_frequency(stripes) == pytest.approx(10.0)  # RF^2 = 100, CF^2 = 0
    ramp = np.tile(np.arange(16, dtype=np.float64) * 3.0, (9, 1))
    assert core.average_gradient(ramp) == pytest.approx(3.0 / math.sqrt(2.0))


def test_error_metrics_closed_forms():
    a = np.full((10, 10), 100.0)
    b = np.full((10, 10), 110.0)
    f = np.full((10, 10), 104.0)
    assert core.mse(f, a, b) == pytest.approx((16 + 36) / 2)
    assert core.rmse(f, a, b) == pytest.approx(math.sqrt(26))
    assert core.psnr(f, a, b) == pytest.approx(10 * math.log10(255 ** 2 / 26))
    assert core.psnr(f, a, b, peak=None) == pytest.approx(10 * math.log10(104 ** 2 / 26))


def test_correlations_of_affine_copies():
    assert core.cc(2 * A + 3, A, A) == pytest.approx(1.0)
    assert core.cc(255 - A, A, A) == pytest.approx(-1.0)
    # SCD: F - B = A exactly -> corr(F - B, A) = 1, and likewise for B
    assert core.scd(A + B, A, B) == pytest.approx(2.0)


def test_mutual_information_of_an_image_with_itself_is_its_entropy():
    assert core.mutual_information_pair(A, A) == pytest.approx(core.entropy(A), abs=1e-12)
    assert core.mutual_information(A, A, A, base=math.e) == pytest.approx(2 * core.entropy(A) * math.log(2))
    # independent estimate: H(X) + H(Y) - H(X, Y) from numpy histograms
    joint, _, _ = np.histogram2d(F.ravel(), A.ravel(), bins=256, range=[[0, 256], [0, 256]])
    p = joint / joint.sum()
    h = lambda q: -np.sum(q[q > 0] * np.log2(q[q > 0]))  # noqa: E731
    assert core.mutual_information_pair(F, A) == pytest.approx(h(p.sum(0)) + h(p.sum(1)) - h(p), abs=1e-10)


def test_mutual_information_labels_non_integer_values_like_scikit_learn():
    x = np.array([[0.5, 0.5], [1.5, 2.5]])
    y = np.array([[7.0, 7.0], [3.0, 3.0]])
    # distinct values of x: 3 labels; joint = {(0.5,7):2, (1.5,3):1, (2.5,3):1} -> MI = H(Y) = ln 2 nats
    assert core.mutual_information_pair(x, y, base=math.e) == pytest.approx(math.log(2))


def test_identical_images_give_the_extremes():
    assert structural.ssim_pair(A, A) == pytest.approx(1.0)
    assert structural.ssim(A, A, A) == pytest.approx(2.0)
    assert structural.ms_ssim(A, A, A) == pytest.approx(2.0)
    assert structural.ssim_uniform_pair(A, A) == pytest.approx(1.0)
    assert structural.vif_pair(A, A) == pytest.approx(1.0, abs=1e-6)
    assert core.psnr(A, A, A) == math.inf
    assert structural.nabf(A, A, A) == 0.0
    # Qabf of a perfect copy: every strong edge scores Tg * Ta / (1 + exp(ka (1 - Da))) (strength term ~ Tg)
    assert structural.qabf(A, A, A) == pytest.approx(0.9994 * 0.9879 / (1 + math.exp(-22 * 0.2)), abs=2e-3)
    assert perceptual.qcb(A, A, A) == pytest.approx(1.0)
    assert perceptual.qcv(A, A, A) == pytest.approx(0.0, abs=1e-9)


def test_degradations_lower_the_scores():
    blurred = np.round(cv2.GaussianBlur(A, (0, 0), 2.0))
    assert structural.ssim_pair(blurred, A) < 0.99
    assert structural.vif_pair(A, blurred) < 0.9
    assert structural.qabf(blurred, A, A) < structural.qabf(A, A, A) - 0.1
    assert perceptual.qcv(blurred, A, A) > perceptual.qcv(A, A, A)


def test_vif_order_matters_and_contrast_enhancement_exceeds_one():
    enhanced = np.clip(np.round((A - A.mean()) * 1.3 + A.mean()), 0, 255)
    assert structural.vif_pair(A, enhanced) > 1.0  # VIF's known property: contrast gain > 1
    assert structural.vif_pair(enhanced, A) < 1.0
    blurred = np.round(cv2.GaussianBlur(A, (0, 0), 1.5))
    assert structural.vif(blurred, A, B) != pytest.approx(structural.vif(A, blurred, B))


@pytest.mark.parametrize("profile", ["canonical", "cddfuse"])
def test_two_source_metrics_are_symmetric_in_the_sources(profile):
    names = list_metrics(profile)
    ab = compute_metrics(A, B, F, profile, names)
    ba = compute_metrics(B, A, F, profile, names)
    for m in names:
        assert ab[m] == pytest.approx(ba[m], rel=1e-9, abs=1e-12), m


@pytest.mark.parametrize("profile", ["canonical", "cddfuse"])
def test_constant_images_give_defined_values_without_warnings(profile):
    names = list_metrics(profile)
    c = np.full((40, 50), 90, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        all_const = compute_metrics(c, c, c, profile, names)
        const_fused = compute_metrics(A.astype(np.uint8)[:40, :50], B.astype(np.uint8)[:40, :50], c, profile, names)
        black = compute_metrics(A.astype(np.uint8)[:40, :50], c, np.zeros_like(c), profile, names)
    for vals in (all_const, const_fused, black):
        assert not any(math.isnan(v) for v in vals.values()), vals
    assert all_const["EN"] == all_const["SD"] == all_const["SF"] == all_const["AG"] == 0.0
    assert all_const["MI"] == 0.0 and all_const["CC"] == 0.0 and all_const["SCD"] == 0.0
    assert all_const["VIF"] == 2.0  # 0/0 per source -> 1 (CDDFuse's convention)
    assert all_const["SSIM"] == pytest.approx(2.0)
    assert all_const["PSNR"] == math.inf
    assert const_fused["CC"] == 0.0 and const_fused["EN"] == 0.0
    expected_black = -math.inf if profile == "cddfuse" else pytest.approx(10 * math.log10(255 ** 2 / black["MSE"]))
    assert black["PSNR"] == expected_black


def test_sizes_and_shapes_are_checked():
    with pytest.raises(ValueError, match="size mismatch"):
        core.mse(A, A[:-1], A)
    with pytest.raises(ValueError, match="2-D"):
        core.entropy(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="at least 11x11"):
        structural.ssim(np.zeros((8, 40)), np.zeros((8, 40)), np.zeros((8, 40)))


def test_small_images_still_score():
    """VIF/MS-SSIM drop scales that no longer fit instead of failing; 24 x 24 is enough for everything."""
    a, b = A[:24, :24], B[:24, :24]
    vals = compute_metrics(a, b, np.round((a + b) / 2), "canonical", list_metrics("canonical"))
    assert all(math.isfinite(v) for v in vals.values()), vals
