"""Stage ``diffusion``: train the text encoder with both denoisers (UNet and PixArt-style DiT).

Epsilon prediction on VAE latents. The text encoder is trained from scratch together with the
denoiser(s) of the first run; later runs can freeze it (``--freeze-text-encoder``), as PixArt
freezes T5, so both denoisers are conditioned on one shared encoder (shipped in both pipelines).
Choices, with why:
- min-SNR-5 loss weighting (Hang et al. 2023): converges several times faster than plain MSE;
- offset noise 0.05: lets the models change a whole image's mean colour, i.e. the background;
- 10% empty prompts: classifier-free guidance (Ho & Salimans 2022);
- EMA of all weights (0.999), which is what ships.
At the end it samples the evaluation prompts with DDIM and scores them with the classifier.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch

from edgediff.zoo.tokenizer import MAX_LENGTH
from tools.zoo.common import Log, batch_images, device, ema_update, image_grid, load_into, save_half, seed_everything
from tools.zoo.configs import DEFAULTS, DIT, SCHEDULER, UNET, VAE, text_encoder_config
from tools.zoo.data import load

ADDED = {"resolution": None, "aspect_ratio": None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--vae", type=Path, required=True, help="vae.safetensors from stage vae")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--denoisers", default="unet,dit", help="comma-separated: unet, dit")
    p.add_argument("--init", type=Path, default=None, help="folder with text_encoder/unet/transformer.safetensors")
    p.add_argument("--freeze-text-encoder", action="store_true", help="train the denoisers only (needs --init)")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-prompts", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=1e9)
    p.add_argument("--no-cuda-graphs", action="store_true", help="run the denoiser steps eagerly")


FILES = {"te": "text_encoder.safetensors", "unet": "unet.safetensors", "dit": "transformer.safetensors"}


def build(names: list[str], init: Path | None) -> dict[str, torch.nn.Module]:
    """The text encoder and the requested denoisers, from scratch or from ``init`` checkpoints."""
    from diffusers import PixArtTransformer2DModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    makers = {
        "te": lambda: CLIPTextModel(CLIPTextConfig(**text_encoder_config())),
        "unet": lambda: UNet2DConditionModel(**UNET),
        "dit": lambda: PixArtTransformer2DModel(**DIT),
    }
    models = {}
    for name in ["te", *names]:
        models[name] = makers[name]()
        if init is not None and (init / FILES[name]).exists():
            load_into(models[name], init / FILES[name])
            print(f"initialised {name} from {init / FILES[name]}", flush=True)
    return models


@torch.no_grad()
def encode_latents(vae, data: torch.Tensor, scaling: float) -> torch.Tensor:
    dev = data.device
    out = []
    for i in range(0, len(data), 1000):
        idx = torch.arange(i, min(i + 1000, len(data)), device=dev)
        out.append((vae.encode(batch_images(data, idx)).latent_dist.mode() * scaling).to(torch.bfloat16))
    return torch.cat(out)


def predict(name: str, model: torch.nn.Module, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    if name == "unet":
        return model(xt, t, encoder_hidden_states=cond).sample
    return model(xt, encoder_hidden_states=cond, timestep=t, added_cond_kwargs=ADDED).sample


class _Denoise(torch.nn.Module):
    """(xt, t, cond) -> float32 noise prediction under bf16 autocast: the unit a CUDA graph captures."""

    def __init__(self, name: str, model: torch.nn.Module) -> None:
        super().__init__()
        self.name = name
        self.model = model

    def forward(self, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=xt.is_cuda, cache_enabled=False):
            return predict(self.name, self.model, xt, t, cond).float()


def make_denoise_step(name: str, model: torch.nn.Module, batch: int, cond_grad: bool, use_graphs: bool):
    """The denoiser's forward+backward as CUDA graphs (launch overhead dominates at this model size:
    a step costs about the same at batch 256 and 1024), checked against eager; eager if that fails."""
    eager = _Denoise(name, model)
    dev = next(model.parameters()).device
    if not use_graphs or dev.type != "cuda":
        return eager
    hidden = text_encoder_config()["hidden_size"]
    gen = torch.Generator(device=dev).manual_seed(1234)
    xt = torch.randn((batch, 4, 16, 16), device=dev, generator=gen)
    t = torch.randint(0, 1000, (batch,), device=dev, generator=gen)
    cond = torch.randn((batch, MAX_LENGTH, hidden), device=dev, generator=gen).requires_grad_(cond_grad)
    try:
        graphed = torch.cuda.make_graphed_callables(eager, (xt, t, cond))
        with torch.no_grad():
            ref = eager(xt, t, cond)
        out = graphed(xt, t, cond).detach()
        err = float((out - ref).abs().max() / ref.abs().max())
        if not err < 1e-3:
            raise RuntimeError(f"graphed output differs from eager by {err:.3g}")
        print(f"{name}: CUDA graphs on (relative difference to eager {err:.2g})", flush=True)
        return graphed
    except Exception as exc:  # noqa: BLE001 - any capture problem means: train eagerly
        print(f"{name}: CUDA graphs off ({type(exc).__name__}: {exc})", flush=True)
        return eager


def run(args: argparse.Namespace) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler

    from edgediff.zoo.tokenizer import encode

    names = [n.strip() for n in args.denoisers.split(",") if n.strip()]
    if not names or any(n not in ("unet", "dit") for n in names):
        raise SystemExit(f"--denoisers takes unet and/or dit, got {args.denoisers!r}")
    if args.freeze_text_encoder and (args.init is None or not (args.init / FILES["te"]).exists()):
        raise SystemExit("--freeze-text-encoder needs --init with a trained text_encoder.safetensors")
    tag = "_".join(names)
    gen = seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    dev = device()
    images, prompts, _ = load(args.data)
    images = np.array(images)  # writable copy of the memmap
    vae = AutoencoderKL(**VAE)
    scaling = float(load_into(vae, args.vae)["scaling_factor"])
    vae = vae.to(dev).eval()
    log = Log(args.out / f"diffusion_{tag}_log.json", f"diffusion ({tag})", {k: str(v) for k, v in vars(args).items()})
    latents = encode_latents(vae, torch.from_numpy(images).to(dev), scaling)
    del images
    ids = torch.from_numpy(encode(prompts)).to(dev)
    empty = torch.from_numpy(encode([""])).to(dev)[0]
    log.record("latents", {"count": len(latents), "std": float(latents.float().std()), "scaling_factor": scaling})
    print(f"encoded {len(latents)} latents, std {latents.float().std().item():.3f} ({log.elapsed():.0f}s)", flush=True)

    models = {k: m.to(dev) for k, m in build(names, args.init).items()}
    trained = [k for k in models if not (k == "te" and args.freeze_text_encoder)]
    for k, m in models.items():
        m.train(k in trained).requires_grad_(k in trained)
    params = [p for k in trained for p in models[k].parameters()]
    ema = {k: copy.deepcopy(models[k]).eval().requires_grad_(False) for k in trained}
    log.record("parameters", {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()})
    log.record("trained", trained)
    steps = {n: make_denoise_step(n, models[n], args.batch, "te" in trained, not args.no_cuda_graphs) for n in names}
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, fused=dev.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 300))
    acp = DDIMScheduler(**SCHEDULER).alphas_cumprod.to(dev, torch.float32)
    initialised = {k for k in models if args.init is not None and (args.init / FILES[k]).exists()}
    step = 0
    for step in range(args.steps):
        idx = torch.randint(len(latents), (args.batch,), device=dev, generator=gen)
        x0 = latents[idx].float()
        tok = ids[idx].clone()
        tok[torch.rand(args.batch, device=dev, generator=gen) < 0.1] = empty
        noise = torch.randn(x0.shape, device=dev, generator=gen)
        noise = noise + 0.05 * torch.randn((args.batch, 4, 1, 1), device=dev, generator=gen)
        t = torch.randint(0, len(acp), (args.batch,), device=dev, generator=gen)
        ab = acp[t].view(-1, 1, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        snr = (ab / (1 - ab)).view(-1)
        weight = snr.clamp(max=5.0) / snr
        losses = {}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            with torch.set_grad_enabled("te" in trained):
                cond = models["te"](tok).last_hidden_state.float()
        for name in names:
            pred = steps[name](xt, t, cond)
            losses[name] = (weight * ((pred - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        for k in trained:
            ema_update(ema[k], models[k], args.ema if step >= 1000 or k in initialised else 0.0)
        if step % 50 == 0:
            for name, loss in losses.items():
                log.scalar(f"loss_{name}", step, loss.item())
        if step % 500 == 0:
            text = " ".join(f"{n} {v.item():.4f}" for n, v in losses.items())
            print(f"diffusion step {step} {text} {log.elapsed():.0f}s", flush=True)
        if log.elapsed() > args.max_minutes * 60:
            print(f"diffusion: time limit at step {step}", flush=True)
            break
    log.record("steps_done", step + 1)
    log.record("train_s", round(log.elapsed(), 1))
    print(f"diffusion: {step + 1} steps in {log.elapsed():.0f}s", flush=True)
    final = {k: ema.get(k, models[k]) for k in models}
    for k in trained:
        save_half(final[k], args.out / FILES[k])
    log.save()
    if args.eval_prompts:
        denoisers = {n: final[n] for n in names}
        log.record("samples", sample_and_score(final["te"], denoisers, vae, scaling, args))
        log.save()


def sample_and_score(
    te, denoisers: dict[str, torch.nn.Module], vae, scaling: float, args: argparse.Namespace
) -> dict[str, object]:
    """DDIM samples of the first evaluation prompts at a few guidance scales, scored by the classifier."""
    from diffusers import DDIMScheduler
    from PIL import Image

    from edgediff.eval.prompts import load_prompt_set
    from edgediff.zoo.sampler import ZooSampler
    from edgediff.zoo.tokenizer import encode
    from tools.zoo.common import adherence_scorer

    dev = device()
    classifier_path = args.out / "classifier.safetensors"
    score_images = adherence_scorer(dev, classifier_path if classifier_path.exists() else None)
    vae.register_to_config(scaling_factor=scaling)
    prompts = load_prompt_set("v1", args.eval_prompts)
    results: dict[str, object] = {}
    for name, denoiser in denoisers.items():
        sampler = ZooSampler(
            te.float(),
            denoiser.float(),
            vae.float(),
            DDIMScheduler(**SCHEDULER),
            lambda ps: torch.from_numpy(encode(ps)),
            defaults=DEFAULTS,
        )
        for scale in (3.0, 5.0, 7.5):
            for steps in (30,):
                imgs = sampler.generate(
                    prompts, list(range(len(prompts))), steps=steps, guidance_scale=scale, batch_size=200
                )
                s = score_images(prompts, imgs)
                results[f"{name}_cfg{scale}_steps{steps}"] = s
                print(f"{name} cfg {scale} steps {steps}: {json.dumps(s)}", flush=True)
                if scale == 5.0:
                    Image.fromarray(image_grid(imgs)).save(args.out / f"samples_{name}.png")
    return results
