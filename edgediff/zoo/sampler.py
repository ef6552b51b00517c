"""The torch reference sampler for zoo pipelines: the generic text-to-image loop, spelled out.

    cond   = text_encoder(ids padded to model_max_length).last_hidden_state   ("" for unconditional)
    eps    = denoiser(latents, t, cond), classifier-free guidance, DDIM step (diffusers' scheduler)
    image  = vae.decode(latents / scaling_factor) in [-1, 1] -> uint8

Any runtime that reproduces these lines reproduces the zoo models; the evaluator compares them
against this loop. Initial noise comes from numpy (``initial_latents``) so that torch and torch-free
pipelines start from the same latents for the same seed and can be compared image by image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgediff.zoo.paths import resolve_model_dir

LATENT_CHANNELS = 4


def initial_latents(seeds: Sequence[int], shape: tuple[int, int, int]) -> np.ndarray:
    """Standard normal latents (N, C, H, W) float32; image ``i`` from ``np.random.default_rng(seeds[i])``."""
    return np.stack([np.random.default_rng(int(s)).standard_normal(shape, dtype=np.float32) for s in seeds])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """VAE output (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), as diffusers' image processor rounds."""
    x = ((images.float() / 2 + 0.5).clamp(0, 1) * 255).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()


class ZooSampler:
    """A loaded pipeline (text encoder, denoiser, VAE, DDIM scheduler, tokenizer) and its defaults."""

    def __init__(
        self,
        text_encoder: torch.nn.Module,
        denoiser: torch.nn.Module,
        vae: Any,
        scheduler: Any,
        encode_prompts: Any,
        *,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self.text_encoder = text_encoder
        self.denoiser = denoiser
        self.vae = vae
        self.scheduler = scheduler
        self.encode_prompts = encode_prompts  # list[str] -> LongTensor ids (N, max_length)
        self.defaults = {"default_steps": 30, "default_guidance_scale": 5.0, "height": 64, "width": 64}
        self.defaults.update(defaults or {})
        self.is_transformer = "Transformer" in type(denoiser).__name__

    @classmethod
    def from_folder(
        cls, model: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> ZooSampler:
        """Load ``zoo:NAME`` or a folder in the zoo layout; fp16 weights are cast to ``dtype``."""
        from diffusers import AutoencoderKL, DDIMScheduler, PixArtTransformer2DModel, UNet2DConditionModel
        from tokenizers import Tokenizer
        from transformers import CLIPTextModel

        folder = resolve_model_dir(model)
        index = json.loads((folder / "model_index.json").read_text())
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").to(device, dtype).eval()
        if "unet" in index:
            denoiser = UNet2DConditionModel.from_pretrained(folder / "unet")
        else:
            denoiser = PixArtTransformer2DModel.from_pretrained(folder / "transformer")
        denoiser = denoiser.to(device, dtype).eval()
        vae = AutoencoderKL.from_pretrained(folder / "vae").to(device, dtype).eval()
        scheduler = DDIMScheduler.from_pretrained(folder / "scheduler")
        tok_config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
        max_length = int(tok_config["model_max_length"])
        pad_id = tokenizer.token_to_id(tok_config["pad_token"])
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tok_config["pad_token"], length=max_length)
        tokenizer.enable_truncation(max_length=max_length)

        def encode_prompts(prompts: list[str]) -> torch.Tensor:
            return torch.tensor([e.ids for e in tokenizer.encode_batch(prompts)], dtype=torch.long)

        extra = folder / "edgediff.json"
        defaults = json.loads(extra.read_text()) if extra.exists() else {}
        return cls(text_encoder, denoiser, vae, scheduler, encode_prompts, defaults=defaults)

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.denoiser.parameters()).dtype

    def denoise(self, latents: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One noise prediction; the call each denoiser kind expects."""
        timestep = t.expand(latents.shape[0]).to(latents.device)
        if self.is_transformer:
            added = {"resolution": None, "aspect_ratio": None}
            return self.denoiser(latents, encoder_hidden_states=cond, timestep=timestep, added_cond_kwargs=added).sample
        return self.denoiser(latents, timestep, encoder_hidden_states=cond).sample

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        """uint8 images (N, 64, 64, 3) for ``prompts``, image ``i`` from seed ``seeds[i]``."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        steps = int(steps or self.defaults["default_steps"])
        scale = float(self.defaults["default_guidance_scale"] if guidance_scale is None else guidance_scale)
        out = [
            self._generate_batch(list(prompts[i : i + batch_size]), list(seeds[i : i + batch_size]), steps, scale)
            for i in range(0, len(prompts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, 64, 64, 3), np.uint8)

    def _generate_batch(self, prompts: list[str], seeds: list[int], steps: int, scale: float) -> np.ndarray:
        latents = self.sample_latents(prompts, seeds, steps, scale)
        images = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return to_uint8(images)

    @torch.no_grad()
    def sample_latents(self, prompts: list[str], seeds: list[int], steps: int, scale: float) -> torch.Tensor:
        """The final model-space latents of one batch (what the VAE decoder reads)."""
        device, dtype = self.device, self.dtype
        n = len(prompts)
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        shape = (LATENT_CHANNELS, self.defaults["height"] // factor, self.defaults["width"] // factor)
        ids = self.encode_prompts(prompts + [""] * n).to(device)
        cond = self.text_encoder(ids).last_hidden_state.to(dtype)  # (2N, L, D): prompts, then unconditional
        self.scheduler.set_timesteps(steps)
        latents = torch.from_numpy(initial_latents(seeds, shape)).to(device, dtype) * self.scheduler.init_noise_sigma
        for t in self.scheduler.timesteps:
            model_in = self.scheduler.scale_model_input(torch.cat([latents, latents]), t)
            eps_cond, eps_uncond = self.denoise(model_in, t, cond).chunk(2)
            eps = eps_uncond + scale * (eps_cond - eps_uncond)
            latents = self.scheduler.step(eps, t, latents).prev_sample
        return latents
