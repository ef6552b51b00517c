from __future__ import annotations

import math

import numpy as np
import pytest

from edgediff.eval.metrics import PSNR_CAP_DB, frechet_distance, psnr, ssim


@pytest.fixture
def features():
    return np.random.default_rng(0).normal(size=(500, 8)) @ np.random.default_rng(1).normal(size=(8, 8))


def test_fd_of_a_set_with_itself_is_zero(features):
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-9)


def test_fd_of_a_shifted_set_is_the_squared_shift(features):
    shift = np.arange(8, dtype=np.float64)
    assert frechet_distance(features, features + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_fd_of_a_doubled_set_is_trace_of_cov_plus_mean_term(features):
    # cov(2a) = 4S, so Tr(S + 4S - 2 sqrt(4 S S)) = Tr(S); the means differ by mu.
    cov, mu = np.cov(features, rowvar=False), features.mean(axis=0)
    expected = float(np.trace(cov) + mu @ mu)
    assert frechet_distance(features, 2 * features) == pytest.approx(expected, rel=1e-9)


def test_fd_matches_the_definition_through_eigenvalues_of_the_product():
    a = np.random.default_rng(2).normal(size=(400, 3))
    b = np.random.default_rng(3).normal(size=(400, 3)) * [1.0, 2.0, 3.0]
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr sqrt(Sa Sb) is the sum of square roots of the (real, non-negative) eigenvalues of Sa Sb.
    w, v = np.linalg.eig(sa @ sb)
    tr_sqrt = float(np.sqrt(w.real.clip(0)).sum())
    expected = float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * tr_sqrt)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fd_refuses_mismatched_widths():
    with pytest.raises(ValueError, match="one width"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_psnr_of_an_off_by_one_image_is_48_13_db():
    a = np.full((2, 8, 8, 3), 100, np.uint8)
    assert psnr(a, a + 1) == pytest.approx([20 * math.log10(255)] * 2)


def test_psnr_of_identical_images_is_capped():
    a = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    assert psnr(a, a).tolist() == [PSNR_CAP_DB]


def test_ssim_of_an_image_with_itself_is_one():
    a = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx([1.0, 1.0], abs=1e-12)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    a, b = np.full((1, 16, 16, 3), 50, np.uint8), np.full((1, 16, 16, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 50 * 150 + c1) / (50**2 + 150**2 + c1)
    assert ssim(a, b) == pytest.approx([expected], rel=1e-9)


def test_ssim_falls_with_noise_and_is_symmetric():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 32)
    a = np.broadcast_to(ramp[None, :, None, None], (1, 32, 32, 3)).astype(np.uint8)
    slightly = np.clip(a + rng.normal(0, 3, a.shape), 0, 255).astype(np.uint8)
    noisy = np.clip(a + rng.normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(a, slightly)[0] > ssim(a, noisy)[0]
    assert ssim(a, noisy)[0] < 0.5
    assert ssim(a, noisy) == pytest.approx(ssim(noisy, a))
