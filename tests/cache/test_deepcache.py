"""Cached bundles: each family's split (DeepCache for UNets, Δ-cache for PixArt and DiT transformers) reproduces
the stock denoiser, the plan decides which graph runs, and every runnable target runs the cached loop as PyTorch
runs it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgediff.cache import CachePlan
from edgediff.cache.splits import with_deep_cache
from edgediff.errors import EdgeDiffError, TargetError
from edgediff.recipe import Recipe
from edgediff.runtimes.pipeline import BundlePipeline

PIPELINE_ATOL = 2e-3  # as tests/runtimes: images in [0, 1] after a few steps through an exported graph


@pytest.fixture(scope="module")
def pixart_model():
    from edgediff.models import load_model

    return load_model("config:tiny-pixart")


@pytest.fixture(scope="module")
def dit_model():
    from edgediff.models import load_model

    return load_model("config:tiny-dit")


@pytest.fixture(scope="module", params=["unet", "pixart", "dit"])
def family_model(request: pytest.FixtureRequest):  # noqa: ANN201
    """A tiny model of each cacheable family: config:tiny-sd, config:tiny-pixart, config:tiny-dit."""
    return request.getfixturevalue({"unet": "tiny_model", "pixart": "pixart_model", "dit": "dit_model"}[request.param])


@pytest.fixture(scope="module")
def halves(family_model):  # noqa: ANN001
    cached = with_deep_cache(family_model)
    stock = family_model.build_component("denoiser")
    return stock, cached.build_component("denoiser"), cached.build_component(CachePlan.shallow_component)


def test_full_half_returns_the_stock_denoiser_output_and_its_deep_features(halves) -> None:  # noqa: ANN001
    stock, full, shallow = halves
    inputs = stock.example_inputs(32, 32, 2)
    with torch.no_grad():
        expected = stock(*inputs)
        noise_pred, features = full(*inputs)
    assert torch.equal(noise_pred, expected)
    # the features are exactly what the shallow graph declares as its last input
    assert tuple(features.shape) == shallow.input_specs(32, 32, 2)[-1].shape


@pytest.mark.parametrize("family", ["pixart", "dit"])
def test_transformer_features_are_the_back_blocks_contribution_to_the_token_stream(family: str, request) -> None:  # noqa: ANN001
    from edgediff.cache.splits import CACHED_DENOISERS

    model = request.getfixturevalue(f"{family}_model")
    full_cls, shallow_cls = CACHED_DENOISERS.get(family)
    stock = model.build_component("denoiser")
    inputs = stock.example_inputs(32, 32, 2, seed=1)
    with torch.no_grad():
        _, delta = full_cls(stock.model, model.geometry)(*inputs)
        # a zero Δ is the transformer with its back blocks removed: not the stock output
        skipped = shallow_cls(stock.model, model.geometry)(*inputs, torch.zeros_like(delta))
    assert delta.abs().mean() > 1e-3 and not torch.allclose(skipped, stock(*inputs), atol=1e-3)


def test_the_shallow_transformer_runs_a_tenth_of_the_blocks() -> None:
    from edgediff.cache.delta_transformer import front_blocks

    assert [front_blocks(n) for n in (2, 10, 28)] == [1, 1, 3]
    with pytest.raises(TargetError, match="2 or more blocks"):
        front_blocks(1)


def test_shallow_half_on_the_same_steps_features_reproduces_the_full_output(halves) -> None:  # noqa: ANN001
    stock, full, shallow = halves
    sample, timestep, context = stock.example_inputs(32, 32, 2, seed=4)
    with torch.no_grad():
        expected, features = full(sample, timestep, context)
        same_step = shallow(sample, timestep, context, features)
        later_step = shallow(sample, timestep - 100, context, features)
    assert torch.allclose(same_step, expected, atol=1e-5)
    # stale features are an approximation, not the same function: a later timestep changes the output
    assert not torch.allclose(later_step, stock(sample, timestep - 100, context), atol=1e-3)


def test_shallow_graph_leaves_out_the_deep_blocks(halves) -> None:  # noqa: ANN001
    from torch.utils.flop_counter import FlopCounterMode

    _, full, shallow = halves
    counts = []
    for module in (full, shallow):
        inputs = module.example_inputs(32, 32, 2)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(*inputs)
        counts.append(counter.get_total_flops())
    assert counts[1] < 0.8 * counts[0]


def _cached_bundle(tiny_model, root: Path, target: str, interval: int) -> Path:  # noqa: ANN001
    from edgediff.build import build
    from edgediff.targets import get_target

    out = root / f"{tiny_model.family}-{target}-cache{interval}"
    if not out.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(tiny_model, get_target(target), Recipe(options={"cache_interval": interval}), out)
    return out


class _Recording:
    """A session that logs its component's name on each run."""

    def __init__(self, session, name: str, log: list[str]) -> None:  # noqa: ANN001
        self.session, self.name, self.log = session, name, log
        self.input_names, self.output_names = session.input_names, session.output_names

    def run(self, feeds):  # noqa: ANN001, ANN201
        self.log.append(self.name)
        return self.session.run(feeds)


def test_cached_bundle_runs_the_full_denoiser_every_interval_steps_and_the_shallow_one_between(
        tiny_model, bundle_root: Path) -> None:  # noqa: ANN001
    bundle = _cached_bundle(tiny_model, bundle_root, "x86-cpu", 2)
    pipe = BundlePipeline(bundle)
    assert pipe.bundle.pipeline["cache"]["interval"] == 2
    log: list[str] = []
    for name in ("denoiser", CachePlan.shallow_component):
        pipe.sessions[name] = _Recording(pipe.sessions[name], name, log)
    pipe("w1 w2", seed=0, steps=5)
    assert log == ["denoiser", "denoiser_shallow", "denoiser", "denoiser_shallow", "denoiser"]
    log.clear()
    pipe("w1 w2", seed=0, steps=3, cache_interval=3)
    assert log == ["denoiser", "denoiser_shallow", "denoiser_shallow"]


def test_cached_bundle_reports_what_caching_costs_and_saves_against_every_step_full(
        tiny_model, bundle_root: Path) -> None:  # noqa: ANN001
    bundle = BundlePipeline(_cached_bundle(tiny_model, bundle_root, "x86-cpu", 2)).bundle
    quality, steps = bundle.manifest["quality"], bundle.pipeline["steps"]
    assert quality["cache"]["interval"] == 2 and quality["cache"]["full_steps"] == -(-steps // 2)
    images = quality["images"]
    # cached images are close to, but not the same as, the every-step-full ones (PSNR of identical images is inf)
    assert images["prompts"] == 4 and 15 < images["psnr"] < 200
    assert quality["speed"]["image_ms"] > 0 and quality["speed"]["uncached_image_ms"] > 0


def test_running_a_cached_bundle_at_a_step_count_its_report_did_not_measure_says_so(
        tiny_model, bundle_root: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from edgediff.cache.plan import unmeasured_steps_note
    from edgediff.cli import main

    bundle = _cached_bundle(tiny_model, bundle_root, "x86-cpu", 2)
    manifest = BundlePipeline(bundle).bundle.manifest
    measured = manifest["quality"]["cache"]["steps"]
    assert unmeasured_steps_note(manifest, None) is None and unmeasured_steps_note(manifest, measured) is None
    assert f"measured at {measured} steps, not at 2" in unmeasured_steps_note(manifest, 2)
    uncached = {**manifest, "pipeline": {**manifest["pipeline"], "cache": None}}
    assert unmeasured_steps_note(uncached, 2) is None

    args = ["run", str(bundle), "--prompt", "w1", "--steps", "2", "-o", str(tmp_path / "a.png")]
    noted = CliRunner().invoke(main, args)
    assert noted.exit_code == 0 and "note: this bundle caches every 2 steps" in noted.output
    every_step_full = CliRunner().invoke(main, [*args, "--cache-interval", "1"])
    assert every_step_full.exit_code == 0 and "note:" not in every_step_full.output


@pytest.mark.parametrize("target", ["x86-cpu", *(pytest.param(t, marks=pytest.mark.slow) for t in ("intel-cpu", "arm64-cpu"))])
def test_cached_bundle_generates_what_pytorch_generates_with_the_same_plan(
        target: str, family_model, bundle_root: Path) -> None:  # noqa: ANN001
    from edgediff.models.torch_pipeline import torch_pipeline

    pipe = BundlePipeline(_cached_bundle(family_model, bundle_root, target, 2))
    reference = torch_pipeline(with_deep_cache(family_model))
    reference.pipeline = pipe.pipeline  # the bundle's sampling and plan, over the PyTorch halves
    reference.cache_plan = pipe.cache_plan
    noise = pipe.initial_noise(0)
    request = {"class_label": 3} if pipe.pipeline["conditioning"] == "class" else {"prompt": "w12 w30 w7"}
    cached = pipe(**request, noise=noise, steps=4).image
    export_error = np.abs(cached - reference(**request, noise=noise, steps=4).image).max()
    # every step full: the stock denoiser's image, which caching only approximates
    uncached = pipe(**request, noise=noise, steps=4, cache_interval=1).image
    stock = torch_pipeline(family_model)
    stock.pipeline = {**pipe.pipeline, "cache": None}
    assert np.abs(uncached - stock(**request, noise=noise, steps=4).image).max() < PIPELINE_ATOL
    # The bundle follows PyTorch's cached loop, not its uncached one: the export's error is far below what
    # caching changes (UNet: 0.010 changed; the random tiny PixArt's blocks add little, 3e-4 changed).
    caching_change = np.abs(cached - uncached).max()
    assert export_error < PIPELINE_ATOL and export_error < 0.1 * caching_change, (export_error, caching_change)


def test_caching_a_family_without_a_split_fails_naming_what_can_be_cached(tiny_model) -> None:  # noqa: ANN001
    from dataclasses import replace

    with pytest.raises(TargetError, match="splits unet, pixart, dit denoisers.*sdxl denoiser.*build without --cache-interval"):
        with_deep_cache(replace(tiny_model, family="sdxl"))


def test_caching_a_quantized_bundle_fails_before_any_work(tmp_path: Path) -> None:
    from edgediff.api import export_bundle

    with pytest.raises(TargetError, match="fp32/fp16 bundles.*drop --precision int8"):
        export_bundle("config:tiny-sd", "x86-cpu", tmp_path / "b", precision="int8", options={"cache_interval": 2})
    assert not (tmp_path / "b").exists()


def test_asking_an_uncached_bundle_to_cache_says_how_to_get_one(ort_bundle: Path) -> None:
    with pytest.raises(EdgeDiffError, match="re-export it with --cache-interval"):
        BundlePipeline(ort_bundle)("w1", seed=0, cache_interval=2)


def test_plan_rejects_an_interval_below_one() -> None:
    with pytest.raises(EdgeDiffError, match="--cache-interval must be an integer >= 2"):
        CachePlan(interval=0)
