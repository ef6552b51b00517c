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

DEFAULT_MODEL = "zoo:shapes-unet"
FALLBACK_MODEL = "config:tiny-sd"


def default_model_ref() -> str:
    """The model used when a command names none: the shipped zoo model (tiny random SD until it ships)."""
    from edgediff.zoo_registry import zoo_available

    return DEFAULT_MODEL if zoo_available(DEFAULT_MODEL.removeprefix("zoo:")) else FALLBACK_MODEL


def load_model(ref: str | None = None, *, trust_pickle: bool = False) -> Model:
    from edgediff.models.config_models import load_config_model
    from edgediff.models.diffusers_folder import load_diffusers_folder

    ref = ref or default_model_ref()
    if ref.startswith("config:"):
        return load_config_model(ref.removeprefix("config:"))
    if ref.startswith("zoo:"):
        from edgediff.zoo_registry import zoo_folder

        return load_diffusers_folder(zoo_folder(ref.removeprefix("zoo:")), source=ref)
    return load_diffusers_folder(Path(ref).expanduser(), trust_pickle=trust_pickle)


__all__ = ["DEFAULT_MODEL", "default_model_ref", "load_model"]
