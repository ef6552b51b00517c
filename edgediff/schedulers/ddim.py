"""DDIM sampler (eta = 0), reproducing diffusers' ``DDIMScheduler`` in numpy.

Implements eq. 12 of Song et al. (2021), "Denoising Diffusion Implicit Models", with sigma_t = 0
(eta = 0): the deterministic sampler. Stochastic DDIM (eta > 0) is not provided.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from edgediff.schedulers._alphas import (
    PREDICTION_TYPES,
    TIMESTEP_SPACINGS,
    alphas_cumprod,
    betas_from_options,
    check_choice,
    check_no_thresholding,
    check_steps,
    predict_original_sample,
    resolve_options,
    spaced_timesteps,
)
from edgediff.schedulers.base import SCHEDULERS

# DDIMScheduler.__init__ defaults (diffusers 0.42); a config key not listed here is ignored.
DEFAULTS: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "trained_betas": None,
    "clip_sample": True,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "epsilon",
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "clip_sample_range": 1.0,
    "sample_max_value": 1.0,
    "timestep_spacing": "leading",
    "rescale_betas_zero_snr": False,
}


@SCHEDULERS.register("ddim")
class DDIM:
    """Deterministic DDIM (eta = 0) steps, matching ``DDIMScheduler.step(eta=0.0)``.

    ``timesteps`` are int64 training timesteps; ``sigmas`` is None because DDIM is parameterised by
    ``alphas_cumprod`` (exposed as an attribute, float32). As in diffusers, the "previous" timestep of a
    step is ``t - num_train_timesteps // num_inference_steps`` (not the next entry of ``timesteps``) and
    falls back to ``final_alpha_cumprod`` below 0. Not supported: eta > 0, ``thresholding=True``.
    Arithmetic is float32; the result has ``model_output``'s dtype.
    """

    name: ClassVar[str] = "ddim"
    diffusers_class: ClassVar[str] = "DDIMScheduler"
    needs_noise: ClassVar[bool] = False
    init_noise_sigma: float = 1.0
    sigmas: np.ndarray | None = None

    def __init__(self, config: Mapping[str, Any], num_inference_steps: int) -> None:
        options = resolve_options(config, DEFAULTS)
        check_choice(options, "prediction_type", PREDICTION_TYPES, self.name)
        check_choice(options, "timestep_spacing", TIMESTEP_SPACINGS, self.name)
        check_no_thresholding(options, self.name)
        num_train = int(options["num_train_timesteps"])
        check_steps(num_inference_steps, num_train, self.name)
        self.options = options
        self.num_inference_steps = num_inference_steps
        self.alphas_cumprod = alphas_cumprod(betas_from_options(options, self.name))
        # With set_alpha_to_one the last step lands on a clean sample (alpha = 1); otherwise on t = 0.
        self.final_alpha_cumprod = np.float32(1.0) if options["set_alpha_to_one"] else self.alphas_cumprod[0]
        spaced = spaced_timesteps(
            options["timestep_spacing"], num_train, num_inference_steps, int(options["steps_offset"])
        )
        self.timesteps = np.round(spaced).astype(np.int64)
        self._stride = num_train // num_inference_steps

    def scale_model_input(self, sample: np.ndarray, step_index: int) -> np.ndarray:
        """Identity: DDIM feeds the sample unscaled."""
        return sample

    def step(
        self, model_output: np.ndarray, step_index: int, sample: np.ndarray, noise: np.ndarray | None = None
    ) -> np.ndarray:
        """x_{t-stride} from x_t (Song et al. 2021, eq. 12 with sigma_t = 0); ``noise`` is unused."""
        sample = sample.astype(np.float32, copy=False)
        model_output_f32 = model_output.astype(np.float32, copy=False)
        timestep = int(self.timesteps[step_index])
        prev_timestep = timestep - self._stride
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = np.float32(1) - alpha_prod_t
        prediction_type = self.options["prediction_type"]
        pred_original_sample = predict_original_sample(model_output_f32, sample, alpha_prod_t, prediction_type)
        if prediction_type == "epsilon":
            pred_epsilon = model_output_f32
        elif prediction_type == "v_prediction":
            pred_epsilon = np.sqrt(alpha_prod_t) * model_output_f32 + np.sqrt(beta_prod_t) * sample
        else:
            pred_epsilon = (sample - np.sqrt(alpha_prod_t) * pred_original_sample) / np.sqrt(beta_prod_t)
        if self.options["clip_sample"]:
            limit = float(self.options["clip_sample_range"])
            pred_original_sample = np.clip(pred_original_sample, -limit, limit)
        # "direction pointing to x_t" of eq. 12; its variance term is 0 at eta = 0.
        pred_sample_direction = np.sqrt(np.float32(1) - alpha_prod_t_prev) * pred_epsilon
        prev_sample = np.sqrt(alpha_prod_t_prev) * pred_original_sample + pred_sample_direction
        return prev_sample.astype(model_output.dtype, copy=False)
