"""Distil a ``TinyDecoder`` from a model's VAE decoder: regress the teacher's image for the same latents.

The targets are the teacher decoder's own outputs, not the training images, so the student learns
the decoder the bundle replaces (its colours, its blur), and any latents are training data: encoded
images, and the denoiser's final latents at the step counts the bundle will run, which sit off the
encoder's distribution at 1-4 steps. Loss: L1 + MSE in [0, 1] image space (PSNR against the teacher
is what the quality gate reads; L1 keeps edges from blurring).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from edgediff.distill.tiny_decoder import TinyDecoder, TinyDecoderConfig

Teacher = Callable[[torch.Tensor], torch.Tensor]  # model-space latents -> image in [0, 1]
LatentSource = Callable[[int, torch.Generator], torch.Tensor]  # batch size, generator on ``device`` -> latents there


@dataclass
class DistillLog:
    """Loss per ``log_every`` steps and held-out PSNR (dB, vs the teacher) per held-out set."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    heldout_psnr: dict[str, float] = field(default_factory=dict)
    steps_done: int = 0
    seconds: float = 0.0


@torch.no_grad()
def psnr_vs_teacher(student: torch.nn.Module, teacher: Teacher, latents: torch.Tensor, batch: int = 512) -> float:
    """Mean per-image PSNR (dB, images in [0, 1], student clamped as the bundle clamps it)."""
    values = []
    for start in range(0, len(latents), batch):
        z = latents[start : start + batch]
        mse = (student(z).float().clamp(0, 1) - teacher(z).float()).pow(2).flatten(1).mean(1)
        values.append(10 * torch.log10(1.0 / mse.clamp_min(1e-10)))
    return float(torch.cat(values).mean())


def distill_decoder(
    teacher: Teacher,
    sample_latents: LatentSource,
    config: TinyDecoderConfig,
    *,
    steps: int,
    device: torch.device | str = "cpu",
    batch: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    heldout: dict[str, torch.Tensor] | None = None,
    max_minutes: float = math.inf,
    log_every: int = 100,
    init: TinyDecoder | None = None,
    edge_weight: float = 0.0,
    progress: Callable[[str], None] = print,
) -> tuple[TinyDecoder, DistillLog]:
    """Train a student of ``config`` for ``steps`` (or ``max_minutes``); returns its EMA weights and the log.

    ``init`` continues from a trained decoder of the same config; ``edge_weight`` adds an L1 term on the
    images' horizontal and vertical differences, which weighs the outlines of small shapes (a few pixels
    of a 64x64 image, so nearly free under a per-pixel loss) as much as their fill.
    """
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    student = TinyDecoder(config)
    if init is not None:
        student.load_state_dict(init.state_dict())
    student = student.to(device).to(memory_format=torch.channels_last)
    ema = TinyDecoder(config).to(device).to(memory_format=torch.channels_last)
    ema.load_state_dict(student.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    warmup = min(500, steps // 10 + 1)
    budget_s = max_minutes * 60
    log = DistillLog()
    started = time.time()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    step = 0
    for step in range(steps):
        # cosine decay over whichever ends first, the steps or the time budget, so a capped run still anneals
        done = max(step / steps, (time.time() - started) / budget_s)
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
        latents = sample_latents(batch, generator)
        flip = torch.rand(latents.shape[0], 1, 1, 1, device=device, generator=generator) < 0.5
        latents = torch.where(flip, latents.flip(-1), latents).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            target = teacher(latents).float()
        with autocast:
            image = student(latents)
        image = image.float()
        loss = F.l1_loss(image, target) + F.mse_loss(image, target)
        if edge_weight:
            loss = loss + edge_weight * (F.l1_loss(image.diff(dim=-1), target.diff(dim=-1))
                                         + F.l1_loss(image.diff(dim=-2), target.diff(dim=-2)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = 0.0 if step < warmup and init is None else 0.999
            torch._foreach_lerp_(list(ema.parameters()), list(student.parameters()), 1.0 - decay)
        if step % log_every == 0:
            log.steps.append(step)
            log.loss.append(round(loss.item(), 6))
            progress(f"tiny decoder step {step} loss {loss.item():.5f} {time.time() - started:.0f}s")
        if time.time() - started > budget_s:
            progress(f"tiny decoder: time limit at step {step}")
            break
    log.steps_done = step + 1
    log.seconds = round(time.time() - started, 1)
    ema.eval()
    for name, latents in (heldout or {}).items():
        log.heldout_psnr[name] = round(psnr_vs_teacher(ema, teacher, latents), 3)
    return ema, log
