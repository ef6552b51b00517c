"""Where shipped zoo models live: ``edgediff/zoo/models/NAME`` (diffusers folders)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgediff.errors import ModelLoadError


def _root() -> Path:
    return Path(str(resources.files("edgediff"))) / "zoo" / "models"


def zoo_names() -> list[str]:
    root = _root()
    return sorted(p.name for p in root.iterdir() if (p / "model_index.json").is_file()) if root.is_dir() else []


def zoo_available(name: str) -> bool:
    return (_root() / name / "model_index.json").is_file()


def zoo_folder(name: str) -> Path:
    if not zoo_available(name):
        raise ModelLoadError(f"unknown zoo model zoo:{name}; shipped: {', '.join(zoo_names()) or 'none'}")
    return _root() / name
