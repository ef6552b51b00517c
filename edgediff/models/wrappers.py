"""Export wrappers: each component as an ``nn.Module`` with plain tensor inputs and outputs.

Exporters and runtimes see only these signatures, never diffusers' keyword arguments or output
objects, so one set of names (``sample``, ``timestep``, ``encoder_hidden_states``, ``latents``, ``image``)
holds across every family and format. Work that every caller would otherwise repeat (learned-sigma
channel split, VAE scaling, mapping pixels to [0, 1]) happens inside the graph, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgediff.models.types import Geometry


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int64"


class ExportWrapper(nn.Module):
    """Base: subclasses declare their I/O and make example inputs for a given image size."""

    output_names: tuple[str, ...] = ()

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        raise NotImplementedError

    def example_inputs(self, height: int, width: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Inputs of the right shapes and a realistic range (used for tracing and the parity check)."""
        gen = torch.Generator().manual_seed(seed)
        tensors = []
        for spec in self.input_specs(height, width, batch):
            tensors.append(self._example_tensor(spec, gen))
        return tuple(tensors)

    def _example_tensor(self, spec: TensorSpec, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(spec.shape, generator=gen)


class TextEncoderWrapper(ExportWrapper):
    """Token ids -> the hidden states the denoiser cross-attends to (``last_hidden_state``)."""

    output_names = ("encoder_hidden_states",)

    def __init__(self, encoder: nn.Module, geometry: Geometry, vocab_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.geometry = geometry
        self.vocab_size = vocab_size

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids).last_hidden_state

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        return [TensorSpec("input_ids", (batch, self.geometry.text_max_length), "int64")]

    def _example_tensor(self, spec: TensorSpec, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.vocab_size, spec.shape, generator=gen, dtype=torch.int64)


class _DenoiserBase(ExportWrapper):
    output_names = ("noise_pred",)

    def __init__(self, model: nn.Module, geometry: Geometry) -> None:
        super().__init__()
        self.model = model
        self.geometry = geometry

    def _latent_spec(self, height: int, width: int, batch: int) -> TensorSpec:
        h, w = self.geometry.latent_hw(height, width)
        return TensorSpec("sample", (batch, self.geometry.latent_channels, h, w), "float32")

    def _example_tensor(self, spec: TensorSpec, gen: torch.Generator) -> torch.Tensor:
        if spec.name == "timestep":
            # A mid-range timestep exercises both the noise and the signal paths.
            return torch.full(spec.shape, 499.0)
        return torch.randn(spec.shape, generator=gen)

    def _drop_learned_sigma(self, out: torch.Tensor) -> torch.Tensor:
        # DiT/PixArt predict [eps, variance] stacked on channels; samplers use eps only.
        return out[:, : self.geometry.latent_channels]


class UNetDenoiser(_DenoiserBase):
    """UNet2DConditionModel (SD 1.x/2.x/Turbo): (sample, timestep, encoder_hidden_states) -> noise_pred."""

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.model(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        g = self.geometry
        return [
            self._latent_spec(height, width, batch),
            TensorSpec("timestep", (batch,), "float32"),
            TensorSpec("encoder_hidden_states", (batch, g.text_max_length, g.text_hidden_size), "float32"),
        ]


class PixArtDenoiser(_DenoiserBase):
    """PixArtTransformer2DModel: text-conditioned DiT; resolution/aspect conditioning baked in as constants.

    PixArt-alpha 1024 conditions on image resolution and aspect ratio; with fixed export shapes these
    are constants of the graph (derived from the latent shape), not inputs.
    """

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        out = self.model(sample, encoder_hidden_states=encoder_hidden_states, timestep=timestep,
                         added_cond_kwargs=self.added_conditions(sample), return_dict=False)[0]
        return self._drop_learned_sigma(out)

    def added_conditions(self, sample: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """``added_cond_kwargs`` for ``adaln_single``: resolution and aspect ratio as graph constants, or none."""
        batch, _, h, w = sample.shape
        if not getattr(self.model, "use_additional_conditions", False):
            return {"resolution": None, "aspect_ratio": None}
        scale = self.geometry.vae_scale_factor
        return {
            "resolution": sample.new_tensor([[h * scale, w * scale]]).expand(batch, 2),
            "aspect_ratio": sample.new_tensor([[h / w]]).expand(batch, 1),
        }

    input_specs = UNetDenoiser.input_specs


class DiTDenoiser(_DenoiserBase):
    """DiTTransformer2DModel: class-conditional; (sample, timestep, class_labels) -> noise_pred."""

    def __init__(self, model: nn.Module, geometry: Geometry, num_classes: int) -> None:
        super().__init__(model, geometry)
        self.num_classes = num_classes

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        out = self.model(sample, timestep=timestep, class_labels=class_labels, return_dict=False)[0]
        return self._drop_learned_sigma(out)

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        return [
            self._latent_spec(height, width, batch),
            TensorSpec("timestep", (batch,), "float32"),
            TensorSpec("class_labels", (batch,), "int64"),
        ]

    def _example_tensor(self, spec: TensorSpec, gen: torch.Generator) -> torch.Tensor:
        if spec.name == "class_labels":
            # The last label is the null class used for classifier-free guidance.
            return torch.randint(0, self.num_classes + 1, spec.shape, generator=gen, dtype=torch.int64)
        return super()._example_tensor(spec, gen)


class VaeDecoderWrapper(ExportWrapper):
    """Model-space latents -> RGB image in [0, 1], NCHW (unscaling and clamping inside the graph)."""

    output_names = ("image",)

    def __init__(self, vae: nn.Module, geometry: Geometry) -> None:
        super().__init__()
        self.vae = vae
        self.geometry = geometry

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        image = self.vae.decode(latents / g.vae_scaling_factor + g.vae_shift_factor, return_dict=False)[0]
        return (image / 2 + 0.5).clamp(0, 1)

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        h, w = self.geometry.latent_hw(height, width)
        return [TensorSpec("latents", (batch, self.geometry.latent_channels, h, w), "float32")]


DENOISER_WRAPPERS = {"unet": UNetDenoiser, "pixart": PixArtDenoiser, "dit": DiTDenoiser}
