"""Training-free feature caching: fewer denoiser FLOPs per image, with no retraining.

A cached bundle carries two denoiser graphs -- the full one, which also returns the deep features the
shallow one needs, and a shallow one that reuses them -- and a plan saying which steps run which. Each
family's split lives in its own module and registers itself in ``splits`` (``deepcache_unet``: UNets;
``delta_transformer``: PixArt and DiT transformers).
``plan`` is numpy-free and torch-free (the runtime reads it); the graph splits import torch.
"""

from edgediff.cache.plan import CachePlan, cache_plan_from_options

__all__ = ["CachePlan", "cache_plan_from_options"]
