"""Load a local diffusers pipeline folder (offline; safetensors unless pickles are explicitly trusted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgediff.errors import ModelLoadError
from edgediff.models.assemble import assemble
from edgediff.models.hashing import sha256_tree
from edgediff.models.tokenizer_files import pad_token_id, tokenizer_json_from_folder, tokenizer_max_length
from edgediff.models.types import Model

TINY_DECODER_FOLDER = "vae_decoder_tiny"  # a distilled VAE decoder shipped beside vae/ (edgediff.distill)
# guidance-distilled denoisers shipped beside unet/ or transformer/ (edgediff.distill.guidance_swap)
GUIDED_DENOISER_FOLDERS = {"unet": "unet_guided", "transformer": "transformer_guided"}
OPTIONAL_FOLDERS = (TINY_DECODER_FOLDER, *GUIDED_DENOISER_FOLDERS.values())
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DENOISER_KEYS = ("unet", "transformer")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def _check_weights(folder: Path, trust_pickle: bool) -> None:
    if not folder.is_dir():
        raise ModelLoadError(f"component folder {folder} is missing; the pipeline folder is incomplete")
    if any(folder.glob("*.safetensors")):
        return
    if any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir()):
        if not trust_pickle:
            raise ModelLoadError(
                f"{folder} holds only pickle weights, which can run arbitrary code; "
                "convert them to safetensors or pass --trust-pickle if you trust the source"
            )
        return
    raise ModelLoadError(f"{folder} has no weights (*.safetensors); the pipeline folder is incomplete")


def class_loader(library: str, class_name: str, folder: Path, trust_pickle: bool) -> Any:
    """A function loading ``library.class_name`` from ``folder`` in fp32, eval mode, offline."""

    def load() -> Any:
        import importlib

        module = importlib.import_module(library)
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ModelLoadError(f"{library} has no class {class_name!r} (needed by {folder}); upgrade {library}")
        return cls.from_pretrained(str(folder), use_safetensors=not trust_pickle, local_files_only=True).float().eval()

    return load


def load_diffusers_folder(path: Path, *, trust_pickle: bool = False, source: str | None = None) -> Model:
    if not path.exists():
        raise ModelLoadError(
            f"model folder {str(path)!r} does not exist; pass a diffusers pipeline folder, zoo:NAME or config:NAME"
        )
    index_path = path / "model_index.json"
    if not path.is_dir() or not index_path.is_file():
        raise ModelLoadError(
            f"{str(path)!r} is not a diffusers pipeline folder (no model_index.json); "
            "save one with DiffusionPipeline.save_pretrained() or use zoo:NAME / config:NAME"
        )
    index = _read_json(index_path)
    denoiser_key = next((k for k in DENOISER_KEYS if k in index), None)
    if denoiser_key is None or "vae" not in index:
        raise ModelLoadError(f"{path}/model_index.json names no unet/transformer and vae; this is not an image pipeline")
    if any(k in index for k in ("text_encoder_2", "text_encoder_3")):
        raise ModelLoadError(f"{path}: pipelines with several text encoders (SDXL, SD3) are not supported yet")

    denoiser_class = index[denoiser_key][1]
    denoiser_config = _read_json(path / denoiser_key / "config.json")
    vae_config = _read_json(path / "vae" / "config.json")
    _check_weights(path / denoiser_key, trust_pickle)
    _check_weights(path / "vae", trust_pickle)
    loaders = {
        "denoiser": class_loader("diffusers", denoiser_class, path / denoiser_key, trust_pickle),
        "vae": class_loader("diffusers", index["vae"][1], path / "vae", trust_pickle),
    }

    text_config = None
    tokenizer_json = None
    max_length = 0
    pad_id = 0
    if index.get("text_encoder") and index["text_encoder"][0] is not None:
        text_library, text_class = index["text_encoder"]
        text_config = _read_json(path / "text_encoder" / "config.json")
        _check_weights(path / "text_encoder", trust_pickle)
        loaders["text_encoder"] = class_loader(text_library, text_class, path / "text_encoder", trust_pickle)
        tokenizer_dir = path / "tokenizer"
        if not tokenizer_dir.is_dir():
            raise ModelLoadError(f"{path} has a text encoder but no tokenizer/ folder")
        tokenizer_json = tokenizer_json_from_folder(tokenizer_dir)
        fallback = int(text_config.get("max_position_embeddings", 77))
        max_length = tokenizer_max_length(tokenizer_dir, fallback)
        pad_id = pad_token_id(tokenizer_json, tokenizer_dir)

    scheduler_config = _read_json(path / "scheduler" / "scheduler_config.json")
    defaults_path = path / "edgediff.json"
    defaults = _read_json(defaults_path) if defaults_path.is_file() else None
    return assemble(
        source=source or str(path),
        # shipped distilled stand-ins are alternatives, hashed in by the builds that use them (--decoder, --denoiser)
        source_hash=sha256_tree(path, exclude=OPTIONAL_FOLDERS),
        denoiser_class=denoiser_class,
        denoiser_config=denoiser_config,
        vae_config=vae_config,
        text_config=text_config,
        text_max_length=max_length,
        scheduler_class=scheduler_config.get("_class_name", index.get("scheduler", [None, "DDIMScheduler"])[1]),
        scheduler_config=scheduler_config,
        tokenizer_json=tokenizer_json,
        pad_token_id=pad_id,
        loaders=loaders,
        defaults=defaults,
    )
