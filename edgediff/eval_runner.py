"""Turn a model reference or a bundle into the ``(prompts, seeds) -> images`` generator the evaluator scores.

A bundle runs through its runtime (``BundlePipeline``); a model (folder, ``zoo:``, ``config:``) runs the
same loop over its PyTorch modules (``torch_pipeline``). Both start each image from the same numpy noise
for the same seed, so a bundle's images can be compared pixel by pixel with its teacher's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.bundle.manifest import MANIFEST

Generate = Callable[[list[str], list[int]], np.ndarray]


def is_bundle(ref: str) -> bool:
    return (Path(ref) / MANIFEST).is_file()


def pipeline_for(ref: str | None, *, trust_pickle: bool = False) -> Any:
    """A ``SessionPipeline`` for a bundle directory or a model reference (None: the default model)."""
    if ref is not None and is_bundle(ref):
        from edgediff.runtimes.pipeline import BundlePipeline

        return BundlePipeline(ref)
    from edgediff.models import load_model
    from edgediff.models.torch_pipeline import torch_pipeline
    from edgediff.recipe import Recipe

    return torch_pipeline(load_model(ref, trust_pickle=trust_pickle), Recipe())


def generator_for(
    pipe: Any, *, steps: int | None = None, guidance_scale: float | None = None,
    timings: list[dict[str, float]] | None = None,
) -> Generate:
    """``(prompts, seeds) -> images`` over ``pipe``; each image's stage timings go to ``timings`` if given."""

    def one(prompt: str, seed: int) -> np.ndarray:
        generation = pipe(prompt, seed=seed, steps=steps, guidance_scale=guidance_scale)
        if timings is not None:
            timings.append(generation.timings_ms)
        return generation.to_uint8()

    def generate(prompts: list[str], seeds: list[int]) -> np.ndarray:
        return np.stack([one(p, s) for p, s in zip(prompts, seeds, strict=True)])

    return generate


def bundle_facts(pipe: Any, timings: list[dict[str, float]], steps: int | None) -> dict[str, Any] | None:
    """Size, precision and measured speed of a bundle's run, beside its build-time quality report."""
    bundle = getattr(pipe, "bundle", None)
    if bundle is None:
        return None
    steps = steps or bundle.pipeline["steps"]
    denoiser = bundle.components.get("denoiser", {})
    per_step = [t["denoise_ms"] / steps for t in timings]
    return {
        "target": bundle.manifest["target"]["name"],
        "precision": bundle.precision,
        "denoiser_bytes": sum(f["bytes"] for f in denoiser.get("files", [])),
        "bundle_bytes": sum(f["bytes"] for c in bundle.manifest["components"] for f in c["files"]),
        "denoiser_step_ms": float(np.median(per_step)) if per_step else None,
        "end_to_end_ms": float(np.median([sum(t.values()) for t in timings])) if timings else None,
        "build_report": bundle.manifest.get("quality"),
    }
