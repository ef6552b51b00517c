"""Real-scale exports (slow): SD-Turbo's architecture at 256x256 on every runnable target.

Random weights: these prove the exporters, parity checks and runtimes hold at 865M parameters, and
give the latency numbers; image quality is measured on the trained zoo models instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgediff.api import export_bundle
from edgediff.profile import ProfileSettings, profile_bundle
from edgediff.runtimes.pipeline import BundlePipeline

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("target", ["x86-cpu", "intel-cpu", "arm64-cpu"])
def test_sd_turbo_256_exports_runs_and_profiles(target: str, tmp_path: Path) -> None:
    out = tmp_path / target
    bundle = export_bundle("config:sd-turbo", target, out, height=256, width=256)
    assert bundle.manifest["parity_passed"]
    for component in bundle.components.values():
        assert component["parity"]["rel_l2_err"] < 1e-4
    pipeline = bundle.pipeline
    assert (pipeline["steps"], pipeline["guidance_scale"], pipeline["denoiser_batch"]) == (1, 0.0, 1)
    assert pipeline["timesteps"] == [999.0]

    image = BundlePipeline(bundle).__call__("a photo of a cat", seed=0).to_uint8()
    assert image.shape == (256, 256, 3)

    report = profile_bundle(out, ProfileSettings(iters=2, warmup=1, end_to_end_iters=2))
    assert report["components"]["denoiser"]["p50_ms"] > 0
    assert report["end_to_end"]["p50_ms"] > 0
