"""Guidance-distilled denoisers: the student folder's checks, bundles that swap one in, and their report."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgediff.distill.guidance_swap import read_student, student_folder, with_guided_denoiser
from edgediff.errors import EdgeDiffError, TargetError
from edgediff.recipe import Recipe
from edgediff.runtimes.pipeline import BundlePipeline
from edgediff.zoo.paths import zoo_path

PIPELINE_ATOL = 2e-3  # as tests/distill/test_tiny_decoder.py
PROMPT = "w12 w30 w7"


def _write_student(module: torch.nn.Module, folder: Path, record: dict | None) -> Path:
    module.save_pretrained(folder)
    if record is not None:
        (folder / "guidance.json").write_text(json.dumps(record))
    return folder


@pytest.fixture(scope="module")
def tiny_student(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """The tiny model's denoiser with its output layer nudged: a stand-in whose images differ from the source's."""
    unet = tiny_model.build_component("denoiser").model
    with torch.no_grad():
        for p in unet.conv_out.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return _write_student(unet, tmp_path_factory.mktemp("student") / "unet_guided", {"guidance_scale": 5.0})


@pytest.fixture(scope="module")
def guided_bundle(tiny_model, bundle_root: Path, tiny_student: Path) -> Path:  # noqa: ANN001
    from edgediff.build import build
    from edgediff.targets import get_target

    out = bundle_root / "x86-cpu-guided"
    if not out.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(tiny_model, get_target("x86-cpu"), Recipe(options={"denoiser": str(tiny_student)}), out)
    return out


class _Counting:
    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.input_names, self.output_names = inner, inner.input_names, inner.output_names
        self.batches: list[int] = []

    def run(self, feeds):  # noqa: ANN001, ANN201
        self.batches.append(len(feeds["sample"]))
        return self.inner.run(feeds)


def test_a_guided_bundle_runs_the_denoiser_once_per_step_on_one_latent(guided_bundle: Path) -> None:
    pipe = BundlePipeline(guided_bundle)
    p = pipe.pipeline
    assert p["guidance_scale"] == 1.0 and p["denoiser_batch"] == 1
    assert p["guidance_distilled"]["guidance_scale"] == 5.0
    assert pipe.bundle.components["denoiser"]["inputs"][0]["shape"][0] == 1
    pipe.sessions["denoiser"] = counting = _Counting(pipe.sessions["denoiser"])
    pipe(PROMPT, steps=3)
    assert counting.batches == [1, 1, 1]


def test_a_guided_bundle_generates_what_pytorch_generates_with_the_student(
        tiny_model, guided_bundle: Path, tiny_student: Path) -> None:  # noqa: ANN001
    from edgediff.models.torch_pipeline import torch_pipeline

    pipe = BundlePipeline(guided_bundle)
    reference = torch_pipeline(with_guided_denoiser(tiny_model, tiny_student))
    reference.pipeline = pipe.pipeline
    noise = pipe.initial_noise(0)
    image = pipe(PROMPT, noise=noise, steps=3).image
    assert np.abs(image - reference(PROMPT, noise=noise, steps=3).image).max() < PIPELINE_ATOL
    teacher = torch_pipeline(tiny_model)  # the source, guided at 5 on a batch of two, draws another image
    assert np.abs(image - teacher(PROMPT, noise=noise, steps=3).image).max() > 0.01


def test_a_guided_bundle_reports_its_images_against_the_guided_teacher(guided_bundle: Path, tiny_model) -> None:  # noqa: ANN001
    manifest = BundlePipeline(guided_bundle).bundle.manifest
    quality = manifest["quality"]
    assert quality["against_short"] == "guided teacher" and "guidance 5" in quality["against"]
    assert quality["guided"]["guidance_scale"] == 5.0 and len(quality["guided"]["sha256"]) == 64
    assert quality["images"]["prompts"] == 4 and 0 < quality["images"]["psnr"] < 60
    assert manifest["provenance"]["source_hash"] != tiny_model.source_hash


def test_the_runtime_refuses_to_guide_a_denoiser_that_has_guidance_distilled_in(guided_bundle: Path) -> None:
    with pytest.raises(EdgeDiffError, match="guidance 5 distilled in; run it without --guidance-scale"):
        BundlePipeline(guided_bundle)(PROMPT, steps=2, guidance_scale=5.0)


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"guidance_scale": 3.0}, EdgeDiffError, "has guidance 5 distilled in; drop --guidance-scale 3"),
    ({"precision": "int8"}, TargetError, "--denoiser builds fp32/fp16 bundles.*drop --precision int8"),
])
def test_settings_the_student_cannot_honour_fail_before_any_work(
        tiny_student: Path, tmp_path: Path, options: dict, error: type, message: str) -> None:
    from edgediff.api import export_bundle

    with pytest.raises(error, match=message):
        export_bundle("config:tiny-sd", "x86-cpu", tmp_path / "b", options={"denoiser": str(tiny_student)}, **options)
    assert not (tmp_path / "b").exists()


def test_asking_for_a_shipped_student_a_model_lacks_says_how_to_make_one(tiny_model) -> None:  # noqa: ANN001
    with pytest.raises(EdgeDiffError, match="ships no guidance-distilled denoiser.*train guidance.*--denoiser FOLDER"):
        student_folder(tiny_model, "guided")


def test_a_folder_without_its_guidance_record_is_refused(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    folder = _write_student(tiny_model.build_component("denoiser").model, tmp_path / "s", None)
    with pytest.raises(EdgeDiffError, match="no guidance.json saying which guidance scale"):
        read_student(folder)


def test_a_student_of_other_weights_or_another_class_is_refused(tmp_path: Path) -> None:
    from edgediff.models import load_model

    model = load_model("zoo:shapes-unet")
    folder = tmp_path / "other"
    shutil.copytree(zoo_path("zoo:shapes-unet") / "unet", folder)
    (folder / "guidance.json").write_text(json.dumps({"guidance_scale": 5.0, "teacher_sha256": "0" * 64}))
    with pytest.raises(EdgeDiffError, match="distilled from other denoiser weights"):
        with_guided_denoiser(model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"_class_name": "PixArtTransformer2DModel"}))
    with pytest.raises(EdgeDiffError, match="is a PixArtTransformer2DModel, but zoo:shapes-unet's denoiser is a "
                                            "UNet2DConditionModel"):
        with_guided_denoiser(model, folder)


@pytest.mark.parametrize("name", ["zoo:shapes-dit", "zoo:shapes-unet"])
def test_a_shipped_student_is_its_teacher_distilled_at_the_models_default_guidance(name: str) -> None:
    from edgediff.models import load_model

    model = load_model(name)
    folder = student_folder(model, "guided")
    guided = with_guided_denoiser(model, folder)  # checks class and teacher weights
    assert read_student(folder).guidance_scale == model.defaults.guidance_scale > 1.0
    assert guided.defaults.guidance_scale == 1.0 and guided.source_hash != model.source_hash
    assert load_model(name).source_hash == model.source_hash  # the student folder is not part of the model's hash


def test_the_student_hash_is_reused_within_a_build_and_follows_an_edit(tmp_path: Path) -> None:
    from edgediff.distill.guidance_swap import student_sha256
    from edgediff.models.hashing import sha256_tree

    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    first = student_sha256(folder)
    assert first == sha256_tree(folder) == student_sha256(folder)
    (folder / "config.json").write_text('{"edited": 1}')
    assert student_sha256(folder) == sha256_tree(folder) != first
