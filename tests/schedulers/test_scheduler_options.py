"""Scheduler configs: unknown keys are ignored, unsupported options fail with an actionable EdgeDiffError."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgediff.errors import EdgeDiffError
from edgediff.schedulers import make_scheduler


def test_config_keys_the_class_does_not_take_are_ignored() -> None:
    pndm_style = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "skip_prk_steps": True}
    for name in ("euler", "ddim", "lcm"):
        plain = make_scheduler(name, {}, 4)
        with_extras = make_scheduler(name, pndm_style, 4)
        np.testing.assert_array_equal(with_extras.timesteps, plain.timesteps)


def test_missing_keys_take_the_diffusers_class_defaults() -> None:
    # LCM defaults to the SD schedule (scaled_linear 0.00085..0.012); DDIM to linear 0.0001..0.02 with clipping.
    lcm = make_scheduler("lcm", {}, 4)
    sd = make_scheduler("lcm", {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}, 4)
    np.testing.assert_array_equal(lcm.alphas_cumprod, sd.alphas_cumprod)
    assert make_scheduler("ddim", {}, 4).options["clip_sample"] is True


@pytest.mark.parametrize(
    ("name", "config", "steps", "message"),
    [
        ("ddim", {"thresholding": True}, 4, "thresholding=True is not supported"),
        ("lcm", {"thresholding": True}, 4, "thresholding=True is not supported"),
        ("euler", {"use_beta_sigmas": True}, 4, "use_beta_sigmas=True is not supported"),
        ("euler", {"use_karras_sigmas": True, "use_exponential_sigmas": True}, 4, "exclusive"),
        ("euler", {"interpolation_type": "log_linear"}, 4, "interpolation_type='log_linear' is not supported"),
        ("euler", {"final_sigmas_type": "max"}, 4, "final_sigmas_type='max' is not supported"),
        ("ddim", {"prediction_type": "flow"}, 4, "prediction_type='flow' is not supported"),
        ("lcm", {"beta_schedule": "sigmoid"}, 4, "beta_schedule='sigmoid' is not supported"),
        ("euler", {"timestep_spacing": "karras"}, 4, "timestep_spacing='karras' is not supported"),
        ("ddim", {}, 0, "outside 1..1000"),
        ("euler", {"num_train_timesteps": 10}, 11, "outside 1..10"),
        ("lcm", {}, 51, "exceeds original_inference_steps=50"),
        ("nope", {}, 4, "unknown scheduler 'nope'"),
    ],
)
def test_unsupported_options_raise_edgediff_error_naming_the_fix(
    name: str, config: dict[str, Any], steps: int, message: str
) -> None:
    with pytest.raises(EdgeDiffError, match=message):
        make_scheduler(name, config, steps)
