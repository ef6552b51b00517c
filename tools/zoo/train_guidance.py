"""Stage ``guidance``: distil a shipped zoo denoiser's classifier-free guidance into one forward pass.

Guidance distillation (Meng et al. 2023, "On Distillation of Guided Diffusion Models", stage one):
the student starts as a copy of the teacher and learns to predict, from the prompt alone, what the
teacher predicts with guidance ``w``: ``eps_u + w (eps_c - eps_u)``. A guided sampler runs the
denoiser on a batch of two (prompt and empty prompt) every step; the student runs on one, so each
step costs half. The paper conditions the student on ``w``; here ``w`` is fixed at the model's
shipped default, the only scale a bundle is built for, so the architecture stays the teacher's and
every exporter reads the student as it reads the teacher.

Choices, with why:
- noisy inputs are the training renders, noised by the forward process at uniform timesteps, with
  the offset noise the teacher was trained with: the states a sampler visits;
- min-SNR-5 weighting, as the teacher's own loss: the guided target is large at high noise;
- the teacher's text encoder and VAE are frozen and ship unchanged, so the student reads the
  same latents and embeddings;
- EMA 0.999 of the student from the first step (it starts at a trained model).
At the end it samples held-out prompts with the teacher (guided) and the student (one pass) at 30 and
4 steps from the same noise, and scores both with the evaluator's classifier.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch

from edgediff.models.hashing import sha256_file
from tools.zoo.common import Log, device, ema_update, seed_everything
from tools.zoo.data import load
from tools.zoo.train_diffusion import encode_latents, make_denoise_step, predict

STUDENT_FOLDERS = {"unet": "unet_guided", "dit": "transformer_guided"}
TEACHER_FOLDERS = {"unet": "unet", "dit": "transformer"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", type=Path, required=True, help="a shipped zoo folder, e.g. edgediff/zoo/models/shapes-unet")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="the student is written to OUT/unet_guided or transformer_guided")
    p.add_argument("--guidance-scale", type=float, default=None, help="default: the teacher's edgediff.json default")
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-prompts", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=1e9)
    p.add_argument("--no-cuda-graphs", action="store_true")


def _family(folder: Path) -> str:
    return "unet" if "unet" in json.loads((folder / "model_index.json").read_text()) else "dit"


def check_teacher(folder: Path) -> str:
    """The teacher's family, or a one-line exit naming what ``folder`` lacks, before any data is loaded."""
    missing = [name for name in ("model_index.json", "edgediff.json") if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"--teacher {folder}: not a zoo model folder (no {', '.join(missing)}); pass one such as "
                         "edgediff/zoo/models/shapes-unet")
    family = _family(folder)
    if not (folder / TEACHER_FOLDERS[family] / "diffusion_pytorch_model.safetensors").is_file():
        raise SystemExit(f"--teacher {folder}: no {TEACHER_FOLDERS[family]}/diffusion_pytorch_model.safetensors to "
                         "distil from; pass a zoo model folder with its denoiser weights")
    return family


def _load_teacher(folder: Path, family: str) -> torch.nn.Module:
    from diffusers import PixArtTransformer2DModel, UNet2DConditionModel

    kind = UNet2DConditionModel if family == "unet" else PixArtTransformer2DModel
    return kind.from_pretrained(folder / TEACHER_FOLDERS[family]).float()


def teacher_sha256(folder: Path, family: str) -> str:
    """What the student records of its teacher, so a build can refuse a student of other weights."""
    return sha256_file(folder / TEACHER_FOLDERS[family] / "diffusion_pytorch_model.safetensors")


def run(args: argparse.Namespace) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextModel

    from edgediff.zoo.tokenizer import encode

    family = check_teacher(args.teacher)
    defaults = json.loads((args.teacher / "edgediff.json").read_text())
    w = float(args.guidance_scale if args.guidance_scale is not None else defaults["default_guidance_scale"])
    gen = seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    dev = device()
    log = Log(args.out / f"guidance_{family}_log.json", f"guidance distillation ({family}, w={w})",
              {k: str(v) for k, v in vars(args).items()})
    images, prompts, _ = load(args.data)
    vae = AutoencoderKL.from_pretrained(args.teacher / "vae").float().to(dev).eval()
    scaling = float(vae.config.scaling_factor)
    latents = encode_latents(vae, torch.from_numpy(np.array(images)).to(dev), scaling)
    del images
    text_encoder = CLIPTextModel.from_pretrained(args.teacher / "text_encoder").float().to(dev).eval()
    ids = torch.from_numpy(encode(prompts)).to(dev)
    with torch.no_grad():
        empty = text_encoder(torch.from_numpy(encode([""])).to(dev)).last_hidden_state.float()
    print(f"{family}: encoded {len(latents)} latents, guidance {w} ({log.elapsed():.0f}s)", flush=True)

    teacher = _load_teacher(args.teacher, family).to(dev).eval().requires_grad_(False)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    ema = copy.deepcopy(teacher)
    step_fn = make_denoise_step(family, student, args.batch, False, not args.no_cuda_graphs)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0, fused=dev.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
    acp = DDIMScheduler.from_pretrained(args.teacher / "scheduler").alphas_cumprod.to(dev, torch.float32)
    step = 0
    for step in range(args.steps):
        idx = torch.randint(len(latents), (args.batch,), device=dev, generator=gen)
        x0 = latents[idx].float()
        noise = torch.randn(x0.shape, device=dev, generator=gen)
        noise = noise + 0.05 * torch.randn((args.batch, x0.shape[1], 1, 1), device=dev, generator=gen)
        t = torch.randint(0, len(acp), (args.batch,), device=dev, generator=gen)
        ab = acp[t].view(-1, 1, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        snr = (ab / (1 - ab)).view(-1)
        weight = snr.clamp(max=5.0) / snr
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            cond = text_encoder(ids[idx]).last_hidden_state.float()
            both = predict(family, teacher, torch.cat([xt, xt]), torch.cat([t, t]),
                           torch.cat([cond, empty.expand_as(cond)])).float()
            eps_c, eps_u = both.chunk(2)
            target = eps_u + w * (eps_c - eps_u)
        pred = step_fn(xt, t, cond)
        loss = (weight * ((pred - target) ** 2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        sched.step()
        ema_update(ema, student, args.ema)
        if step % 50 == 0:
            log.scalar("loss", step, loss.item())
        if step % 500 == 0:
            print(f"guidance {family} step {step} loss {loss.item():.5f} {log.elapsed():.0f}s", flush=True)
        if log.elapsed() > args.max_minutes * 60:
            print(f"guidance {family}: time limit at step {step}", flush=True)
            break
    log.record("steps_done", step + 1)
    log.record("train_s", round(log.elapsed(), 1))
    folder = args.out / STUDENT_FOLDERS[family]
    ema.to(torch.float16).save_pretrained(folder)  # the zoo ships fp16 weights
    record = {"guidance_scale": w, "teacher": TEACHER_FOLDERS[family],
              "teacher_sha256": teacher_sha256(args.teacher, family), "steps": step + 1, "batch": args.batch,
              "method": "guidance distillation (Meng et al. 2023, stage one), fixed scale"}
    (folder / "guidance.json").write_text(json.dumps(record, indent=1) + "\n")
    log.save()
    if args.eval_prompts:
        log.record("samples", score_student(args.teacher, folder, w, args.eval_prompts, dev))
        log.save()


def score_student(teacher_folder: Path, student_folder: Path, w: float, count: int, dev: torch.device) -> dict:
    """Adherence of the guided teacher and the one-pass student on the first ``count`` evaluation prompts
    (not in the training stream), same seeds, at 30 and 4 DDIM steps; PSNR of student vs teacher images."""
    from diffusers import PixArtTransformer2DModel, UNet2DConditionModel

    from edgediff.eval.prompts import load_prompt_set
    from edgediff.zoo.sampler import ZooSampler
    from tools.zoo.common import adherence_scorer

    score_images = adherence_scorer(dev)
    prompts = load_prompt_set("v1", count)
    sampler = ZooSampler.from_folder(teacher_folder, device=dev)
    teacher_denoiser = sampler.denoiser
    kind = UNet2DConditionModel if "unet" in student_folder.name else PixArtTransformer2DModel
    student = kind.from_pretrained(student_folder).to(dev, torch.float32).eval()
    results: dict[str, object] = {}
    for steps in (30, 4):
        images = {}
        for name, denoiser, scale in (("teacher", teacher_denoiser, w), ("student", student, 1.0)):
            sampler.denoiser = denoiser
            images[name] = sampler.generate(prompts, list(range(len(prompts))), steps=steps, guidance_scale=scale,
                                            batch_size=200)
            s = score_images(prompts, images[name])
            results[f"{name}_steps{steps}"] = s
            print(f"{name} (scale {scale}) steps {steps}: {json.dumps(s)}", flush=True)
        diff = images["student"].astype(np.float64) - images["teacher"].astype(np.float64)
        mse = float(np.mean(diff**2, axis=(1, 2, 3)).mean())
        results[f"psnr_student_vs_teacher_steps{steps}"] = 10 * np.log10(255.0**2 / max(mse, 1e-12))
        print(f"steps {steps}: student vs teacher PSNR {results[f'psnr_student_vs_teacher_steps{steps}']:.2f} dB",
              flush=True)
    return results
