from __future__ import annotations

import json

import pytest

from edgediff.errors import ModelLoadError
from edgediff.models.diffusers_folder import OPTIONAL_FOLDERS, TINY_DECODER_FOLDER
from edgediff.zoo.paths import DEFAULT_MODEL, resolve_model_dir, zoo_names, zoo_path


def test_the_zoo_ships_a_unet_and_a_dit_and_the_default_is_the_unet():
    assert zoo_names() == ["shapes-dit", "shapes-unet"]
    assert DEFAULT_MODEL == "zoo:shapes-unet"


def test_zoo_prefix_is_optional():
    assert zoo_path("zoo:shapes-unet") == zoo_path("shapes-unet")
    assert (zoo_path("shapes-unet") / "model_index.json").is_file()


@pytest.mark.parametrize("bad", ["zoo:nope", "zoo:", "zoo:../eval", "zoo:shapes-unet/unet"])
def test_unknown_zoo_name_is_a_user_error_listing_the_shipped_models(bad):
    with pytest.raises(ModelLoadError, match="shipped models: zoo:shapes-dit, zoo:shapes-unet"):
        zoo_path(bad)


def test_a_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        resolve_model_dir(tmp_path)


@pytest.mark.parametrize("name,denoiser", [("shapes-unet", "unet"), ("shapes-dit", "transformer")])
def test_shipped_folder_is_a_standard_fp16_diffusers_layout_under_25_mb(name, denoiser):
    from safetensors import safe_open

    folder = zoo_path(name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]
    assert denoiser in index
    extra = json.loads((folder / "edgediff.json").read_text())
    assert {"default_steps", "default_guidance_scale", "height", "width", "family", "prompt_set"} <= set(extra)
    assert (extra["height"], extra["width"], extra["family"], extra["prompt_set"]) == (64, 64, "shapes", "v1")
    tok_config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
    assert tok_config["model_max_length"] == 24 and tok_config["pad_token"] == "<|pad|>"
    every = sorted(folder.rglob("*.safetensors"))
    weights = [w for w in every if w.parent.name not in OPTIONAL_FOLDERS]
    assert [w.parent.name for w in weights] == sorted(["text_encoder", "vae", denoiser])
    for w in (w for w in every if w.parent.name != TINY_DECODER_FOLDER):  # guided students ship in fp16 too
        with safe_open(str(w), framework="np") as f:
            assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}, w
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    # the model proper stays small; each optional stand-in is at most the size of what it replaces
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0]
               not in OPTIONAL_FOLDERS)
    assert size <= 25e6
    denoiser_bytes = (folder / denoiser / "diffusion_pytorch_model.safetensors").stat().st_size
    for stand_in in (w for w in every if w.parent.name in OPTIONAL_FOLDERS):
        assert stand_in.stat().st_size <= denoiser_bytes, stand_in


@pytest.mark.parametrize("name", ["shapes-unet", "shapes-dit"])
def test_shipped_distilled_decoder_was_distilled_from_the_shipped_vae(name):
    import hashlib

    from edgediff.distill.tiny_decoder import read_tiny_decoder_config

    folder = zoo_path(name)
    config = read_tiny_decoder_config(folder / TINY_DECODER_FOLDER)  # config.json + model.safetensors, no pickle
    vae_weights = (folder / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert config.teacher_sha256 == hashlib.sha256(vae_weights).hexdigest()


def test_both_models_share_one_text_encoder_and_vae():
    import hashlib

    def digest(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    unet, dit = zoo_path("shapes-unet"), zoo_path("shapes-dit")
    for part in ("text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert digest(unet / part) == digest(dit / part)
