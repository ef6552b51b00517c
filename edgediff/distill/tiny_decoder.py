"""A tiny VAE decoder, distilled from a model's own decoder, that replaces it in a bundle.

At the zoo's 64x64 the stock ``AutoencoderKL`` decoder costs 2.0 GFLOP per image: more than a
whole UNet step (0.75 GFLOP per sample), so at 1-4 steps it is a quarter of the end-to-end time.
The tiny decoder follows TAESD (Bohan O. 2023, "Tiny AutoEncoder for Stable Diffusion"): plain 3x3
convolutions, ReLU, residual blocks and nearest-neighbour upsampling; no GroupNorm, no attention.
Every runtime edgediff targets runs those ops natively. Channels taper as resolution grows, as
SnapFusion's efficient decoder does (Li et al. 2023, sec. 4), because the last stage runs at full
resolution and dominates the cost.

It reads the same model-space latents the stock decoder wrapper reads and returns an RGB image in
[0, 1], so a bundle's pipeline does not change. Weights ship as ``model.safetensors`` with a
``config.json`` beside them (no pickle), the layout of a diffusers component folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgediff.errors import EdgeDiffError
from edgediff.models.hashing import sha256_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CLASS_NAME = "EdgeDiffTinyDecoder"


@dataclass(frozen=True)
class TinyDecoderConfig:
    """Stage widths and residual blocks per stage; stage ``i > 0`` starts with a 2x upsampling."""

    latent_channels: int = 4
    out_channels: int = 3
    channels: tuple[int, ...] = (64, 32, 16)
    blocks: tuple[int, ...] = (2, 2, 1)
    teacher_sha256: str = ""  # the decoder weights it was distilled from ("" when not recorded)

    @property
    def upscale(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def validate(self) -> None:
        if len(self.channels) != len(self.blocks) or not self.channels:
            raise EdgeDiffError(f"tiny decoder config needs one block count per stage, got channels {self.channels} "
                                f"and blocks {self.blocks}")
        if min(self.channels) <= 0 or min(self.blocks) < 0:
            raise EdgeDiffError("tiny decoder channels must be positive and block counts non-negative")

    def to_json(self) -> dict[str, Any]:
        return {"_class_name": CLASS_NAME} | asdict(self) | {"channels": list(self.channels), "blocks": list(self.blocks)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TinyDecoderConfig:
        if data.get("_class_name") != CLASS_NAME:
            raise EdgeDiffError(f"config.json describes {data.get('_class_name')!r}, not a tiny decoder "
                                f"({CLASS_NAME}); point --decoder at a folder written by edgediff's decoder distillation")
        known = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in data.items() if k in known}
        for key in ("channels", "blocks"):
            if key in fields:
                fields[key] = tuple(int(v) for v in fields[key])
        config = cls(**fields)
        config.validate()
        return config


class _ResidualBlock(nn.Module):
    """conv-ReLU-conv-ReLU-conv plus the input, then ReLU (TAESD's ``Block``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) + x)


class TinyDecoder(nn.Module):
    """Model-space latents (N, C, h, w) -> RGB (N, 3, h * upscale, w * upscale), about [0, 1] (unclamped)."""

    def __init__(self, config: TinyDecoderConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        layers: list[nn.Module] = [nn.Conv2d(config.latent_channels, config.channels[0], 3, padding=1), nn.ReLU()]
        previous = config.channels[0]
        for index, (width, blocks) in enumerate(zip(config.channels, config.blocks, strict=True)):
            if index:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(previous, width, 3, padding=1, bias=False)]
            layers += [_ResidualBlock(width) for _ in range(blocks)]
            previous = width
        layers.append(nn.Conv2d(previous, config.out_channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.layers(latents)


def save_tiny_decoder(decoder: TinyDecoder, folder: Path) -> None:
    """``config.json`` + fp32 ``model.safetensors`` (a few hundred KB: no reason to halve it)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in decoder.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(decoder.config.to_json(), indent=1) + "\n")


def read_tiny_decoder_config(folder: Path) -> TinyDecoderConfig:
    """The config alone (no torch work): enough to check a decoder fits a model before building."""
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise EdgeDiffError(f"{folder} has no {name}; a tiny decoder folder holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        data = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeDiffError(f"cannot read {folder / CONFIG_FILE}: {exc}") from exc
    return TinyDecoderConfig.from_json(data)


def load_tiny_decoder(folder: Path) -> TinyDecoder:
    """A tiny decoder from its folder, in eval mode (safetensors only: nothing is unpickled)."""
    from safetensors.torch import load_file

    decoder = TinyDecoder(read_tiny_decoder_config(folder))
    try:
        decoder.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    except (RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise EdgeDiffError(f"{folder / WEIGHTS_FILE} does not match its config.json ({first}); re-save the decoder") from exc
    return decoder.eval()


def weights_sha256(folder: Path) -> str:
    return sha256_file(folder / WEIGHTS_FILE)


def decoder_gflop(module: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor) -> float:
    """FLOPs of one decode (``torch.utils.flop_counter``, multiply-add = 2), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(latents)
    return counter.get_total_flops() / 1e9


def stages_for_scale(scale: int) -> int:
    """Stages a decoder needs for a VAE's spatial scale factor (4 -> 3, 8 -> 4)."""
    stages = int(math.log2(scale)) + 1
    if 2 ** (stages - 1) != scale:
        raise EdgeDiffError(f"a VAE scale factor of {scale} is not a power of two; the tiny decoder upsamples by 2 per stage")
    return stages
