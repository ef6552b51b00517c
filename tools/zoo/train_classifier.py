"""Stage ``classifier``: train the evaluator's attribute classifier on renders.

Augmentation (noise, blur, small colour shifts) keeps it reliable on generated images, which are
VAE decodes: slightly soft, slightly noisy, never pixel-exact. Reports per-attribute accuracy on
held-out renders (another stream) with the same scoring code the evaluator uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgediff.eval.adherence import score
from edgediff.eval.classifier_torch import AttributeNet
from edgediff.eval.labels import Targets, decode, split_logits
from edgediff.zoo.grammar import parse_prompt
from tools.zoo.common import Log, batch_images, device, seed_everything
from tools.zoo.data import load


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--heldout", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=1e9)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per image: blur (p=0.3), Gaussian noise (std up to 0.08), colour offset (up to +-0.04), in [-1, 1] units."""
    b, dev = x.shape[0], x.device
    k = torch.tensor([1.0, 2.0, 1.0], device=dev)
    kernel = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    pick = (torch.rand(b, 1, 1, 1, device=dev, generator=gen) < 0.3).float()
    x = pick * blurred + (1 - pick) * x
    sigma = 0.08 * torch.rand(b, 1, 1, 1, device=dev, generator=gen)
    x = x + sigma * torch.randn(x.shape, device=dev, generator=gen)
    x = x + 0.04 * (2 * torch.rand(b, 3, 1, 1, device=dev, generator=gen) - 1)
    return x.clamp(-1, 1)


def loss_fn(logits: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
    bg, cells = logits[:, :3], logits[:, 3:].reshape(len(logits), 9, 17)
    occ = t["occupied"].float()
    loss = F.cross_entropy(bg, t["background"]) + F.binary_cross_entropy_with_logits(cells[..., 0], occ)
    mask = t["occupied"].bool()
    for name, sl in (("shape", slice(1, 7)), ("color", slice(7, 15)), ("size", slice(15, 17))):
        loss = loss + F.cross_entropy(cells[..., sl][mask], t[name][mask])
    return loss


@torch.no_grad()
def accuracy(net: AttributeNet, images: np.ndarray, prompts: list[str]) -> dict[str, object]:
    dev = device()
    net.eval()
    x = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
    logits = torch.cat(
        [net(batch_images(x, torch.arange(i, min(i + 1000, len(x)), device=dev)))[0] for i in range(0, len(x), 1000)]
    )
    net.train()
    result = score([parse_prompt(p) for p in prompts], decode(logits.float().cpu().numpy()))
    result.pop("per_image")
    bg, cells = split_logits(logits.float().cpu().numpy())
    result["occupancy_margin_min"] = float(np.abs(cells[..., 0]).min())
    return result


def run(args: argparse.Namespace) -> None:
    from safetensors.torch import save_file

    gen = seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    dev = device()
    images, _, targets = load(args.data)
    held_images, held_prompts, _ = load(args.heldout)
    data = torch.from_numpy(np.array(images)).to(dev)
    tgt = {k: torch.from_numpy(getattr(targets, k)).to(dev) for k in Targets.__dataclass_fields__}
    net = AttributeNet().to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    lr_at = lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + np.cos(np.pi * min(s / args.steps, 1.0)))  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    log = Log(args.out / "classifier_log.json", "classifier", {k: str(v) for k, v in vars(args).items()})
    log.record("parameters", sum(p.numel() for p in net.parameters()))
    step = 0
    for step in range(args.steps):
        idx = torch.randint(len(data), (args.batch,), device=dev, generator=gen)
        x = augment(batch_images(data, idx), gen)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits, _ = net(x)
        loss = loss_fn(logits.float(), {k: v[idx] for k, v in tgt.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            log.scalar("loss", step, loss.item())
        if step % 1000 == 0:
            print(f"classifier step {step} loss {loss.item():.4f} {log.elapsed():.0f}s", flush=True)
        if log.elapsed() > args.max_minutes * 60:
            print(f"classifier: time limit at step {step}", flush=True)
            break
    log.record("steps_done", step + 1)
    log.record("train_s", round(log.elapsed(), 1))
    print(f"classifier: {step + 1} steps in {log.elapsed():.0f}s", flush=True)
    result = accuracy(net.float(), held_images, held_prompts)
    log.record("heldout", result)
    print(f"classifier held-out {result}", flush=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(args.out / "classifier.safetensors"), metadata={"format": "edgediff-attribute-classifier-1"})
    log.save()
