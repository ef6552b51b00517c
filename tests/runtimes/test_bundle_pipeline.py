"""BundlePipeline reproduces the diffusers pipeline, per runtime, and needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgediff.runtimes.pipeline import BundlePipeline

# fp32 end to end through 4 guided steps: reordered reductions differ by ~1e-6 per step
PIPELINE_ATOL = 1e-4

DIFFUSERS_SCHEDULERS = {"euler": "EulerDiscreteScheduler", "ddim": "DDIMScheduler", "lcm": "LCMScheduler"}


def _diffusers_pipeline(model, scheduler: str):  # noqa: ANN001, ANN202
    import diffusers
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(model.tokenizer_json),
        model_max_length=model.geometry.text_max_length,
        pad_token="<|endoftext|>",
    )
    scheduler_cls = getattr(diffusers, DIFFUSERS_SCHEDULERS[scheduler])
    return diffusers.StableDiffusionPipeline(
        vae=model.build_component("vae_decoder").vae,
        text_encoder=model.build_component("text_encoder").encoder,
        tokenizer=tokenizer,
        unet=model.build_component("denoiser").model,
        scheduler=scheduler_cls.from_config(model.scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _reference(model, scheduler: str, prompt: str, noise: np.ndarray, steps: int, guidance: float) -> np.ndarray:  # noqa: ANN001
    import torch

    pipe = _diffusers_pipeline(model, scheduler)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    if scheduler == "lcm":
        # LCM injects noise between steps; feed diffusers the noise BundlePipeline draws.
        import diffusers.schedulers.scheduling_lcm as lcm_module

        rng = np.random.default_rng([0, 1])
        original = lcm_module.randn_tensor
        lcm_module.randn_tensor = lambda shape, **kw: torch.from_numpy(rng.standard_normal(tuple(shape), dtype=np.float32))
        try:
            out = pipe(prompt, latents=torch.from_numpy(noise), num_inference_steps=steps, guidance_scale=guidance,
                       output_type="np", height=32, width=32, generator=generator)
        finally:
            lcm_module.randn_tensor = original
    else:
        out = pipe(prompt, latents=torch.from_numpy(noise), num_inference_steps=steps, guidance_scale=guidance,
                   output_type="np", height=32, width=32, generator=generator)
    return out.images[0]


def test_bundle_pipeline_matches_diffusers_for_the_same_noise(tiny_bundle: Path, tiny_model) -> None:  # noqa: ANN001
    pipe = BundlePipeline(tiny_bundle)
    noise = pipe.initial_noise(0)
    ours = pipe("w12 w30 w7", seed=0, noise=noise).image[0].transpose(1, 2, 0)
    reference = _reference(tiny_model, "euler", "w12 w30 w7", noise, steps=4, guidance=5.0)
    assert np.abs(ours - reference).max() < PIPELINE_ATOL


@pytest.mark.parametrize("scheduler", ["ddim", "lcm"])
def test_other_samplers_match_diffusers_on_onnxruntime(ort_bundle: Path, tiny_model, scheduler: str) -> None:  # noqa: ANN001
    pipe = BundlePipeline(ort_bundle)
    noise = pipe.initial_noise(3)
    ours = pipe("w5", seed=0, noise=noise, scheduler=scheduler, steps=3).image[0].transpose(1, 2, 0)
    reference = _reference(tiny_model, scheduler, "w5", noise, steps=3, guidance=5.0)
    assert np.abs(ours - reference).max() < PIPELINE_ATOL


def test_same_seed_gives_the_same_image_and_another_seed_does_not(ort_bundle: Path) -> None:
    pipe = BundlePipeline(ort_bundle)
    a, b, c = (pipe("w1 w2", seed=s).to_uint8() for s in (7, 7, 8))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("target", ["x86-cpu", "intel-cpu"])
def test_bundle_pipeline_runs_without_importing_torch(target: str, bundle_for) -> None:  # noqa: ANN001
    bundle = bundle_for(target)
    code = (
        "import sys, json\n"
        "from edgediff.runtimes.pipeline import BundlePipeline\n"
        f"image = BundlePipeline({str(bundle)!r})('w3 w4', seed=1).to_uint8()\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'shape': list(image.shape)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "shape": [32, 32, 3]}


def test_onnxruntime_sessions_of_a_pipeline_spin_only_within_a_run(ort_bundle: Path) -> None:
    pipe = BundlePipeline(ort_bundle)
    for name, session in pipe.sessions.items():
        options = session._session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1", name
        assert options.get_session_config_entry("session.force_spinning_stop") == "1", name
