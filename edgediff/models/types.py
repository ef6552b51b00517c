"""The ``Model`` type: a diffusion pipeline seen as separately exportable components.

Components are built lazily (a factory per component) because real-scale architectures are large:
PixArt-alpha's T5-XXL text encoder alone is 4.7B parameters, so exporting the transformer must not
require materialising the text encoder too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Conditioning = Literal["text", "class"]


@dataclass(frozen=True)
class Geometry:
    """Latent geometry and conditioning shapes; everything an exporter needs to make example inputs."""

    latent_channels: int
    vae_scale_factor: int
    text_max_length: int  # tokens per prompt (0 for class-conditional models)
    text_hidden_size: int  # width of the encoder states the denoiser cross-attends to
    vae_scaling_factor: float
    vae_shift_factor: float = 0.0

    def latent_hw(self, height: int, width: int) -> tuple[int, int]:
        return height // self.vae_scale_factor, width // self.vae_scale_factor


@dataclass(frozen=True)
class SamplingDefaults:
    """The sampling a model was made for (e.g. SD-Turbo: 1 step, no guidance, 512x512)."""

    steps: int
    guidance_scale: float
    height: int
    width: int


@dataclass
class Model:
    """A loaded diffusion pipeline.

    ``component_factories`` maps a component name (``text_encoder``, ``denoiser``, ``vae_decoder``)
    to a zero-argument function building its export wrapper (``edgediff.models.wrappers``) in eval mode.
    """

    source: str  # the reference the user gave: a folder, "zoo:NAME" or "config:NAME"
    source_hash: str  # sha256 over the weights/config that define the model
    family: str  # "unet", "pixart", "dit": which wrappers and example inputs apply
    conditioning: Conditioning
    geometry: Geometry
    defaults: SamplingDefaults
    scheduler_class: str  # diffusers class name, e.g. "EulerDiscreteScheduler"
    scheduler_config: dict[str, Any]
    tokenizer_json: str | None  # a `tokenizers` JSON document; None for class-conditional models
    pad_token_id: int  # prompts are padded to ``geometry.text_max_length`` with this id
    component_factories: dict[str, Callable[[], Any]] = field(default_factory=dict)
    num_classes: int = 0  # class-conditional models only

    @property
    def component_names(self) -> list[str]:
        return list(self.component_factories)

    def build_component(self, name: str) -> Any:
        return self.component_factories[name]()
