"""Stage ``tiny-decoder``: distil the shipped VAE decoder into ``TinyDecoder`` configs (one process each).

Training latents, half and half per batch:
- renders encoded by the shipped VAE encoder, a fresh posterior sample each time (the latents the
  denoisers were trained to produce);
- final latents of the shipped UNet and DiT at 1, 2, 4 and 30 DDIM steps, CFG 5, on the stream's
  prompts: what a bundle actually decodes, off the encoder's distribution at few steps.
Held-out PSNR vs the teacher decoder is reported per kind on prompts/renders outside the training set.
Output: ``<out>/<name>/{config.json,model.safetensors}`` and ``<out>/<name>_log.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from edgediff.distill.decoder_swap import VAE_WEIGHTS
from edgediff.distill.decoder_training import distill_decoder
from edgediff.distill.tiny_decoder import TinyDecoderConfig, load_tiny_decoder, save_tiny_decoder
from edgediff.models.hashing import sha256_file
from edgediff.zoo.paths import resolve_model_dir
from tools.zoo.common import batch_images, device, seed_everything
from tools.zoo.data import load

SAMPLED_STEPS = (1, 2, 4, 30)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="renders (tools.zoo.train data), prompts reused")
    p.add_argument("--heldout", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--channels", type=int, nargs="+", required=True)
    p.add_argument("--blocks", type=int, nargs="+", required=True)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--sampled-per-setting", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=1e9)
    p.add_argument("--init", type=Path, default=None, help="a decoder folder of the same config to continue from")
    p.add_argument("--edge-weight", type=float, default=0.0, help="L1 on image differences (outlines), see distill_decoder")


@torch.no_grad()
def _encode(vae, images_u8: torch.Tensor, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = [], []
    for start in range(0, len(images_u8), 1000):
        post = vae.encode(batch_images(images_u8, torch.arange(start, min(start + 1000, len(images_u8)),
                                                               device=images_u8.device))).latent_dist
        means.append(post.mean * scaling)
        stds.append(post.std * scaling)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def _sampled(prompts: list[str], count: int, seed: int) -> dict[int, torch.Tensor]:
    """Final latents of both zoo denoisers per step count (``count`` per model and setting)."""
    from edgediff.zoo.sampler import ZooSampler

    out: dict[int, list[torch.Tensor]] = {s: [] for s in SAMPLED_STEPS}
    for offset, model in enumerate(("zoo:shapes-unet", "zoo:shapes-dit")):
        sampler = ZooSampler.from_folder(model, device())
        for steps in SAMPLED_STEPS:
            for start in range(0, count, 1024):
                chunk = prompts[start : start + min(1024, count - start)]
                seeds = [seed + offset * 10_000_000 + steps * 100_000 + start + i for i in range(len(chunk))]
                out[steps].append(sampler.sample_latents(chunk, seeds, steps, 5.0).float())
        del sampler
    return {s: torch.cat(v) for s, v in out.items()}


def run(args: argparse.Namespace) -> None:
    from diffusers import AutoencoderKL

    seed_everything(args.seed)
    dev = device()
    folder = resolve_model_dir("zoo:shapes-unet")
    vae = AutoencoderKL.from_pretrained(folder / "vae").to(dev).eval().requires_grad_(False)
    scaling = float(vae.config.scaling_factor)
    images, prompts, _ = load(args.data)
    held_images, held_prompts, _ = load(args.heldout)
    mean, std = _encode(vae, torch.from_numpy(np.array(images)).to(dev), scaling)
    held_mean, _ = _encode(vae, torch.from_numpy(np.array(held_images[:2000])).to(dev), scaling)
    sampled = _sampled(prompts, args.sampled_per_setting, args.seed)
    held_sampled = _sampled(held_prompts, min(512, args.sampled_per_setting), args.seed + 1)
    bank = torch.cat(list(sampled.values()))
    print(f"tiny decoder data: {len(mean)} encoded renders, {len(bank)} sampled latents", flush=True)

    def teacher(latents: torch.Tensor) -> torch.Tensor:
        return (vae.decode(latents.float() / scaling).sample / 2 + 0.5).clamp(0, 1)

    def sample_latents(batch: int, generator: torch.Generator) -> torch.Tensor:
        half = batch // 2
        enc = torch.randint(len(mean), (half,), device=dev, generator=generator)
        noise = torch.randn(mean[enc].shape, device=dev, generator=generator)
        smp = torch.randint(len(bank), (batch - half,), device=dev, generator=generator)
        return torch.cat([mean[enc] + std[enc] * noise, bank[smp]])

    teacher_sha = sha256_file(folder / VAE_WEIGHTS)
    config = TinyDecoderConfig(channels=tuple(args.channels), blocks=tuple(args.blocks), teacher_sha256=teacher_sha)
    heldout = {"encoded_renders": held_mean} | {f"unet+dit_{s}_steps": v for s, v in held_sampled.items()}
    init = load_tiny_decoder(args.init) if args.init is not None else None
    decoder, log = distill_decoder(teacher, sample_latents, config, steps=args.steps, device=dev, batch=args.batch,
                                   lr=args.lr, seed=args.seed, heldout=heldout, max_minutes=args.max_minutes, init=init,
                                   edge_weight=args.edge_weight)
    save_tiny_decoder(decoder.cpu(), args.out / args.name)
    record = {"stage": "tiny-decoder", "args": {k: str(v) for k, v in vars(args).items()},
              "config": config.to_json(), "steps_done": log.steps_done, "train_s": log.seconds,
              "heldout_psnr_db": log.heldout_psnr, "curves": {"loss": {"step": log.steps, "value": log.loss}},
              "parameters": sum(p.numel() for p in decoder.parameters())}
    (args.out / f"{args.name}_log.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"tiny decoder {args.name}: {log.steps_done} steps, held-out PSNR {log.heldout_psnr}", flush=True)
