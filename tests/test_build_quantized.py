"""Quantized precisions through the whole build: calibration across timesteps, manifest records, runnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgediff.build import build
from edgediff.bundle import open_bundle
from edgediff.errors import TargetError
from edgediff.recipe import Recipe
from edgediff.runtimes.pipeline import BundlePipeline
from edgediff.targets import get_target


# each case is a whole build with its quality report (about 30 s); the second runs with CI's intel-cpu slow tests
@pytest.mark.parametrize(("target", "precision"), [("x86-cpu", "int8"),
                                                   pytest.param("intel-cpu", "int4w", marks=pytest.mark.slow)])
def test_quantized_bundle_keeps_other_components_float_and_records_the_scheme(
    tiny_model, tmp_path: Path, target: str, precision: str
) -> None:  # noqa: ANN001
    recipe = Recipe(precision=precision, options={"calibration_samples": 8, "quality_prompts": 2})
    bundle = build(tiny_model, get_target(target), recipe, tmp_path / "q")
    components = bundle.components
    assert components["denoiser"]["precision"] == precision
    assert components["denoiser"]["quantization"]["scheme"]["name"] == precision
    assert components["vae_decoder"]["precision"] == "fp32" and components["vae_decoder"]["quantization"] is None
    if precision == "int8":
        # static int8 calibrates on denoiser inputs from every timestep (one held out for parity)
        assert components["denoiser"]["quantization"]["calibration_samples"] == 8
        assert bundle.manifest["calibration"]["timesteps_covered"] == [999.0, 749.0, 499.0, 249.0]
    image = BundlePipeline(open_bundle(tmp_path / "q"))("w1 w2", seed=0).to_uint8()
    assert image.shape == (32, 32, 3) and np.isfinite(image).all()
    # every quantized bundle reports its images against fp32, its size and its speed
    quality = bundle.manifest["quality"]
    assert quality["images"]["prompts"] == 2 and 5.0 < quality["images"]["psnr"] <= 100.0
    assert quality["size"]["fp32_denoiser_bytes"] > quality["size"]["denoiser_bytes"] > 0
    assert quality["speed"]["denoiser_step_ms"] > 0 and quality["speed"]["fp32_denoiser_step_ms"] > 0


def test_a_scheme_the_format_lacks_is_refused_before_work(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(TargetError, match="does not support precision 'fp8'"):
        build(tiny_model, get_target("x86-cpu"), Recipe(precision="fp8"), tmp_path / "q")
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(("target", "precision", "samples"), [
    ("x86-cpu", "int8", 64), ("intel-cpu", "int8", 64), ("arm64-cpu", "int8", 64),
    ("arm64-cpu", "int4w", 64),  # XNNPACK quantizes int4w's convolutions W8A8: their ranges are calibrated
    ("x86-cpu", "int4w", 0), ("intel-cpu", "int4w", 0), ("arm64-cpu", "int8w", 0), ("x86-cpu", "int8w", 0),
])
def test_calibration_is_captured_only_where_the_format_quantizes_activations_statically(
        target: str, precision: str, samples: int) -> None:
    from edgediff.build import calibration_samples_for
    from edgediff.quantize import get_scheme

    scheme = get_scheme(precision)
    assert calibration_samples_for(scheme, get_target(target), Recipe()) == samples
    asked = Recipe(options={"calibration_samples": 8})
    assert calibration_samples_for(scheme, get_target(target), asked) == (8 if samples else 0)
