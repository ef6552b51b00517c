"""The sampling settings and the ``pipeline`` section of a manifest, derived from a model and a recipe.

Shared by the build (which writes it into the bundle) and the PyTorch reference pipeline (which runs
the same loop over the unexported modules), so both sample identically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgediff.errors import EdgeDiffError
from edgediff.models.types import Model
from edgediff.recipe import Recipe
from edgediff.schedulers import make_scheduler, scheduler_name_for

TOKENIZER_FILE = "tokenizer/tokenizer.json"


def sampling_settings(model: Model, recipe: Recipe) -> dict[str, Any]:
    """Size, steps, guidance, sampler and components (recipe over model defaults), validated."""
    height = recipe.height or model.defaults.height
    width = recipe.width or model.defaults.width
    multiple = model.geometry.vae_scale_factor * 2
    if height % multiple or width % multiple:
        raise EdgeDiffError(f"--height/--width must be multiples of {multiple} for this model, got {height}x{width}")
    components = list(recipe.components or model.component_names)
    unknown = [c for c in components if c not in model.component_names]
    if unknown:
        raise EdgeDiffError(f"model has no component {unknown[0]!r}; it has {', '.join(model.component_names)}")
    scheduler = recipe.scheduler or scheduler_name_for(model.scheduler_class)
    substituted = None
    if scheduler is None:
        # Same noise schedule, deterministic sampler: what diffusers does with DDIMScheduler.from_config.
        scheduler, substituted = "ddim", model.scheduler_class
    guidance = recipe.guidance_scale if recipe.guidance_scale is not None else model.defaults.guidance_scale
    return {
        "height": height,
        "width": width,
        "components": components,
        "scheduler": scheduler,
        "scheduler_substituted_for": substituted,
        "steps": recipe.steps or model.defaults.steps,
        "guidance_scale": guidance,
        # diffusers runs classifier-free guidance as one batch of [uncond, cond] when guidance > 1
        "denoiser_batch": 2 if guidance > 1.0 else 1,
    }


def pipeline_spec(model: Model, settings: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``pipeline`` section: everything the generation loop needs besides sessions."""
    scheduler = make_scheduler(settings["scheduler"], model.scheduler_config, settings["steps"])
    h, w = model.geometry.latent_hw(settings["height"], settings["width"])
    spec: dict[str, Any] = {
        "family": model.family,
        "conditioning": model.conditioning,
        "scheduler": settings["scheduler"],
        "scheduler_class": model.scheduler_class,
        "scheduler_substituted_for": settings["scheduler_substituted_for"],
        "scheduler_config": model.scheduler_config,
        "timesteps": np.asarray(scheduler.timesteps).tolist(),
        "sigmas": None if scheduler.sigmas is None else np.asarray(scheduler.sigmas).tolist(),
        "init_noise_sigma": float(scheduler.init_noise_sigma),
        "steps": settings["steps"],
        "guidance_scale": settings["guidance_scale"],
        "height": settings["height"],
        "width": settings["width"],
        "latent_channels": model.geometry.latent_channels,
        "latent_height": h,
        "latent_width": w,
        "vae_scale_factor": model.geometry.vae_scale_factor,
        "denoiser_batch": settings["denoiser_batch"],
        "num_classes": model.num_classes,
        "tokenizer": None,
        # a CachePlan's JSON when the denoiser is split for caching (edgediff.cache), else None
        "cache": settings.get("cache"),
        # the guidance a distilled denoiser carries in its one prediction (edgediff.distill.guidance_swap), else None
        "guidance_distilled": None if not settings.get("guided") else {
            "guidance_scale": settings["guided"]["guidance_scale"], "sha256": settings["guided"]["sha256"]},
    }
    if model.tokenizer_json is not None:
        spec["tokenizer"] = {"file": TOKENIZER_FILE, "max_length": model.geometry.text_max_length, "pad_id": model.pad_token_id}
    return spec
