"""Latent Consistency Model sampler, reproducing diffusers' ``LCMScheduler`` in numpy.

Implements Algorithm 1 (multistep latent consistency sampling) of Luo et al. (2023), "Latent
Consistency Models": each step maps x_t to a clean estimate with the consistency boundary condition
(c_skip, c_out of Song et al. 2023, "Consistency Models", with sigma_data = 0.5), then re-noises it to
the next timestep with fresh Gaussian noise that the caller supplies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from edgediff.errors import EdgeDiffError
from edgediff.schedulers._alphas import (
    PREDICTION_TYPES,
    alphas_cumprod,
    betas_from_options,
    check_choice,
    check_no_thresholding,
    check_steps,
    predict_original_sample,
    resolve_options,
)
from edgediff.schedulers.base import SCHEDULERS

# LCMScheduler.__init__ defaults (diffusers 0.42); a config key not listed here is ignored.
DEFAULTS: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "original_inference_steps": 50,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "epsilon",
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0,
    "timestep_spacing": "leading",
    "timestep_scaling": 10.0,
    "rescale_betas_zero_snr": False,
}

SIGMA_DATA = 0.5  # Consistency Models' data standard deviation, fixed in diffusers' LCMScheduler


def lcm_timesteps(num_train_timesteps: int, original_inference_steps: int, num_inference_steps: int) -> np.ndarray:
    """int64 timesteps of ``LCMScheduler.set_timesteps(n)`` (strength 1, no custom timesteps).

    The distillation schedule is ``k*i - 1`` for ``i = 1..original_inference_steps`` (``k = T // original``,
    the skipping interval of Luo et al. 2023, section 4.3); ``n`` entries are taken from it, evenly spaced
    by index, from the noisiest down.
    """
    if original_inference_steps > num_train_timesteps:
        raise EdgeDiffError(
            f"lcm: original_inference_steps={original_inference_steps} exceeds num_train_timesteps="
            f"{num_train_timesteps}; fix the scheduler config"
        )
    if num_inference_steps > original_inference_steps:
        raise EdgeDiffError(
            f"lcm: num_inference_steps={num_inference_steps} exceeds original_inference_steps="
            f"{original_inference_steps}; use at most that many steps"
        )
    k = num_train_timesteps // original_inference_steps
    origin = (np.arange(1, original_inference_steps + 1, dtype=np.int64) * k - 1)[::-1]
    indices = np.floor(np.linspace(0, len(origin), num=num_inference_steps, endpoint=False)).astype(np.int64)
    return origin[indices].astype(np.int64)


@SCHEDULERS.register("lcm")
class LCM:
    """Multistep LCM sampling, matching ``LCMScheduler`` driven by ``LatentConsistencyModelPipeline``.

    ``step`` returns diffusers' ``prev_sample``: the re-noised estimate, except at the last step, where
    it is the clean ``denoised`` estimate itself (as diffusers does), so a plain loop
    ``x = step(...)`` ends on the latents the pipeline decodes. ``step_with_denoised`` returns both.
    ``noise`` must be a standard normal array of ``sample``'s shape for every step but the last (where it
    is ignored). ``timesteps`` are int64; ``sigmas`` is None (LCM is parameterised by ``alphas_cumprod``).
    diffusers' LCMScheduler ignores ``timestep_spacing`` and ``steps_offset``, so they are ignored here too.
    Not supported: ``thresholding=True``, custom timesteps, img2img ``strength``.
    Arithmetic is float32; the result has ``model_output``'s dtype.
    """

    name: ClassVar[str] = "lcm"
    diffusers_class: ClassVar[str] = "LCMScheduler"
    needs_noise: ClassVar[bool] = True
    init_noise_sigma: float = 1.0
    sigmas: np.ndarray | None = None

    def __init__(self, config: Mapping[str, Any], num_inference_steps: int) -> None:
        options = resolve_options(config, DEFAULTS)
        check_choice(options, "prediction_type", PREDICTION_TYPES, self.name)
        check_no_thresholding(options, self.name)
        num_train = int(options["num_train_timesteps"])
        check_steps(num_inference_steps, num_train, self.name)
        self.options = options
        self.num_inference_steps = num_inference_steps
        self.alphas_cumprod = alphas_cumprod(betas_from_options(options, self.name))
        self.final_alpha_cumprod = np.float32(1.0) if options["set_alpha_to_one"] else self.alphas_cumprod[0]
        self.timesteps = lcm_timesteps(num_train, int(options["original_inference_steps"]), num_inference_steps)

    def scale_model_input(self, sample: np.ndarray, step_index: int) -> np.ndarray:
        """Identity: LCM feeds the sample unscaled."""
        return sample

    def boundary_scalings(self, timestep: int) -> tuple[np.float32, np.float32]:
        """(c_skip, c_out) at ``timestep * timestep_scaling`` (Song et al. 2023, Appendix C), float32."""
        scaled = np.float32(timestep) * np.float32(self.options["timestep_scaling"])
        sigma_data_sq = np.float32(SIGMA_DATA**2)
        c_skip = sigma_data_sq / (scaled**2 + sigma_data_sq)
        c_out = scaled / np.sqrt(scaled**2 + sigma_data_sq)
        return c_skip, c_out

    def step_with_denoised(
        self, model_output: np.ndarray, step_index: int, sample: np.ndarray, noise: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(prev_sample, denoised), as ``LCMScheduler.step`` returns them."""
        last = step_index == len(self.timesteps) - 1
        sample = sample.astype(np.float32, copy=False)
        timestep = int(self.timesteps[step_index])
        prev_timestep = timestep if last else int(self.timesteps[step_index + 1])
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        x0 = predict_original_sample(
            model_output.astype(np.float32, copy=False), sample, alpha_prod_t, self.options["prediction_type"]
        )
        if self.options["clip_sample"]:
            limit = float(self.options["clip_sample_range"])
            x0 = np.clip(x0, -limit, limit)
        c_skip, c_out = self.boundary_scalings(timestep)
        denoised = c_out * x0 + c_skip * sample
        if last:
            prev_sample = denoised
        elif noise is None:
            raise ValueError(f"lcm step {step_index} of {len(self.timesteps)} needs standard normal noise")
        else:
            beta_prod_t_prev = np.float32(1) - alpha_prod_t_prev
            prev_sample = np.sqrt(alpha_prod_t_prev) * denoised + np.sqrt(beta_prod_t_prev) * noise.astype(np.float32)
        return prev_sample.astype(model_output.dtype, copy=False), denoised.astype(model_output.dtype, copy=False)

    def step(
        self, model_output: np.ndarray, step_index: int, sample: np.ndarray, noise: np.ndarray | None = None
    ) -> np.ndarray:
        """diffusers' ``prev_sample``: x at the next timestep, or the clean estimate at the last step."""
        return self.step_with_denoised(model_output, step_index, sample, noise)[0]
