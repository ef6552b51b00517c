"""Δ-cache for ``PixArtTransformer2DModel``: the full transformer, which also returns what its back blocks add
to the token stream, and the shallow transformer (embeddings, the front blocks, the output head) that adds it back.

A transformer has no skip connections to keep, so DeepCache's UNet split does not carry over; Δ-DiT
(Chen et al., "Δ-DiT: A Training-Free Acceleration Method Tailored for Diffusion Transformers", 2024,
Sec. 3.2) caches the *deviation* a run of blocks makes, ``Δ = h_out - h_in``, instead of their output:
the front blocks are recomputed every step and the stale Δ is added on top of fresh front features, which
keeps the step's own timestep and sample in the result. Caching the back blocks is the paper's choice for
the early, outline-forming steps; with 1-4 step schedules every step is early, and on the zoo DiT it kept
adherence at every interval measured (docs/benchmarks/cache_zoo_shapes-dit_intel-cpu.md).

Both halves re-run diffusers' ``PixArtTransformer2DModel.forward`` in its order and with its arguments, so
the full half is the stock transformer (tests check it output for output) and the shallow half, fed the full
half's Δ from the same step, reproduces the full output to rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from edgediff.cache.plan import CachePlan
from edgediff.cache.splits import CACHED_DENOISERS
from edgediff.errors import TargetError
from edgediff.models.types import Geometry
from edgediff.models.wrappers import PixArtDenoiser, TensorSpec, UNetDenoiser

# Share of the blocks the shallow graph recomputes. On the zoo DiT (10 blocks) one, two or three front blocks
# kept the same adherence and PSNR at 30 steps (intervals 2-4), so the cheapest: 1 of 10, 3 of PixArt-alpha's 28.
FRONT_SHARE = 0.1


def front_blocks(num_layers: int) -> int:
    """How many leading transformer blocks the shallow graph runs (at least one, never all)."""
    if num_layers < 2:
        raise TargetError(f"--cache-interval needs a transformer of 2 or more blocks to split; this one has {num_layers}: "
                          "build without --cache-interval")
    return min(num_layers - 1, max(1, round(num_layers * FRONT_SHARE)))


def _embed(model: nn.Module, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
           added: dict[str, torch.Tensor | None]) -> tuple[torch.Tensor, ...]:
    """(tokens, block modulation, embedded timestep, projected caption): the forward's preamble."""
    batch = sample.shape[0]
    tokens = model.pos_embed(sample)  # (B, N, D), N = (H/p)(W/p)
    modulation, embedded_timestep = model.adaln_single(timestep, added, batch_size=batch, hidden_dtype=tokens.dtype)
    if model.caption_projection is not None:
        context = model.caption_projection(context).view(batch, -1, tokens.shape[-1])  # (B, L, D)
    return tokens, modulation, embedded_timestep, context


def _blocks(blocks: nn.ModuleList, tokens: torch.Tensor, modulation: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        tokens = block(tokens, attention_mask=None, encoder_hidden_states=context, encoder_attention_mask=None,
                       timestep=modulation, cross_attention_kwargs=None, class_labels=None)
    return tokens


def _head(model: nn.Module, tokens: torch.Tensor, embedded_timestep: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Final adaptive norm, projection and unpatchify, as the stock forward ends."""
    shift, scale = (model.scale_shift_table[None] + embedded_timestep[:, None]).chunk(2, dim=1)
    tokens = model.proj_out(model.norm_out(tokens) * (1 + scale) + shift)  # (B, N, p*p*C_out)
    p, c = model.config.patch_size, model.out_channels
    tokens = tokens.reshape(-1, height // p, width // p, p, p, c)
    return torch.einsum("nhwpqc->nchpwq", tokens).reshape(-1, c, height, width)


class CachingPixArtDenoiser(PixArtDenoiser):
    """The full denoiser of a cached bundle: (sample, timestep, encoder_hidden_states) -> (noise_pred, deep_features).

    ``deep_features`` is Δ, the back blocks' contribution to the token stream: (B, N, D)."""

    output_names = ("noise_pred", CachePlan.feature)

    def __init__(self, model: nn.Module, geometry: Geometry, front: int | None = None) -> None:
        super().__init__(model, geometry)
        self.front = front_blocks(len(model.transformer_blocks)) if front is None else front

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, modulation, embedded, context = _embed(self.model, sample, timestep, encoder_hidden_states,
                                                       self.added_conditions(sample))
        blocks = self.model.transformer_blocks
        front = _blocks(blocks[: self.front], tokens, modulation, context)
        back = _blocks(blocks[self.front:], front, modulation, context)
        out = _head(self.model, back, embedded, sample.shape[-2], sample.shape[-1])
        return self._drop_learned_sigma(out), back - front


class ShallowPixArtDenoiser(PixArtDenoiser):
    """The cached step: (sample, timestep, encoder_hidden_states, deep_features) -> noise_pred."""

    def __init__(self, model: nn.Module, geometry: Geometry, front: int | None = None) -> None:
        super().__init__(model, geometry)
        self.front = front_blocks(len(model.transformer_blocks)) if front is None else front

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                deep_features: torch.Tensor) -> torch.Tensor:
        tokens, modulation, embedded, context = _embed(self.model, sample, timestep, encoder_hidden_states,
                                                       self.added_conditions(sample))
        front = _blocks(self.model.transformer_blocks[: self.front], tokens, modulation, context)
        out = _head(self.model, front + deep_features, embedded, sample.shape[-2], sample.shape[-1])
        return self._drop_learned_sigma(out)

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        h, w = self.geometry.latent_hw(height, width)
        patch, config = self.model.config.patch_size, self.model.config
        tokens, dim = (h // patch) * (w // patch), config.num_attention_heads * config.attention_head_dim
        return [*super().input_specs(height, width, batch), TensorSpec(CachePlan.feature, (batch, tokens, dim), "float32")]

    def example_inputs(self, height: int, width: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """The full transformer's Δ for the same inputs, so the parity check sees realistic activations."""
        gen = torch.Generator().manual_seed(seed)
        sample, timestep, context = (self._example_tensor(spec, gen)
                                     for spec in UNetDenoiser.input_specs(self, height, width, batch))
        with torch.no_grad():
            _, delta = CachingPixArtDenoiser(self.model, self.geometry, self.front)(sample, timestep, context)
        return sample, timestep, context, delta


CACHED_DENOISERS.register("pixart")((CachingPixArtDenoiser, ShallowPixArtDenoiser))
