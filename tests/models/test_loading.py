"""Loading: config architectures, diffusers folders (same numbers either way), pickle refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgediff.errors import ModelLoadError
from edgediff.models import load_model
from edgediff.models.config_models import config_names


def test_published_architectures_are_available_as_configs() -> None:
    assert {"sd15", "sd-turbo", "pixart-alpha", "dit-xl-2"} <= set(config_names())


@pytest.mark.parametrize(
    ("name", "family", "size", "hidden"),
    [("sd15", "unet", 512, 768), ("sd-turbo", "unet", 512, 1024), ("pixart-alpha", "pixart", 1024, 4096), ("dit-xl-2", "dit", 256, 0)],
)
def test_config_geometry_matches_the_published_model(name: str, family: str, size: int, hidden: int) -> None:
    model = load_model(f"config:{name}")  # lazy: no weights are built here
    assert model.family == family
    assert (model.defaults.height, model.defaults.width) == (size, size)
    assert model.geometry.text_hidden_size == hidden
    assert model.geometry.vae_scale_factor == 8 and model.geometry.latent_channels == 4


def _save_tiny_as_diffusers(model, folder: Path, safe: bool) -> None:  # noqa: ANN001
    import diffusers
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(model.tokenizer_json), model_max_length=16, pad_token="<|endoftext|>"
    )
    pipe = diffusers.StableDiffusionPipeline(
        vae=model.build_component("vae_decoder").vae,
        text_encoder=model.build_component("text_encoder").encoder,
        tokenizer=tokenizer,
        unet=model.build_component("denoiser").model,
        scheduler=diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder), safe_serialization=safe)


def test_diffusers_folder_loads_to_the_same_components(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "tiny"
    _save_tiny_as_diffusers(tiny_model, folder, safe=True)
    loaded = load_model(str(folder))
    assert loaded.family == "unet" and loaded.geometry == tiny_model.geometry
    assert loaded.scheduler_class == "EulerDiscreteScheduler"
    assert loaded.pad_token_id == tiny_model.pad_token_id
    ours, theirs = loaded.build_component("denoiser"), tiny_model.build_component("denoiser")
    example = ours.example_inputs(32, 32, 2)
    with torch.no_grad():
        assert torch.allclose(ours(*example), theirs(*example), atol=1e-6)


def test_pickle_weights_are_refused_unless_trusted(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "pickled"
    _save_tiny_as_diffusers(tiny_model, folder, safe=False)
    with pytest.raises(ModelLoadError, match="only pickle weights.*--trust-pickle"):
        load_model(str(folder))
    assert load_model(str(folder), trust_pickle=True).family == "unet"
