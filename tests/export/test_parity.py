from __future__ import annotations

import numpy as np

from edgediff.export.parity import compare, tolerance_for


def test_identical_outputs_have_zero_error_and_unit_cosine() -> None:
    x = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    report = compare(x, x.copy())
    assert report.max_abs_err == 0.0 and report.rel_l2_err == 0.0
    assert abs(report.cosine - 1.0) < 1e-12 and report.finite


def test_nan_anywhere_fails_every_precision() -> None:
    x = np.ones((4, 4), np.float32)
    y = x.copy()
    y[1, 2] = np.nan
    report = compare(x, y)
    assert not report.finite
    assert not tolerance_for("denoiser", "fp32").passes(report)
    assert not tolerance_for("denoiser", "fp16").passes(report)


def test_fp32_tolerance_is_1e_4_absolute_and_3e_4_for_the_vae() -> None:
    x = np.zeros((100,), np.float32) + 10.0  # large values: relative error alone would pass
    y = x.copy()
    y[0] += 2e-4
    report = compare(x, y)
    assert report.max_abs_err > 1e-4
    assert tolerance_for("vae_decoder", "fp32").passes(report)
    z = x.copy()
    z[:50] += 5e-3  # rel_l2 = 3.5e-4, max_abs 5e-3: fails both bounds
    assert not tolerance_for("denoiser", "fp32").passes(compare(x, z))


def test_shape_mismatch_is_a_failure() -> None:
    assert not compare(np.zeros((2, 3)), np.zeros((3, 2))).finite


def test_a_cached_denoisers_features_get_the_vae_bound_and_its_noise_prediction_does_not() -> None:
    from edgediff.cache import CachePlan
    from edgediff.export.parity import CACHED_FEATURES

    assert CACHED_FEATURES == CachePlan.feature  # the name the build compares outputs by
    x = np.ones((100,), np.float32)
    y = x.copy()
    y[:50] += 2e-4  # max abs 2e-4, rel L2 1.4e-4: over fp32's 1e-4 in both, under the features' 3e-4
    report = compare(x, y)
    assert tolerance_for("denoiser", "fp32", CACHED_FEATURES).passes(report)
    assert not tolerance_for("denoiser", "fp32", "noise_pred").passes(report)
    assert not tolerance_for("denoiser", "fp16", CACHED_FEATURES).passes(compare(x, x + 1.0))
