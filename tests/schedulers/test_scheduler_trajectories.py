"""A full sampling loop with the numpy schedulers ends where diffusers' loop ends.

Both loops start from the same float32 latents, call the same deterministic stand-in denoiser
(``fake_denoiser``: a fixed function of the sample and the timestep, computed in numpy for both) and
follow diffusers' pipelines (``init_noise_sigma``, ``scale_model_input``, ``step``). LCM's fresh noise
is made identical by patching ``randn_tensor`` inside ``diffusers.schedulers.scheduling_lcm``.
Tolerance: every step's latents within atol 1e-5, rtol 1e-5 (float32 on both sides), except where
``ATOL_OVERRIDES`` says why not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, LCMScheduler
from diffusers.schedulers import scheduling_lcm

from edgediff.schedulers import make_scheduler

# diffusers' Euler calls np.array on a tensor under numpy 2; the warning is diffusers', not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

ATOL = 1e-5
RTOL = 1e-5
# Euler with zero terminal SNR starts at sigma = 4096 (alphas_cumprod[-1] = 2**-24): the first step
# cancels terms of size ~4096 * |x|, where one float32 ulp is ~5e-4, and torch's float32 sqrt is not
# correctly rounded (numpy's is), so the two loops differ by ~1e-3 there with no error in either.
ATOL_OVERRIDES = {("euler", "zero_snr_v"): 2e-3}
SHAPE = (1, 4, 8, 8)  # (batch, latent channels, height, width)

SD15 = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "clip_sample": False,
}
SD21_V = {**SD15, "prediction_type": "v_prediction"}
SD_TURBO = {**SD15, "timestep_spacing": "trailing"}
ZERO_SNR_V = {**SD15, "prediction_type": "v_prediction", "timestep_spacing": "trailing", "rescale_betas_zero_snr": True}

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    # (scheduler, case id, config, steps)
    ("euler", "sd15_linspace_eps", SD15, 30),
    ("euler", "sd15_leading_eps", {**SD15, "timestep_spacing": "leading"}, 4),
    ("euler", "sd_turbo_eps_1", SD_TURBO, 1),
    ("euler", "sd_turbo_eps_4", SD_TURBO, 4),
    ("euler", "sd21_v", SD21_V, 30),
    ("euler", "karras_eps", {**SD15, "use_karras_sigmas": True}, 30),
    ("euler", "karras_v", {**SD21_V, "use_karras_sigmas": True}, 4),
    ("euler", "zero_snr_v", ZERO_SNR_V, 4),
    ("euler", "continuous_v", {**SD21_V, "timestep_type": "continuous"}, 4),
    ("euler", "sample_prediction", {**SD15, "prediction_type": "sample"}, 4),
    ("ddim", "sd15_leading_eps", SD15, 30),
    ("ddim", "defaults_clip_eps", {}, 4),
    ("ddim", "sd21_v", SD21_V, 30),
    ("ddim", "zero_snr_v", ZERO_SNR_V, 4),
    ("ddim", "sample_prediction_1", {**SD15, "prediction_type": "sample"}, 1),
    ("lcm", "defaults_eps_1", {}, 1),
    ("lcm", "defaults_eps_4", {}, 4),
    ("lcm", "dreamshaper_eps_8", {**SD15, "set_alpha_to_one": True, "original_inference_steps": 50}, 8),
    ("lcm", "v", {"prediction_type": "v_prediction"}, 4),
    ("lcm", "clip_sample_v", {"prediction_type": "v_prediction", "clip_sample": True, "clip_sample_range": 0.5}, 4),
]
DIFFUSERS_CLASSES = {"euler": EulerDiscreteScheduler, "ddim": DDIMScheduler, "lcm": LCMScheduler}


def fake_denoiser(sample: np.ndarray, timestep: float, bias: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for a UNet: depends on the sample and (smoothly) on the timestep."""
    return np.float32(0.1) * sample + np.float32(0.05 * math.cos(timestep / 200.0)) * bias


def _inputs(steps: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    latents = rng.standard_normal(SHAPE, dtype=np.float32)
    bias = rng.standard_normal(SHAPE, dtype=np.float32)
    noises = [rng.standard_normal(SHAPE, dtype=np.float32) for _ in range(steps)]
    return latents, bias, noises


def _diffusers_loop(
    name: str, config: dict[str, Any], steps: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[np.ndarray], int]:
    """Latents after each step, as the text-to-image pipelines compute them; and the noise draws made."""
    latents0, bias, noises = _inputs(steps)
    queue: Iterator[np.ndarray] = iter(noises)
    draws = 0

    def fake_randn(shape: Any, **_: Any) -> torch.Tensor:
        nonlocal draws
        draws += 1
        return torch.from_numpy(next(queue)).reshape(shape)

    monkeypatch.setattr(scheduling_lcm, "randn_tensor", fake_randn)
    scheduler = DIFFUSERS_CLASSES[name].from_config(config)
    scheduler.set_timesteps(steps)
    latents = torch.from_numpy(latents0) * scheduler.init_noise_sigma
    trajectory = []
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t)
        model_output = torch.from_numpy(fake_denoiser(model_input.numpy(), float(t), bias))
        out = scheduler.step(model_output, t, latents)
        latents = out.prev_sample
        # LCM's pipeline decodes `denoised`; at the last step it equals prev_sample (checked below).
        trajectory.append((out.denoised if name == "lcm" and len(trajectory) == steps - 1 else latents).numpy())
    return trajectory, draws


def _numpy_loop(name: str, config: dict[str, Any], steps: int) -> list[np.ndarray]:
    latents0, bias, noises = _inputs(steps)
    scheduler = make_scheduler(name, config, steps)
    x = latents0 * scheduler.init_noise_sigma
    trajectory = []
    for i, t in enumerate(scheduler.timesteps):
        model_output = fake_denoiser(scheduler.scale_model_input(x, i), float(t), bias)
        x = scheduler.step(model_output, i, x, noise=noises[i] if scheduler.needs_noise else None)
        assert x.dtype == np.float32 and x.shape == SHAPE
        trajectory.append(x)
    return trajectory


@pytest.mark.parametrize(("name", "case", "config", "steps"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_numpy_sampling_loop_follows_diffusers_loop(
    name: str, case: str, config: dict[str, Any], steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, draws = _diffusers_loop(name, config, steps, monkeypatch)
    got = _numpy_loop(name, config, steps)
    if name == "lcm":
        assert draws == steps - 1  # the patched noise really fed diffusers' steps
    atol = ATOL_OVERRIDES.get((name, case), ATOL)
    for i, (ours, ref) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(ours, ref, atol=atol, rtol=RTOL, err_msg=f"{name} {case}: step {i}")


def test_lcm_step_returns_denoised_at_last_step_and_renoised_before() -> None:
    scheduler = make_scheduler("lcm", {}, 2)
    _, bias, noises = _inputs(2)
    x = np.ones(SHAPE, dtype=np.float32)
    output = fake_denoiser(x, float(scheduler.timesteps[0]), bias)
    prev, denoised = scheduler.step_with_denoised(output, 0, x, noises[0])
    assert not np.allclose(prev, denoised)
    prev, denoised = scheduler.step_with_denoised(output, 1, x, None)
    np.testing.assert_array_equal(prev, denoised)


def test_lcm_step_without_noise_before_last_step_raises() -> None:
    scheduler = make_scheduler("lcm", {}, 4)
    x = np.zeros(SHAPE, dtype=np.float32)
    with pytest.raises(ValueError, match="needs standard normal noise"):
        scheduler.step(x, 0, x, None)
