"""Which denoiser families can be split for caching, and the model transform that splits one.

Each split module registers its family's (full, shallow) wrapper pair here, where it is defined:
``deepcache_unet`` for UNets, ``delta_transformer`` for PixArt and DiT transformers. The pair shares the
plan's contract: the full graph returns ``(noise_pred, deep_features)`` and the shallow graph takes the
denoiser's inputs plus ``deep_features``, so the runtime's loop does not depend on the family.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from torch import nn

from edgediff.cache.plan import CachePlan
from edgediff.errors import TargetError
from edgediff.models.types import Model
from edgediff.registry import Registry

# family -> (full wrapper, shallow wrapper); a family is cacheable once it registers its split here
CACHED_DENOISERS: Registry[tuple[Callable[..., nn.Module], Callable[..., nn.Module]]] = Registry("cached denoiser family")

_SPLIT_MODULES = ("edgediff.cache.deepcache_unet", "edgediff.cache.delta_transformer")  # imported on first use (torch)


def cacheable_families() -> list[str]:
    for module in _SPLIT_MODULES:
        importlib.import_module(module)
    return list(CACHED_DENOISERS)


def with_deep_cache(model: Model) -> Model:
    """``model`` with its denoiser split for caching: ``denoiser`` returns features, ``denoiser_shallow`` reuses them."""
    families = cacheable_families()
    if model.family not in CACHED_DENOISERS:
        raise TargetError(f"--cache-interval splits {', '.join(families)} denoisers; this model's denoiser is a "
                          f"{model.family} denoiser, which has no split yet; build without --cache-interval")
    full, shallow = CACHED_DENOISERS.get(model.family)
    base = model.component_factories["denoiser"]

    def build(wrapper: Callable[..., nn.Module]) -> Callable[[], Any]:
        return lambda: wrapper(base().model, model.geometry).eval()

    factories: dict[str, Callable[[], Any]] = {}
    for name, factory in model.component_factories.items():
        factories[name] = build(full) if name == "denoiser" else factory
        if name == "denoiser":
            factories[CachePlan.shallow_component] = build(shallow)
    return replace(model, component_factories=factories)
