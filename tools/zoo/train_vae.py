"""Stage ``vae``: train the AutoencoderKL (64x64x3 <-> 16x16x4) on renders.

Loss: pixel MSE plus a small KL term (1e-5 per latent element), as SD's VAE without the GAN and
LPIPS terms, which flat-coloured renders do not need. Reports PSNR of mode-latent reconstructions
on held-out renders, and stores ``scaling_factor`` = 1 / std of the latents (Rombach et al. 2022,
sec. 4.3) in the checkpoint's metadata.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgediff.eval.metrics import psnr
from tools.zoo.common import Log, batch_images, device, ema_update, load_into, save_half, seed_everything
from tools.zoo.configs import VAE
from tools.zoo.data import load


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--heldout", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--kl", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=1e9)
    p.add_argument("--init", type=Path, default=None, help="vae.safetensors to continue from")
    p.add_argument(
        "--decoder-only",
        action="store_true",
        help="freeze the encoder (latents, scaling factor and denoisers trained on them stay valid)",
    )


def decode_uint8(vae, latents: torch.Tensor) -> np.ndarray:
    x = vae.decode(latents).sample.float()
    return ((x / 2 + 0.5).clamp(0, 1) * 255).round().permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def measure(vae, images: np.ndarray, train_images: torch.Tensor) -> dict[str, float]:
    dev = device()
    vae.eval()
    x = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
    recon, lat = [], []
    for i in range(0, len(x), 500):
        z = vae.encode(batch_images(x, torch.arange(i, min(i + 500, len(x)), device=dev))).latent_dist.mode()
        recon.append(decode_uint8(vae, z))
    for i in range(0, min(len(train_images), 20000), 500):
        idx = torch.arange(i, i + 500, device=dev)
        lat.append(vae.encode(batch_images(train_images, idx)).latent_dist.mode().float())
    lat_t = torch.cat(lat)
    vae.train()
    p = psnr(np.concatenate(recon), images)
    return {
        "psnr_mean": float(p.mean()),
        "psnr_min": float(p.min()),
        "psnr_p05": float(np.percentile(p, 5)),
        "latent_mean": float(lat_t.mean()),
        "latent_std": float(lat_t.std()),
        "scaling_factor": float(1.0 / lat_t.std()),
    }


def run(args: argparse.Namespace) -> None:
    from diffusers import AutoencoderKL

    gen = seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    dev = device()
    images, _, _ = load(args.data)
    heldout, _, _ = load(args.heldout)
    data = torch.from_numpy(np.array(images)).to(dev)
    vae = AutoencoderKL(**VAE)
    init_meta = load_into(vae, args.init) if args.init is not None else {}
    if args.decoder_only and args.init is None:
        raise SystemExit("--decoder-only needs --init")
    vae = vae.to(dev)
    ema = AutoencoderKL(**VAE).to(dev)
    ema.load_state_dict(vae.state_dict())
    ema.requires_grad_(False)
    if args.decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    lr_at = lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + np.cos(np.pi * min(s / args.steps, 1.0)))  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    name = "vae_decoder" if args.decoder_only else "vae"
    log = Log(args.out / f"{name}_log.json", name, {k: str(v) for k, v in vars(args).items()})
    log.record("parameters", sum(p.numel() for p in vae.parameters()))
    step = 0
    for step in range(args.steps):
        idx = torch.randint(len(data), (args.batch,), device=dev, generator=gen)
        x = batch_images(data, idx)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            with torch.set_grad_enabled(not args.decoder_only):
                post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, device=dev, generator=gen)
            rec = vae.decode(z).sample
        mse = F.mse_loss(rec.float(), x)
        kl = post.kl().mean() / post.mean[0].numel()
        loss = mse + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema_update(ema, vae, 0.999 if step > 500 or args.init is not None else 0.0)
        if step % 50 == 0:
            log.scalar("mse", step, mse.item())
            log.scalar("kl", step, kl.item())
        if step % 500 == 0:
            print(f"vae step {step} mse {mse.item():.5f} kl {kl.item():.3f} {log.elapsed():.0f}s", flush=True)
        if log.elapsed() > args.max_minutes * 60:
            print(f"vae: time limit at step {step}", flush=True)
            break
    log.record("steps_done", step + 1)
    log.record("train_s", round(log.elapsed(), 1))
    print(f"vae: {step + 1} steps in {log.elapsed():.0f}s", flush=True)
    result = measure(ema, heldout[:2000], data)
    if args.decoder_only:  # the encoder is unchanged: keep the factor the denoisers were trained with
        result["scaling_factor"] = float(init_meta["scaling_factor"])
    log.record("heldout", result)
    print(f"vae held-out {result}", flush=True)
    save_half(ema, args.out / "vae.safetensors", {"scaling_factor": repr(result["scaling_factor"])})
    log.save()
