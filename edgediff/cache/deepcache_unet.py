"""DeepCache for ``UNet2DConditionModel``: the full UNet, which also returns the last up block's input,
and the shallow UNet (``conv_in``, the first down block, the last up block, the output head) that reads it.

Both halves re-run the blocks of diffusers' ``UNet2DConditionModel.forward`` in its order and with its
arguments, so the full half is the stock UNet (tests check it output for output) and the shallow half,
fed the full half's features from the same step, reproduces the full output exactly. Between full steps
the features are one to ``interval - 1`` steps old: that staleness is the whole approximation
(Ma et al., "DeepCache: Accelerating Diffusion Models for Free", 2023, skip branch 1).
"""

from __future__ import annotations

import torch
from torch import nn

from edgediff.cache.plan import CachePlan
from edgediff.cache.splits import CACHED_DENOISERS
from edgediff.errors import TargetError
from edgediff.models.types import Geometry
from edgediff.models.wrappers import TensorSpec, UNetDenoiser

# Config keys of UNets whose forward adds conditioning this split does not replay (SDXL's added time ids,
# class embeddings, image hints, LCM's guidance embedding): they fail at build time, not silently.
_UNSUPPORTED_CONFIG = ("class_embed_type", "num_class_embeds", "addition_embed_type", "encoder_hid_dim_type",
                       "time_cond_proj_dim")


def check_splittable(unet: nn.Module) -> None:
    used = [key for key in _UNSUPPORTED_CONFIG if unet.config.get(key)]
    if used or unet.config.get("center_input_sample"):
        raise TargetError(f"--cache-interval cannot split this UNet: its config sets {', '.join(used) or 'center_input_sample'}, "
                          "conditioning the cached split does not replay; build without --cache-interval")


def _time_embedding(unet: nn.Module, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)
    return unet.time_embed_act(emb) if unet.time_embed_act is not None else emb


def _down(block: nn.Module, h: torch.Tensor, emb: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    if getattr(block, "has_cross_attention", False):
        return block(hidden_states=h, temb=emb, encoder_hidden_states=context)
    return block(hidden_states=h, temb=emb)


def _up(block: nn.Module, h: torch.Tensor, emb: torch.Tensor, skips: tuple, context: torch.Tensor) -> torch.Tensor:
    if getattr(block, "has_cross_attention", False):
        return block(hidden_states=h, temb=emb, res_hidden_states_tuple=skips, encoder_hidden_states=context)
    return block(hidden_states=h, temb=emb, res_hidden_states_tuple=skips)


def _head(unet: nn.Module, h: torch.Tensor) -> torch.Tensor:
    if unet.conv_norm_out is not None:
        h = unet.conv_act(unet.conv_norm_out(h))
    return unet.conv_out(h)


def unet_with_features(unet: nn.Module, sample: torch.Tensor, timestep: torch.Tensor,
                       context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(noise_pred, deep_features): the stock forward, keeping the last up block's input."""
    emb = _time_embedding(unet, sample, timestep)
    h = unet.conv_in(sample)
    skips: tuple = (h,)
    for block in unet.down_blocks:
        h, block_skips = _down(block, h, emb, context)
        skips += block_skips
    if unet.mid_block is not None:
        if getattr(unet.mid_block, "has_cross_attention", False):
            h = unet.mid_block(h, emb, encoder_hidden_states=context)
        else:
            h = unet.mid_block(h, emb)
    for block in unet.up_blocks[:-1]:
        n = len(block.resnets)
        h, skips = _up(block, h, emb, skips[-n:], context), skips[:-n]
    features = h  # (B, C of the second-to-last up block, latent H, latent W)
    return _head(unet, _up(unet.up_blocks[-1], features, emb, skips, context)), features


def unet_from_features(unet: nn.Module, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                       features: torch.Tensor) -> torch.Tensor:
    """noise_pred from the outermost blocks only, with ``features`` standing in for everything deeper."""
    emb = _time_embedding(unet, sample, timestep)
    h = unet.conv_in(sample)
    _, block_skips = _down(unet.down_blocks[0], h, emb, context)
    last = unet.up_blocks[-1]
    # The last up block reads the first len(resnets) skips: conv_in's and the first down block's own;
    # that block's downsampled output feeds the deeper blocks only and is left to dead-code elimination.
    skips = ((h,) + block_skips)[: len(last.resnets)]
    return _head(unet, _up(last, features, emb, skips, context))


class CachingUNetDenoiser(UNetDenoiser):
    """The full denoiser of a cached bundle: (sample, timestep, encoder_hidden_states) -> (noise_pred, deep_features)."""

    output_names = ("noise_pred", CachePlan.feature)

    def __init__(self, model: nn.Module, geometry: Geometry) -> None:
        check_splittable(model)
        super().__init__(model, geometry)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unet_with_features(self.model, sample, timestep, encoder_hidden_states)


class ShallowUNetDenoiser(UNetDenoiser):
    """The cached step: (sample, timestep, encoder_hidden_states, deep_features) -> noise_pred."""

    def __init__(self, model: nn.Module, geometry: Geometry) -> None:
        check_splittable(model)
        super().__init__(model, geometry)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                deep_features: torch.Tensor) -> torch.Tensor:
        return unet_from_features(self.model, sample, timestep, encoder_hidden_states, deep_features)

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        h, w = self.geometry.latent_hw(height, width)
        channels = self.model.up_blocks[-2].resnets[-1].out_channels
        return [*super().input_specs(height, width, batch),
                TensorSpec(CachePlan.feature, (batch, channels, h, w), "float32")]

    def example_inputs(self, height: int, width: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """The full UNet's features for the same inputs, so the parity check sees realistic activations."""
        gen = torch.Generator().manual_seed(seed)
        sample, timestep, context = (self._example_tensor(spec, gen)
                                     for spec in UNetDenoiser.input_specs(self, height, width, batch))
        with torch.no_grad():
            _, features = unet_with_features(self.model, sample, timestep, context)
        return sample, timestep, context, features


CACHED_DENOISERS.register("unet")((CachingUNetDenoiser, ShallowUNetDenoiser))
