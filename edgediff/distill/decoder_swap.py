"""``--decoder tiny|PATH``: a model whose ``vae_decoder`` is a distilled ``TinyDecoder``.

The stand-in is checked against the model before any export: latent channels, the VAE's spatial
scale, and, when both sides record it, that it was distilled from this model's VAE weights (a
decoder trained for another VAE decodes garbage while passing every parity check).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from edgediff.distill.stand_ins import StandInOption, source_folder
from edgediff.errors import EdgeDiffError
from edgediff.models.diffusers_folder import TINY_DECODER_FOLDER
from edgediff.models.hashing import sha256_file
from edgediff.models.types import Geometry, Model
from edgediff.models.wrappers import ExportWrapper, TensorSpec

SHIPPED = "tiny"
SHIPPED_FOLDER = TINY_DECODER_FOLDER  # beside vae/ in a diffusers folder; left out of the model's own hash
VAE_WEIGHTS = Path("vae") / "diffusion_pytorch_model.safetensors"


class TinyDecoderWrapper(ExportWrapper):
    """The stock decoder wrapper's signature (``latents`` -> ``image`` in [0, 1]) over a ``TinyDecoder``."""

    output_names = ("image",)

    def __init__(self, decoder: torch.nn.Module, geometry: Geometry) -> None:
        super().__init__()
        self.decoder = decoder
        self.geometry = geometry

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents).clamp(0, 1)

    def input_specs(self, height: int, width: int, batch: int) -> list[TensorSpec]:
        h, w = self.geometry.latent_hw(height, width)
        return [TensorSpec("latents", (batch, self.geometry.latent_channels, h, w), "float32")]


DECODER_OPTION = StandInOption(
    flag="--decoder", shipped_word=SHIPPED, what=f"tiny decoder ({SHIPPED_FOLDER}/)",
    holds="a distilled decoder's config.json and model.safetensors", train_stage="tiny-decoder")


def decoder_folder(model: Model, choice: str) -> Path:
    """``tiny``: the decoder the model ships in ``vae_decoder_tiny/``; anything else: a folder path."""
    source = source_folder(model)
    return DECODER_OPTION.resolve(model, choice, None if source is None else source / SHIPPED_FOLDER)


def check_decoder_fits(model: Model, folder: Path) -> dict[str, Any]:
    """Refuse a decoder that cannot read this model's latents; returns what the manifest records of it."""
    from edgediff.distill.tiny_decoder import read_tiny_decoder_config, weights_sha256

    config = read_tiny_decoder_config(folder)
    g = model.geometry
    if config.latent_channels != g.latent_channels or config.upscale != g.vae_scale_factor:
        raise EdgeDiffError(f"the decoder in {folder} reads {config.latent_channels}-channel latents at 1/{config.upscale} "
                            f"scale, but {model.source} makes {g.latent_channels} channels at 1/{g.vae_scale_factor}; "
                            "use a decoder distilled from this model's VAE")
    source = source_folder(model)
    if config.teacher_sha256 and source is not None and (source / VAE_WEIGHTS).is_file():
        actual = sha256_file(source / VAE_WEIGHTS)
        if actual != config.teacher_sha256:
            raise EdgeDiffError(f"the decoder in {folder} was distilled from another VAE (sha256 "
                                f"{config.teacher_sha256[:12]}, this model's is {actual[:12]}); distil one from this model")
    return {"kind": "tiny", "folder": str(folder), "config": config.to_json(), "sha256": weights_sha256(folder)}


def with_tiny_decoder(model: Model, folder: Path) -> Model:
    """``model`` with ``vae_decoder`` built from the tiny decoder in ``folder`` (checked first)."""
    record = check_decoder_fits(model, folder)

    def build() -> TinyDecoderWrapper:
        from edgediff.distill.tiny_decoder import load_tiny_decoder

        return TinyDecoderWrapper(load_tiny_decoder(folder), model.geometry).eval()

    factories = dict(model.component_factories) | {"vae_decoder": build}
    source_hash = hashlib.sha256(f"{model.source_hash}:{record['sha256']}".encode()).hexdigest()
    return replace(model, component_factories=factories, source_hash=source_hash)
