"""The scheduler interface and registry (numpy only: no torch import here or in any scheduler)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from edgediff.registry import Registry


class Scheduler(Protocol):
    """One sampling method, set up for a fixed number of steps.

    ``timesteps[i]`` is the value fed to the denoiser at step ``i`` (as diffusers feeds it: float32 for
    Euler, int64 for DDIM/LCM); ``sigmas`` is the noise level per step plus the final one for
    sigma-parameterised samplers (None otherwise). ``needs_noise`` says whether ``step`` consumes fresh
    Gaussian noise (LCM does, Euler/DDIM(eta=0) do not). A sampling loop is::

        x = initial_noise * scheduler.init_noise_sigma
        for i, t in enumerate(scheduler.timesteps):
            eps = denoiser(scheduler.scale_model_input(x, i), t)
            x = scheduler.step(eps, i, x, noise=randn(x.shape) if scheduler.needs_noise else None)

    and ends on the latents diffusers' pipeline decodes.
    """

    name: str
    timesteps: np.ndarray
    sigmas: np.ndarray | None
    init_noise_sigma: float
    needs_noise: bool

    def scale_model_input(self, sample: np.ndarray, step_index: int) -> np.ndarray: ...

    def step(
        self, model_output: np.ndarray, step_index: int, sample: np.ndarray, noise: np.ndarray | None = None
    ) -> np.ndarray: ...


# name -> class; each class also has a ``diffusers_class`` attribute (e.g. "EulerDiscreteScheduler").
SCHEDULERS: Registry[type] = Registry("scheduler")


def scheduler_name_for(diffusers_class: str) -> str | None:
    """The registry name of the scheduler reproducing a diffusers class, or None if none does."""
    _import_builtin_schedulers()
    for name in SCHEDULERS:
        if getattr(SCHEDULERS.get(name), "diffusers_class", None) == diffusers_class:
            return name
    return None


def scheduler_names() -> list[str]:
    """Registered scheduler names, builtin ones included."""
    _import_builtin_schedulers()
    return SCHEDULERS.names()


def make_scheduler(name: str, config: Mapping[str, Any], num_inference_steps: int) -> Scheduler:
    """Build scheduler ``name`` from a diffusers ``scheduler_config.json`` dict for ``num_inference_steps``."""
    _import_builtin_schedulers()
    return SCHEDULERS.get(name)(config, num_inference_steps)


def _import_builtin_schedulers() -> None:
    # Importing the modules fills the registry (each registers itself where it is defined). Imported here,
    # not at module top, because they import SCHEDULERS from this module.
    from edgediff.schedulers import ddim, euler, lcm  # noqa: F401
