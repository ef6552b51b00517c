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


def generator_for(pipe: Any, *, steps: int | None = None, guidance_scale: float | None = None) -> Generate:
    def generate(prompts: list[str], seeds: list[int]) -> np.ndarray:
        return np.stack(
            [pipe(p, seed=s, steps=steps, guidance_scale=guidance_scale).to_uint8() for p, s in zip(prompts, seeds, strict=True)]
        )

    return generate
