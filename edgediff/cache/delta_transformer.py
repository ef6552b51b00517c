"""Δ-cache for diffusion transformers (PixArt, DiT): the full transformer, which also returns what its back
blocks add to the token stream, and the shallow transformer (embeddings, the front blocks, the output head)
that adds it back.

A transformer has no skip connections to keep, so DeepCache's UNet split does not carry over; Δ-DiT
(Chen et al., "Δ-DiT: A Training-Free Acceleration Method Tailored for Diffusion Transformers", 2024,
Sec. 3.2) caches the *deviation* a run of blocks makes, ``Δ = h_out - h_in``, instead of their output:
the front blocks are recomputed every step and the stale Δ is added on top of fresh front features, which
keeps the step's own timestep and sample in the result. Caching the back blocks is the paper's choice for
the early, outline-forming steps. On the zoo DiT at its 30 steps it kept adherence at intervals 2-4; at 4
steps, where adjacent steps are far apart, it did not (docs/benchmarks/cache_zoo_shapes-dit_intel-cpu*.md).

Both halves re-run diffusers' ``forward`` of each family in its order and with its arguments (a family's
``_Parts``: preamble, block arguments, output head), so the full half is the stock transformer (tests check
it output for output) and the shallow half, fed the full half's Δ from the same step, reproduces the full
output to rounding.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from edgediff.cache.plan import CachePlan
from edgediff.cache.splits import CACHED_DENOISERS
from edgediff.errors import TargetError
from edgediff.models.assemble import dit_num_classes
from edgediff.models.types import Geometry
from edgediff.models.wrappers import DiTDenoiser, PixArtDenoiser, TensorSpec

# Share of the blocks the shallow graph recomputes. On the zoo DiT (10 blocks) one, two or three front blocks
# kept the same adherence and PSNR at 30 steps (intervals 2-4), so the cheapest: 1 of 10, 3 of PixArt-alpha's 28.
FRONT_SHARE = 0.1

State = dict[str, Any]  # what a family's blocks and head read besides the tokens


def front_blocks(num_layers: int) -> int:
    """How many leading transformer blocks the shallow graph runs (at least one, never all)."""
    if num_layers < 2:
        raise TargetError(f"--cache-interval needs a transformer of 2 or more blocks to split; this one has {num_layers}: "
                          "build without --cache-interval")
    return min(num_layers - 1, max(1, round(num_layers * FRONT_SHARE)))


def _unpatchify(model: nn.Module, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    p, c = model.config.patch_size, model.out_channels
    tokens = tokens.reshape(-1, height // p, width // p, p, p, c)  # (B, H/p, W/p, p, p, C_out)
    return torch.einsum("nhwpqc->nchpwq", tokens).reshape(-1, c, height, width)


class _PixArtParts:
    """``PixArtTransformer2DModel.forward``: caption projection, ``adaln_single`` modulation, final adaptive norm."""

    @staticmethod
    def embed(wrapper: nn.Module, sample: torch.Tensor, timestep: torch.Tensor,
              context: torch.Tensor) -> tuple[torch.Tensor, State]:
        model, batch = wrapper.model, sample.shape[0]
        tokens = model.pos_embed(sample)  # (B, N, D), N = (H/p)(W/p)
        modulation, embedded = model.adaln_single(timestep, wrapper.added_conditions(sample), batch_size=batch,
                                                  hidden_dtype=tokens.dtype)
        if model.caption_projection is not None:
            context = model.caption_projection(context).view(batch, -1, tokens.shape[-1])  # (B, L, D)
        return tokens, {"modulation": modulation, "embedded": embedded, "context": context}

    @staticmethod
    def block_kwargs(state: State) -> dict[str, Any]:
        return {"encoder_hidden_states": state["context"], "timestep": state["modulation"], "class_labels": None}

    @staticmethod
    def head(model: nn.Module, tokens: torch.Tensor, state: State) -> torch.Tensor:
        shift, scale = (model.scale_shift_table[None] + state["embedded"][:, None]).chunk(2, dim=1)
        return model.proj_out(model.norm_out(tokens) * (1 + scale) + shift)  # (B, N, p*p*C_out)


class _DiTParts:
    """``DiTTransformer2DModel.forward``: blocks conditioned by (timestep, class label), the head by the first
    block's embedding of them."""

    @staticmethod
    def embed(wrapper: nn.Module, sample: torch.Tensor, timestep: torch.Tensor,
              class_labels: torch.Tensor) -> tuple[torch.Tensor, State]:
        return wrapper.model.pos_embed(sample), {"timestep": timestep, "class_labels": class_labels}

    @staticmethod
    def block_kwargs(state: State) -> dict[str, Any]:
        return {"encoder_hidden_states": None, "timestep": state["timestep"], "class_labels": state["class_labels"]}

    @staticmethod
    def head(model: nn.Module, tokens: torch.Tensor, state: State) -> torch.Tensor:
        conditioning = model.transformer_blocks[0].norm1.emb(state["timestep"], state["class_labels"],
                                                             hidden_dtype=tokens.dtype)
        shift, scale = model.proj_out_1(F.silu(conditioning)).chunk(2, dim=1)
        return model.proj_out_2(model.norm_out(tokens) * (1 + scale[:, None]) + shift[:, None])


def _blocks(blocks: nn.ModuleList, tokens: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    for block in blocks:
        tokens = block(tokens, attention_mask=None, encoder_attention_mask=None, cross_attention_kwargs=None, **kwargs)
    return tokens


class _DeltaSplit:
    """What both halves share: the family's parts and how many front blocks the shallow half runs."""

    parts: ClassVar[Any]
    model: nn.Module
    front: int

    def _choose_front(self, front: int | None) -> None:
        self.front = front_blocks(len(self.model.transformer_blocks)) if front is None else front

    def _front(self, sample: torch.Tensor, timestep: torch.Tensor,
               condition: torch.Tensor) -> tuple[torch.Tensor, State, dict[str, Any]]:
        tokens, state = self.parts.embed(self, sample, timestep, condition)
        kwargs = self.parts.block_kwargs(state)
        return _blocks(self.model.transformer_blocks[: self.front], tokens, kwargs), state, kwargs

    def _output(self, tokens: torch.Tensor, state: State, sample: torch.Tensor) -> torch.Tensor:
        out = _unpatchify(self.model, self.parts.head(self.model, tokens, state), sample.shape[-2], sample.shape[-1])
        return self._drop_learned_sigma(out)  # type: ignore[attr-defined]


class _DeltaFull(_DeltaSplit):
    """The full denoiser of a cached bundle: (sample, timestep, condition) -> (noise_pred, deep_features).

    ``deep_features`` is Δ, the back blocks' contribution to the token stream: (B, N, D)."""

    output_names = ("noise_pred", CachePlan.feature)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor,
                condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        front, state, kwargs = self._front(sample, timestep, condition)
        back = _blocks(self.model.transformer_blocks[self.front:], front, kwargs)
        return self._output(back, state, sample), back - front


class _DeltaShallow(_DeltaSplit):
    """The cached step: (sample, timestep, condition, deep_features) -> noise_pred."""

    full: ClassVar[type]

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor,
                deep_features: torch.Tensor) -> torch.Tensor:
        front, state, _ = self._front(sample, timestep, condition)
        return self._output(front + deep_features, state, sample)

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        stock = super().input_specs(height, width, batch)  # type: ignore[misc]
        h, w = self.geometry.latent_hw(height, width)  # type: ignore[attr-defined]
        config = self.model.config
        tokens, dim = (h // config.patch_size) * (w // config.patch_size), config.num_attention_heads * config.attention_head_dim
        return [*stock, TensorSpec(CachePlan.feature, (batch, tokens, dim), "float32")]

    def example_inputs(self, height: int, width: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """The full transformer's Δ for the same inputs, so the parity check sees realistic activations."""
        gen = torch.Generator().manual_seed(seed)
        stock = super().input_specs(height, width, batch)  # type: ignore[misc]
        inputs = tuple(self._example_tensor(spec, gen) for spec in stock)  # type: ignore[attr-defined]
        with torch.no_grad():
            _, delta = self.full(self.model, self.geometry, self.front)(*inputs)  # type: ignore[attr-defined]
        return (*inputs, delta)


class CachingPixArtDenoiser(_DeltaFull, PixArtDenoiser):
    parts = _PixArtParts

    def __init__(self, model: nn.Module, geometry: Geometry, front: int | None = None) -> None:
        PixArtDenoiser.__init__(self, model, geometry)
        self._choose_front(front)


class ShallowPixArtDenoiser(_DeltaShallow, PixArtDenoiser):
    parts, full = _PixArtParts, CachingPixArtDenoiser

    def __init__(self, model: nn.Module, geometry: Geometry, front: int | None = None) -> None:
        PixArtDenoiser.__init__(self, model, geometry)
        self._choose_front(front)


class CachingDiTDenoiser(_DeltaFull, DiTDenoiser):
    parts = _DiTParts

    def __init__(self, model: nn.Module, geometry: Geometry, front: int | None = None) -> None:
        DiTDenoiser.__init__(self, model, geometry, dit_num_classes(model.config))
        self._choose_front(front)


class ShallowDiTDenoiser(_DeltaShallow, DiTDenoiser):
    parts, full = _DiTParts, CachingDiTDenoiser

    def __init__(self, model: nn.Module, geometry: Geometry, front: int | None = None) -> None:
        DiTDenoiser.__init__(self, model, geometry, dit_num_classes(model.config))
        self._choose_front(front)


CACHED_DENOISERS.register("pixart")((CachingPixArtDenoiser, ShallowPixArtDenoiser))
CACHED_DENOISERS.register("dit")((CachingDiTDenoiser, ShallowDiTDenoiser))
