"""The shapes zoo: a procedural text-to-image data set and the small trained models that ship with it.

Importing this package loads numpy only; the torch reference sampler lives in ``edgediff.zoo.sampler``.
"""

from __future__ import annotations

from edgediff.zoo.attributes import ObjectSpec, Scene
from edgediff.zoo.dataset import item, render_range, render_scenes, sample_scene
from edgediff.zoo.grammar import parse_prompt, prompt_for
from edgediff.zoo.paths import DEFAULT_MODEL, resolve_model_dir, zoo_names, zoo_path
from edgediff.zoo.render import render

__all__ = [
    "DEFAULT_MODEL",
    "ObjectSpec",
    "Scene",
    "item",
    "parse_prompt",
    "prompt_for",
    "render",
    "render_range",
    "render_scenes",
    "resolve_model_dir",
    "sample_scene",
    "zoo_names",
    "zoo_path",
]
