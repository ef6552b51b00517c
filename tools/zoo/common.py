"""Shared helpers of the zoo training stages: seeding, logs, safetensors checkpoints."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return torch.Generator(device="cuda" if torch.cuda.is_available() else "cpu").manual_seed(seed)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Log:
    """A training log: scalars per step plus free-form records, written as one JSON file."""

    def __init__(self, path: Path, stage: str, args: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {"stage": stage, "args": args, "curves": {}, "records": {}}
        self.t0 = time.time()

    def scalar(self, name: str, step: int, value: float) -> None:
        curve = self.data["curves"].setdefault(name, {"step": [], "value": []})
        curve["step"].append(step)
        curve["value"].append(round(float(value), 6))

    def record(self, name: str, value: Any) -> None:
        self.data["records"][name] = value

    def elapsed(self) -> float:
        return time.time() - self.t0

    def save(self) -> None:
        self.data["records"]["wall_s"] = round(self.elapsed(), 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")


def save_half(module: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """A module's weights as one fp16 safetensors file (the format the zoo ships)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in module.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)


def load_into(module: torch.nn.Module, path: Path) -> dict[str, str]:
    """Load a safetensors checkpoint (any float dtype) into ``module``; returns its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = load_file(str(path))
    ref = module.state_dict()
    module.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()}, strict=True)
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        e = [p for p in ema.parameters()]
        m = [p for p in model.parameters()]
        torch._foreach_lerp_(e, m, 1.0 - decay)


def batch_images(images_u8: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) on device -> float (B, 3, 64, 64) in [-1, 1]."""
    return images_u8[idx].permute(0, 3, 1, 2).float() / 127.5 - 1.0


def image_grid(images: np.ndarray, cols: int = 8, limit: int = 64) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one uint8 grid image, first ``limit`` images, blank cells padded."""
    images = images[:limit]
    rows = -(-len(images) // cols)
    h, w = images.shape[1:3]
    padded = np.zeros((rows * cols, h, w, 3), dtype=np.uint8)
    padded[: len(images)] = images
    return padded.reshape(rows, cols, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)


def adherence_scorer(dev: torch.device, weights: Path | None = None) -> Any:
    """``score(prompts, images_u8) -> adherence summary``: the evaluator's classifier on ``dev``.

    Training scripts score their samples on the GPU they trained on, with the same classifier and
    scoring rules the evaluator uses on bundles (``edgediff.eval``), so the numbers compare.
    ``weights``: a classifier trained in the same run; the shipped one otherwise.
    """
    from edgediff.eval.adherence import score
    from edgediff.eval.classifier import WEIGHTS
    from edgediff.eval.classifier_torch import AttributeNet
    from edgediff.eval.labels import decode
    from edgediff.zoo.grammar import parse_prompt

    net = AttributeNet()
    load_into(net, weights or WEIGHTS)
    net = net.to(dev).eval()

    def score_images(prompts: list[str], images_u8: np.ndarray) -> dict[str, Any]:
        with torch.no_grad():
            x = torch.from_numpy(images_u8).to(dev).permute(0, 3, 1, 2).float() / 127.5 - 1
            logits = net(x)[0].float().cpu().numpy()
        summary = score([parse_prompt(p) for p in prompts], decode(logits))
        summary.pop("per_image")
        return summary

    return score_images
