"""The numpy schedulers build the same schedules as diffusers' ``set_timesteps``.

Tolerances: integer timesteps (DDIM, LCM) must be equal; float32 timesteps, sigmas, alphas_cumprod
and init_noise_sigma within rtol 1e-5, atol 0. Not bit for bit because torch's vectorised float32
``sqrt``/``log`` on CPU are not always correctly rounded (one ulp off numpy's on some entries), and
zero-terminal-SNR rescaling amplifies that to ~2e-6 relative in a few sigmas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from diffusers import DDIMScheduler, EulerDiscreteScheduler, LCMScheduler

from edgediff.schedulers import make_scheduler

# diffusers' Euler calls np.array on a tensor under numpy 2; the warning is diffusers', not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

SD15 = {  # runwayml/stable-diffusion-v1-5 scheduler_config.json (a PNDM config, as shipped)
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
SD_TURBO = {  # stabilityai/sd-turbo scheduler_config.json
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
LCM_DREAMSHAPER = {  # SimianLuo/LCM_Dreamshaper_v7 scheduler_config.json
    "_class_name": "LCMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "original_inference_steps": 50,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "thresholding": False,
    "timestep_scaling": 10.0,
    "timestep_spacing": "leading",
    "trained_betas": None,
}

CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "sd15": SD15,
    "sd15_leading": {**SD15, "timestep_spacing": "leading"},
    "sd15_linspace": {**SD15, "timestep_spacing": "linspace"},
    "sd_turbo": SD_TURBO,
    "karras": {**SD15, "use_karras_sigmas": True},
    "karras_leading_sigma_bounds": {
        **SD15,
        "use_karras_sigmas": True,
        "timestep_spacing": "leading",
        "sigma_min": 0.03,
        "sigma_max": 10.0,
    },
    "exponential": {**SD15, "use_exponential_sigmas": True},
    "cosine_trailing_zero_snr": {
        "beta_schedule": "squaredcos_cap_v2",
        "timestep_spacing": "trailing",
        "rescale_betas_zero_snr": True,
        "prediction_type": "v_prediction",
    },
    "linear_sigma_min_final": {"final_sigmas_type": "sigma_min"},
    "continuous_v": {**SD15, "prediction_type": "v_prediction", "timestep_type": "continuous"},
    "trained_betas": {"trained_betas": list(np.linspace(1e-4, 2e-2, 1000)), "timestep_spacing": "trailing"},
}
EULER_CONFIGS = list(CONFIGS)
# Karras/exponential/continuous are Euler-only options; DDIM would ignore them and repeat other cases.
DDIM_CONFIGS = [
    "defaults",
    "sd15",
    "sd15_linspace",
    "sd_turbo",
    "cosine_trailing_zero_snr",
    "trained_betas",
]
LCM_CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "dreamshaper": LCM_DREAMSHAPER,
    "original_steps_100_linear": {"original_inference_steps": 100, "beta_schedule": "linear"},
    "zero_snr": {"rescale_betas_zero_snr": True},
}
STEPS = [1, 4, 30]

RTOL = 1e-5


def _assert_schedule_matches(ours: Any, ref: Any, float_timesteps: bool) -> None:
    ref_timesteps = ref.timesteps.numpy()
    assert ours.timesteps.dtype == ref_timesteps.dtype
    if float_timesteps:
        np.testing.assert_allclose(ours.timesteps, ref_timesteps, rtol=RTOL, atol=0)
    else:
        np.testing.assert_array_equal(ours.timesteps, ref_timesteps)
    np.testing.assert_allclose(ours.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours.init_noise_sigma, float(ref.init_noise_sigma), rtol=RTOL)


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("config_name", EULER_CONFIGS)
def test_euler_timesteps_and_sigmas_equal_diffusers(config_name: str, steps: int) -> None:
    config = CONFIGS[config_name]
    ref = EulerDiscreteScheduler.from_config(config)
    ref.set_timesteps(steps)
    ours = make_scheduler("euler", config, steps)
    _assert_schedule_matches(ours, ref, float_timesteps=True)
    assert ours.sigmas is not None and ours.sigmas.dtype == np.float32
    np.testing.assert_allclose(ours.sigmas, ref.sigmas.numpy(), rtol=RTOL, atol=0)


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("config_name", DDIM_CONFIGS)
def test_ddim_timesteps_equal_diffusers(config_name: str, steps: int) -> None:
    config = CONFIGS[config_name]
    ref = DDIMScheduler.from_config(config)
    ref.set_timesteps(steps)
    ours = make_scheduler("ddim", config, steps)
    _assert_schedule_matches(ours, ref, float_timesteps=False)
    assert ours.sigmas is None


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("config_name", list(LCM_CONFIGS))
def test_lcm_timesteps_equal_diffusers(config_name: str, steps: int) -> None:
    config = LCM_CONFIGS[config_name]
    ref = LCMScheduler.from_config(config)
    ref.set_timesteps(steps)
    ours = make_scheduler("lcm", config, steps)
    _assert_schedule_matches(ours, ref, float_timesteps=False)
    assert ours.sigmas is None
