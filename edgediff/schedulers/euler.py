"""Euler sampler, reproducing diffusers' ``EulerDiscreteScheduler`` in numpy.

Implements Algorithm 2 (Euler steps) of Karras et al. (2022), "Elucidating the Design Space of
Diffusion-Based Generative Models", without churn (``s_churn=0``, diffusers' default, so it is
deterministic). The sigma schedules (``karras_sigmas``, ``exponential_sigmas``) are separate functions,
as in k-diffusion, so a runtime can also be handed a precomputed ``sigmas`` array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from edgediff.errors import EdgeDiffError
from edgediff.schedulers._alphas import (
    PREDICTION_TYPES,
    TIMESTEP_SPACINGS,
    alphas_cumprod,
    betas_from_options,
    check_choice,
    check_steps,
    resolve_options,
    spaced_timesteps,
)
from edgediff.schedulers.base import SCHEDULERS

# EulerDiscreteScheduler.__init__ defaults (diffusers 0.42); a config key not listed here is ignored.
DEFAULTS: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "trained_betas": None,
    "prediction_type": "epsilon",
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "sigma_min": None,
    "sigma_max": None,
    "timestep_spacing": "linspace",
    "timestep_type": "discrete",
    "steps_offset": 0,
    "rescale_betas_zero_snr": False,
    "final_sigmas_type": "zero",
}


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> np.ndarray:
    """The noise levels of Karras et al. (2022), eq. 5 (rho = 7 as in the paper), as float64."""
    ramp = np.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho


def exponential_sigmas(sigma_min: float, sigma_max: float, n: int) -> np.ndarray:
    """Noise levels evenly spaced in log sigma (diffusers' ``use_exponential_sigmas``), as float64."""
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))


def sigma_to_t(sigmas: np.ndarray, log_sigmas: np.ndarray) -> np.ndarray:
    """Fractional training timestep of each sigma, interpolating linearly in log sigma.

    Vectorised form of diffusers' ``EulerDiscreteScheduler._sigma_to_t`` (same arithmetic per element).
    """
    log_sigma = np.log(np.maximum(sigmas, 1e-10))
    dists = log_sigma[np.newaxis, :] - log_sigmas[:, np.newaxis]  # (T, n)
    low_idx = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    return (1 - w) * low_idx + w * high_idx


def _check(options: Mapping[str, Any]) -> None:
    name = "euler"
    check_choice(options, "prediction_type", (*PREDICTION_TYPES, "original_sample"), name)
    check_choice(options, "timestep_spacing", TIMESTEP_SPACINGS, name)
    check_choice(options, "interpolation_type", ("linear",), name)
    check_choice(options, "timestep_type", ("discrete", "continuous"), name)
    check_choice(options, "final_sigmas_type", ("zero", "sigma_min"), name)
    if options["use_beta_sigmas"]:
        raise EdgeDiffError("euler: use_beta_sigmas=True is not supported; use use_karras_sigmas or neither")
    if bool(options["use_karras_sigmas"]) and bool(options["use_exponential_sigmas"]):
        raise EdgeDiffError("euler: use_karras_sigmas and use_exponential_sigmas are exclusive; set one to false")


def euler_schedule(
    options: Mapping[str, Any], train_alphas_cumprod: np.ndarray, num_inference_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps float32 (n,), sigmas float32 (n+1,) ending in the final sigma), as ``set_timesteps``."""
    n = num_inference_steps
    ac = train_alphas_cumprod
    train_sigmas = np.sqrt((1 - ac) / ac)  # float32, indexed by training timestep
    log_sigmas = np.log(train_sigmas)
    timesteps = spaced_timesteps(
        options["timestep_spacing"], int(options["num_train_timesteps"]), n, int(options["steps_offset"])
    ).astype(np.float32)
    sigmas = np.interp(timesteps, np.arange(0, len(train_sigmas)), train_sigmas)  # float64
    if options["use_karras_sigmas"] or options["use_exponential_sigmas"]:
        # Endpoints default to the interpolated schedule's, as diffusers' _convert_to_karras does.
        sigma_min = options["sigma_min"] if options["sigma_min"] is not None else sigmas[-1].item()
        sigma_max = options["sigma_max"] if options["sigma_max"] is not None else sigmas[0].item()
        convert = karras_sigmas if options["use_karras_sigmas"] else exponential_sigmas
        sigmas = convert(sigma_min, sigma_max, n)
        timesteps = sigma_to_t(sigmas, log_sigmas)
    sigma_last = np.sqrt((1 - ac[0]) / ac[0]) if options["final_sigmas_type"] == "sigma_min" else 0.0
    sigmas = np.concatenate([sigmas, [sigma_last]]).astype(np.float32)
    if options["timestep_type"] == "continuous" and options["prediction_type"] == "v_prediction":
        # Continuous-time models take c_noise = ln(sigma) / 4 (Karras et al. 2022, Table 1, EDM column).
        return (np.float32(0.25) * np.log(sigmas[:-1])).astype(np.float32), sigmas
    return timesteps.astype(np.float32), sigmas


@SCHEDULERS.register("euler")
class EulerDiscrete:
    """Deterministic Euler steps in sigma space, matching ``EulerDiscreteScheduler`` (``s_churn=0``).

    ``sigmas`` has ``num_inference_steps + 1`` float32 entries, the last being 0 (``final_sigmas_type
    "zero"``) or the smallest training sigma (``"sigma_min"``). Not supported: ``use_beta_sigmas`` (needs
    scipy), ``interpolation_type="log_linear"``, churn (``s_churn > 0``). Arithmetic is float32, as
    diffusers upcasts the sample to float32; the result has ``model_output``'s dtype, as diffusers returns.
    """

    name: ClassVar[str] = "euler"
    diffusers_class: ClassVar[str] = "EulerDiscreteScheduler"
    needs_noise: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any], num_inference_steps: int) -> None:
        options = resolve_options(config, DEFAULTS)
        _check(options)
        check_steps(num_inference_steps, int(options["num_train_timesteps"]), self.name)
        self.options = options
        self.num_inference_steps = num_inference_steps
        self.prediction_type = (
            "sample" if options["prediction_type"] == "original_sample" else options["prediction_type"]
        )
        self.alphas_cumprod = alphas_cumprod(betas_from_options(options, self.name))
        if options["rescale_betas_zero_snr"]:
            # Zero terminal SNR would make sigma infinite; diffusers nudges it to float32's epsilon/2.
            self.alphas_cumprod[-1] = 2.0**-24
        self.timesteps, self.sigmas = euler_schedule(options, self.alphas_cumprod, num_inference_steps)
        max_sigma = self.sigmas.max()
        if options["timestep_spacing"] in ("linspace", "trailing"):
            self.init_noise_sigma = float(max_sigma)
        else:
            # diffusers' convention for "leading" spacing, mirrored as is.
            self.init_noise_sigma = float(np.sqrt(max_sigma**2 + np.float32(1)))

    def scale_model_input(self, sample: np.ndarray, step_index: int) -> np.ndarray:
        """Divide by sqrt(sigma^2 + 1): the denoiser was trained on unit-variance inputs (Karras c_in)."""
        sigma = self.sigmas[step_index]
        return sample / np.sqrt(sigma**2 + np.float32(1))

    def step(
        self, model_output: np.ndarray, step_index: int, sample: np.ndarray, noise: np.ndarray | None = None
    ) -> np.ndarray:
        """x at ``sigmas[step_index + 1]`` from x at ``sigmas[step_index]``; ``noise`` is unused."""
        sample = sample.astype(np.float32, copy=False)
        sigma = self.sigmas[step_index]
        sigma_hat = sigma  # sigma * (gamma + 1) with gamma = 0 (no churn)
        if self.prediction_type == "epsilon":
            denoised = sample - sigma_hat * model_output
        elif self.prediction_type == "v_prediction":
            denoised = model_output * (-sigma / np.sqrt(sigma**2 + np.float32(1))) + (
                sample / (sigma**2 + np.float32(1))
            )
        else:
            denoised = model_output
        # Kept in diffusers' order of operations (not simplified) so float32 rounding matches.
        derivative = (sample - denoised) / sigma_hat
        dt = self.sigmas[step_index + 1] - sigma_hat
        prev_sample = sample + derivative * dt
        return prev_sample.astype(model_output.dtype, copy=False)
