"""Turn training checkpoints into the shipped diffusers folders (edgediff/zoo/models/<name>/).

    PYTHONPATH=. python3 -m tools.zoo.pack --checkpoints DIR [--models-dir edgediff/zoo/models]

DIR holds vae/text_encoder/unet/transformer.safetensors from ``tools.zoo.train``. Each folder is
a standard diffusers layout, all weights fp16 safetensors, plus ``edgediff.json`` with the sampling
defaults (``configs.MODEL_DEFAULTS``). The VAE and text encoder are shared by both models and stored
in each folder, so each folder stands alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from edgediff.zoo.paths import MODELS_DIR
from edgediff.zoo.tokenizer import write_tokenizer_folder
from tools.zoo.common import load_into
from tools.zoo.configs import DIT, MODEL_DEFAULTS, SCHEDULER, UNET, VAE, text_encoder_config

MODELS = {"shapes-unet": "unet", "shapes-dit": "transformer"}
SIZE_LIMIT_MB = 25.0


def _index(denoiser: str) -> dict[str, object]:
    common = {
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if denoiser == "unet":
        return {
            "_class_name": "StableDiffusionPipeline",
            **common,
            "unet": ["diffusers", "UNet2DConditionModel"],
            "safety_checker": [None, None],
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "requires_safety_checker": False,
        }
    return {"_class_name": "PixArtAlphaPipeline", **common, "transformer": ["diffusers", "PixArtTransformer2DModel"]}


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def pack(checkpoints: Path, name: str, models_dir: Path, defaults: dict[str, object]) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, PixArtTransformer2DModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    denoiser = MODELS[name]
    folder = models_dir / name
    tmp = models_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vae = AutoencoderKL(**VAE)
    scaling = float(load_into(vae, checkpoints / "vae.safetensors")["scaling_factor"])
    vae = AutoencoderKL(**VAE, scaling_factor=scaling)
    load_into(vae, checkpoints / "vae.safetensors")
    te = CLIPTextModel(CLIPTextConfig(**text_encoder_config()))
    load_into(te, checkpoints / "text_encoder.safetensors")
    model = UNet2DConditionModel(**UNET) if denoiser == "unet" else PixArtTransformer2DModel(**DIT)
    load_into(model, checkpoints / f"{denoiser}.safetensors")
    vae.to(torch.float16).save_pretrained(tmp / "vae", safe_serialization=True)
    te.to(torch.float16).save_pretrained(tmp / "text_encoder", safe_serialization=True)
    model.to(torch.float16).save_pretrained(tmp / denoiser, safe_serialization=True)
    DDIMScheduler(**SCHEDULER).save_pretrained(tmp / "scheduler")
    write_tokenizer_folder(tmp / "tokenizer")
    (tmp / "model_index.json").write_text(json.dumps(_index(denoiser), indent=2) + "\n")
    (tmp / "edgediff.json").write_text(json.dumps(defaults, indent=2) + "\n")
    size = folder_size_mb(tmp)
    if size > SIZE_LIMIT_MB:
        raise SystemExit(f"{name}: {size:.1f} MB is over the {SIZE_LIMIT_MB} MB limit")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    print(f"packed {folder} ({size:.1f} MB, scaling_factor {scaling:.4f})")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args()
    for name in MODELS:
        pack(args.checkpoints, name, args.models_dir, MODEL_DEFAULTS[name])


if __name__ == "__main__":
    main()
