"""Noise-schedule math shared by the numpy schedulers: config defaults, betas, alphas_cumprod, spacing.

Each function mirrors the diffusers 0.42 code named in its docstring, including the order and precision
of torch's float32 arithmetic, so a schedule computed here equals diffusers' to the last float32 ulp
(torch's vectorised CPU ``sqrt``/``log`` are not always correctly rounded, numpy's are; the tests in
``tests/schedulers`` bound the difference). numpy only: these run inside torch-free device runtimes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgediff.errors import EdgeDiffError

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def resolve_options(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options a diffusers class would be built with from ``config`` (its ``from_config``).

    Keys the class does not take (``_class_name``, PNDM's ``skip_prk_steps``, ...) are ignored and
    missing keys take that class's ``__init__`` defaults, as ``ConfigMixin.from_config`` does; this is
    what lets an SD 1.5 (PNDM) config drive Euler or DDIM.
    """
    options = dict(defaults)
    options.update({key: value for key, value in config.items() if key in defaults})
    return options


def check_steps(num_inference_steps: int, num_train_timesteps: int, scheduler: str) -> None:
    """Reject step counts diffusers' ``set_timesteps`` rejects (or would silently mis-handle)."""
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int | np.integer):
        raise EdgeDiffError(f"{scheduler}: num_inference_steps must be an int, got {num_inference_steps!r}")
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise EdgeDiffError(
            f"{scheduler}: num_inference_steps={num_inference_steps} is outside 1..{num_train_timesteps} "
            "(num_train_timesteps); choose a step count in that range"
        )


def check_choice(options: Mapping[str, Any], key: str, allowed: tuple[str, ...], scheduler: str) -> None:
    """Raise a user error naming the option and its supported values when ``options[key]`` is not one."""
    if options[key] not in allowed:
        raise EdgeDiffError(
            f"{scheduler}: {key}={options[key]!r} is not supported; use one of {', '.join(map(repr, allowed))}"
        )


def check_no_thresholding(options: Mapping[str, Any], scheduler: str) -> None:
    """Dynamic thresholding (Imagen) needs a per-sample quantile; it is meant for pixel-space models only."""
    if options.get("thresholding"):
        raise EdgeDiffError(
            f"{scheduler}: thresholding=True is not supported (it is meant for pixel-space models); "
            "set thresholding to false in the scheduler config"
        )


def torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)`` on CPU, value for value.

    torch's CPU kernel (``RangeFactoriesKernel.cpp``) fills the first half as ``start + step*i`` and the
    second as ``end - step*(steps-1-i)`` with ``step = (end-start)/(steps-1)`` in float32, and the compiler
    fuses the multiply-add. ``np.linspace`` in float64 then cast differs in about a third of the entries
    by one ulp; evaluating the same formula in float64 and rounding once reproduces the fused result.
    """
    start32, end32 = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([start32], dtype=np.float32)
    step = np.float64((end32 - start32) / np.float32(steps - 1))
    i = np.arange(steps)
    head = np.float64(start32) + step * i
    tail = np.float64(end32) - step * (steps - 1 - i)
    return np.where(i < steps // 2, head, tail).astype(np.float32)


def betas_for_alpha_bar(num_diffusion_timesteps: int, max_beta: float = 0.999) -> np.ndarray:
    """The ``squaredcos_cap_v2`` betas: the cosine schedule of Nichol & Dhariwal (2021), eq. 17.

    Mirrors diffusers' ``betas_for_alpha_bar(alpha_transform_type="cosine")``: float64 maths, then float32.
    """

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / num_diffusion_timesteps) / alpha_bar(i / num_diffusion_timesteps), max_beta)
        for i in range(num_diffusion_timesteps)
    ]
    return np.array(betas, dtype=np.float32)


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Rescale betas to zero terminal SNR: Lin et al. (2023), "Common Diffusion Noise Schedules and
    Sample Steps are Flawed", Algorithm 1; float32 throughout, as diffusers computes it."""
    alphas_bar_sqrt = np.sqrt(alphas_cumprod(betas))
    first, last = alphas_bar_sqrt[0], alphas_bar_sqrt[-1]
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * (first / (first - last))
    alphas_bar = alphas_bar_sqrt**2
    alphas = np.concatenate([alphas_bar[:1], alphas_bar[1:] / alphas_bar[:-1]])
    return (np.float32(1) - alphas).astype(np.float32)


def betas_from_options(options: Mapping[str, Any], scheduler: str) -> np.ndarray:
    """The training betas (float32, length ``num_train_timesteps``) that diffusers' ``__init__`` builds."""
    num_train = int(options["num_train_timesteps"])
    if options.get("trained_betas") is not None:
        betas = np.asarray(options["trained_betas"], dtype=np.float32)
    else:
        check_choice(options, "beta_schedule", BETA_SCHEDULES, scheduler)
        if options["beta_schedule"] == "linear":
            betas = torch_linspace_f32(options["beta_start"], options["beta_end"], num_train)
        elif options["beta_schedule"] == "scaled_linear":
            # Linear in sqrt(beta): the latent-diffusion (Stable Diffusion) schedule.
            betas = torch_linspace_f32(options["beta_start"] ** 0.5, options["beta_end"] ** 0.5, num_train) ** 2
        else:
            betas = betas_for_alpha_bar(num_train)
    if options.get("rescale_betas_zero_snr"):
        betas = rescale_zero_terminal_snr(betas)
    return betas


def alphas_cumprod(betas: np.ndarray) -> np.ndarray:
    """``torch.cumprod(1 - betas)`` in float32: torch's CPU kernel accumulates in double (``acc_type``)
    and rounds each partial product to float32, which a float64 ``np.cumprod`` reproduces exactly."""
    alphas = np.float32(1) - betas.astype(np.float32)
    return np.cumprod(alphas.astype(np.float64)).astype(np.float32)


def spaced_timesteps(spacing: str, num_train_timesteps: int, num_inference_steps: int, steps_offset: int) -> np.ndarray:
    """Descending training timesteps for ``num_inference_steps``, as float64 (callers cast or round).

    Table 2 of Lin et al. (2023): "linspace" spans [0, T-1] (not rounded here: Euler keeps the fractions,
    DDIM rounds), "leading" is ``i * (T // n) + steps_offset`` and "trailing" counts down from T-1 in
    steps of ``T / n``. Mirrors ``set_timesteps`` of diffusers' Euler and DDIM schedulers.
    """
    n = num_inference_steps
    if spacing == "linspace":
        return np.linspace(0, num_train_timesteps - 1, n)[::-1].copy()
    if spacing == "leading":
        return (np.arange(0, n) * (num_train_timesteps // n)).round()[::-1].astype(np.float64) + steps_offset
    if spacing == "trailing":
        return np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / n)).astype(np.float64) - 1
    raise EdgeDiffError(
        f"timestep_spacing={spacing!r} is not supported; use one of {', '.join(map(repr, TIMESTEP_SPACINGS))}"
    )


def predict_original_sample(
    model_output: np.ndarray, sample: np.ndarray, alpha_prod_t: np.float32, prediction_type: str
) -> np.ndarray:
    """x0 from the model output at cumulative alpha ``alpha_prod_t`` (DDIM/LCM's parameterisation).

    epsilon: Ho et al. (2020) eq. 15; v_prediction: Salimans & Ho (2022), "Progressive Distillation",
    section 4 (x0 = sqrt(a) x_t - sqrt(1-a) v); sample: the model predicts x0 directly.
    """
    beta_prod_t = np.float32(1) - alpha_prod_t
    if prediction_type == "epsilon":
        return (sample - np.sqrt(beta_prod_t) * model_output) / np.sqrt(alpha_prod_t)
    if prediction_type == "v_prediction":
        return np.sqrt(alpha_prod_t) * sample - np.sqrt(beta_prod_t) * model_output
    if prediction_type == "sample":
        return model_output
    raise AssertionError(f"prediction_type {prediction_type!r} should have been rejected at construction")
