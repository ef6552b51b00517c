"""Where the shipped zoo models live, and how ``zoo:NAME`` resolves to one of them."""

from __future__ import annotations

from pathlib import Path

from edgediff.errors import ModelLoadError

MODELS_DIR = Path(__file__).with_name("models")
PREFIX = "zoo:"
DEFAULT_MODEL = "zoo:shapes-unet"


def zoo_names() -> list[str]:
    """Names of the shipped models (folders holding a ``model_index.json``)."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model_index.json").is_file())


def zoo_path(name: str) -> Path:
    """The folder of a shipped model; ``name`` with or without the ``zoo:`` prefix."""
    bare = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    folder = MODELS_DIR / bare
    if not bare or "/" in bare or "\\" in bare or not (folder / "model_index.json").is_file():
        known = ", ".join(PREFIX + n for n in zoo_names()) or "none"
        raise ModelLoadError(f"unknown zoo model {name!r}; shipped models: {known}")
    return folder


def resolve_model_dir(model: str | Path) -> Path:
    """``zoo:NAME`` -> its shipped folder; anything else is taken as a local diffusers folder."""
    if isinstance(model, str) and model.startswith(PREFIX):
        return zoo_path(model)
    folder = Path(model)
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(f"{str(model)!r} is not a diffusers model folder (no model_index.json)")
    return folder
