"""Distilled VAE decoders: the module, its folder format, the distillation loop, and bundles that swap it in."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgediff.distill.decoder_swap import TinyDecoderWrapper, check_decoder_fits, with_tiny_decoder
from edgediff.distill.tiny_decoder import (
    TinyDecoder,
    TinyDecoderConfig,
    load_tiny_decoder,
    read_tiny_decoder_config,
    save_tiny_decoder,
)
from edgediff.errors import EdgeDiffError, TargetError
from edgediff.recipe import Recipe
from edgediff.runtimes.pipeline import BundlePipeline

PIPELINE_ATOL = 2e-3  # as tests/runtimes: images in [0, 1] after a few steps through exported graphs
TINY_SD_CONFIG = TinyDecoderConfig(channels=(16, 8), blocks=(1, 1))  # config:tiny-sd latents are 1/2 scale


@pytest.fixture(scope="module")
def decoder_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("decoder") / "tiny"
    save_tiny_decoder(TinyDecoder(TINY_SD_CONFIG), folder)
    return folder


def test_decoder_upsamples_by_two_per_stage_and_reads_model_space_latents() -> None:
    decoder = TinyDecoder(TinyDecoderConfig(channels=(32, 16, 8), blocks=(1, 1, 0)))
    assert decoder(torch.randn(2, 4, 5, 7)).shape == (2, 3, 20, 28)


def test_folder_round_trip_is_config_json_and_safetensors(decoder_folder: Path) -> None:
    assert sorted(p.name for p in decoder_folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_tiny_decoder(decoder_folder)
    assert loaded.config == TINY_SD_CONFIG
    torch.manual_seed(0)
    original = TinyDecoder(TINY_SD_CONFIG)  # the fixture's seed: same weights
    z = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(loaded(z), original(z))


def test_a_config_of_another_class_is_refused_naming_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(EdgeDiffError, match="describes 'AutoencoderKL', not a tiny decoder"):
        read_tiny_decoder_config(tmp_path)


def test_distillation_moves_the_student_towards_the_teacher() -> None:
    from edgediff.distill.decoder_training import distill_decoder, psnr_vs_teacher

    torch.manual_seed(1)
    reference = TinyDecoder(TinyDecoderConfig(channels=(24, 12), blocks=(1, 1))).eval()

    def teacher(latents: torch.Tensor) -> torch.Tensor:  # a smooth target in [0, 1]
        return torch.sigmoid(reference(latents))

    def sample(batch: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(batch, 4, 6, 6, generator=generator)

    heldout = {"gaussian": torch.randn(64, 4, 6, 6, generator=torch.Generator().manual_seed(9))}
    untrained = psnr_vs_teacher(TinyDecoder(TINY_SD_CONFIG).eval(), teacher, heldout["gaussian"])
    student, log = distill_decoder(teacher, sample, TINY_SD_CONFIG, steps=300, batch=32, lr=3e-3,
                                   heldout=heldout, progress=lambda _: None)
    assert log.steps_done == 300 and log.loss[-1] < log.loss[0]
    assert log.heldout_psnr["gaussian"] > untrained + 6  # measured: 7.2 -> 17.7 dB


def test_a_decoder_for_other_latents_is_refused_before_any_build(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    save_tiny_decoder(TinyDecoder(TinyDecoderConfig(channels=(16, 8, 8), blocks=(1, 1, 1))), tmp_path / "x4")
    with pytest.raises(EdgeDiffError, match="at 1/4 scale, but config:tiny-sd makes 4 channels at 1/2"):
        check_decoder_fits(tiny_model, tmp_path / "x4")


def test_a_decoder_distilled_from_another_vae_is_refused(tmp_path: Path) -> None:
    from edgediff.models import load_model

    model = load_model("zoo:shapes-unet")
    config = TinyDecoderConfig(channels=(16, 8, 8), blocks=(1, 1, 1), teacher_sha256="0" * 64)
    save_tiny_decoder(TinyDecoder(config), tmp_path / "other")
    with pytest.raises(EdgeDiffError, match="distilled from another VAE"):
        check_decoder_fits(model, tmp_path / "other")


def test_asking_for_a_shipped_decoder_a_model_lacks_says_how_to_make_one(tmp_path: Path) -> None:
    from edgediff.api import export_bundle

    with pytest.raises(EdgeDiffError, match="ships no tiny decoder.*tiny-decoder.*--decoder FOLDER"):
        export_bundle("config:tiny-sd", "x86-cpu", tmp_path / "b", options={"decoder": "tiny"})
    assert not (tmp_path / "b").exists()


def test_a_distilled_decoder_with_a_quantized_bundle_fails_before_any_work(decoder_folder: Path, tmp_path: Path) -> None:
    from edgediff.api import export_bundle

    with pytest.raises(TargetError, match="--decoder builds fp32/fp16 bundles.*drop --precision int8"):
        export_bundle("config:tiny-sd", "x86-cpu", tmp_path / "b", precision="int8",
                      options={"decoder": str(decoder_folder)})
    assert not (tmp_path / "b").exists()


def _decoder_bundle(tiny_model, root: Path, target: str, folder: Path) -> Path:  # noqa: ANN001
    from edgediff.build import build
    from edgediff.targets import get_target

    out = root / f"{target}-tinydecoder"
    if not out.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(tiny_model, get_target(target), Recipe(options={"decoder": str(folder)}), out)
    return out


@pytest.mark.parametrize("target", ["x86-cpu", *(pytest.param(t, marks=pytest.mark.slow) for t in ("intel-cpu", "arm64-cpu"))])
def test_bundle_with_a_distilled_decoder_generates_what_pytorch_generates_with_it(
        target: str, tiny_model, bundle_root: Path, decoder_folder: Path) -> None:  # noqa: ANN001
    from edgediff.models.torch_pipeline import torch_pipeline

    pipe = BundlePipeline(_decoder_bundle(tiny_model, bundle_root, target, decoder_folder))
    assert pipe.bundle.components["vae_decoder"]["parity"]["passed"]
    reference = torch_pipeline(with_tiny_decoder(tiny_model, decoder_folder))
    reference.pipeline = pipe.pipeline
    noise = pipe.initial_noise(0)
    image = pipe("w12 w30 w7", noise=noise, steps=3).image
    assert np.abs(image - reference("w12 w30 w7", noise=noise, steps=3).image).max() < PIPELINE_ATOL
    stock = torch_pipeline(tiny_model)  # the source decoder draws a different image from the same latents
    stock.pipeline = pipe.pipeline
    assert np.abs(image - stock("w12 w30 w7", noise=noise, steps=3).image).max() > 0.05


def test_bundle_reports_its_decoder_against_the_source_decoder(
        tiny_model, bundle_root: Path, decoder_folder: Path) -> None:  # noqa: ANN001
    bundle = BundlePipeline(_decoder_bundle(tiny_model, bundle_root, "x86-cpu", decoder_folder)).bundle
    quality = bundle.manifest["quality"]
    assert quality["against_short"] == "source decoder" and "cache" not in quality
    decoder = quality["decoder"]
    assert decoder["config"]["channels"] == [16, 8] and len(decoder["sha256"]) == 64
    assert 0 < decoder["gflop"] < decoder["teacher_gflop"]
    # an untrained decoder is far from the source one: a finite, low PSNR (identical images would be inf)
    assert quality["images"]["prompts"] == 4 and 0 < quality["images"]["psnr"] < 30
    assert quality["speed"]["decode_ms"] > 0 and "speedup" not in quality["speed"]
    assert bundle.manifest["provenance"]["source_hash"] != tiny_model.source_hash


def test_wrapper_clamps_to_the_image_range_the_stock_wrapper_returns(tiny_model) -> None:  # noqa: ANN001
    wrapper = TinyDecoderWrapper(TinyDecoder(TINY_SD_CONFIG), tiny_model.geometry)
    (latents,) = wrapper.example_inputs(32, 32, 1)
    with torch.no_grad():
        image = wrapper(latents * 50)
    assert image.shape == (1, 3, 32, 32) and image.min() >= 0 and image.max() <= 1
