"""Calibration capture: where its fp32 pipeline runs and what it records."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from edgediff import build as build_module
from edgediff.build import resolve_settings
from edgediff.export.parity import compare
from edgediff.quantize import calibration as calibration_module
from edgediff.quantize.calibration import capture_calibration
from edgediff.recipe import Recipe
from edgediff.targets import get_target


@pytest.mark.parametrize(("target", "device"), [("x86-cpu", "cpu"), ("h100", "cuda")])
def test_a_build_captures_calibration_on_its_targets_device(tiny_model, monkeypatch, target: str,
                                                              device: str) -> None:  # noqa: ANN001
    seen: dict[str, Any] = {}

    def record(*args: Any, **kwargs: Any) -> str:
        seen.update(kwargs)
        return "captured"

    monkeypatch.setattr(calibration_module, "capture_calibration", record)
    recipe = Recipe(precision="int8", options={"calibration_samples": 4})
    settings = resolve_settings(tiny_model, get_target("x86-cpu"), recipe)  # h100's would need its GPU here
    assert build_module._calibration_for_build(tiny_model, get_target(target), recipe, settings,
                                               lambda _: None) == "captured"
    assert seen["device"] == device and seen["samples"] == 5  # one more, held out for the parity check


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_calibration_captured_on_the_gpu_matches_the_cpus(tiny_model) -> None:  # noqa: ANN001
    recipe = Recipe(steps=4)
    on_cpu = capture_calibration(tiny_model, recipe, samples=4)
    on_gpu = capture_calibration(tiny_model, recipe, samples=4, device="cuda")
    assert on_gpu.meta["timesteps_covered"] == on_cpu.meta["timesteps_covered"]
    for cpu_feed, gpu_feed in zip(on_cpu.feeds["denoiser"], on_gpu.feeds["denoiser"], strict=True):
        for name, value in cpu_feed.items():
            assert isinstance(gpu_feed[name], np.ndarray)
            # later steps' latents carry the GPU's own rounding (cuDNN convolutions may use TF32)
            assert compare(value, gpu_feed[name]).rel_l2_err < 1e-2, name
