"""Loading diffusion pipelines as components: ``load_model(ref)``.

``ref`` is a local diffusers folder, ``zoo:NAME`` (trained models shipped with edgediff) or
``config:NAME`` (a published architecture with random weights). Loading is offline; pickled weights
are refused unless ``trust_pickle`` is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgediff.models.types import Model

FALLBACK_MODEL = "config:tiny-sd"


def default_model_ref() -> str:
    """The model used when a command names none: the shipped zoo model (a tiny random SD if it is absent)."""
    from edgediff.zoo.paths import DEFAULT_MODEL, zoo_names

    return DEFAULT_MODEL if DEFAULT_MODEL.removeprefix("zoo:") in zoo_names() else FALLBACK_MODEL


def load_model(ref: str | None = None, *, trust_pickle: bool = False) -> Model:
    from edgediff.models.config_models import load_config_model
    from edgediff.models.diffusers_folder import load_diffusers_folder

    ref = ref or default_model_ref()
    if ref.startswith("config:"):
        return load_config_model(ref.removeprefix("config:"))
    if ref.startswith("zoo:"):
        from edgediff.zoo.paths import zoo_path

        return load_diffusers_folder(zoo_path(ref), source=ref)
    return load_diffusers_folder(Path(ref).expanduser(), trust_pickle=trust_pickle)


__all__ = ["default_model_ref", "load_model"]
