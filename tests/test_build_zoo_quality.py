"""Quantized zoo bundles (slow): int8 keeps adherence within a point of fp32, and ``edgediff eval`` reports it.

The zoo models are the ones whose images mean something, so this is where the quality promise is
checked end to end: build with an adherence target, then score the bundle with the evaluator CLI
against the fp32 model on the same prompts and noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgediff.cli import main

pytestmark = pytest.mark.slow

# ids are the target names, so CI's per-target slow runs (-k x86-cpu, ...) each take their own. On
# arm64-cpu every search trial lowers the UNet to XNNPACK again, which outlasts CI here: heavy, by hand.
# The target is confirmed on the written bundle: on x86-cpu the search's chosen trial (2 float layers,
# no prompt lost) and the bundle exported after it once differed by one borderline prompt.
TARGETS = ("x86-cpu", "intel-cpu",
           pytest.param("arm64-cpu", marks=pytest.mark.heavy))


@pytest.mark.parametrize("target", TARGETS)
def test_int8_zoo_bundle_keeps_adherence_within_one_point(target: str, tmp_path: Path) -> None:
    """With the scheme's default 64 calibration samples: at 16, XNNPACK's per-tensor activation ranges
    lost a small star on a white background in every trial, even with 33 layers kept in float."""
    out = tmp_path / "bundle"
    runner = CliRunner()
    built = runner.invoke(main, ["export", "zoo:shapes-unet", "--target", target, "--precision", "int8", "-o", str(out),
                                 "--max-quality-drop", "0.01", "--quality-prompts", "16"])
    assert built.exit_code == 0, built.output
    assert "quality vs fp32: PSNR" in built.output
    manifest = json.loads((out / "manifest.json").read_text())
    search = manifest["components"][1]["quantization"]["fallback_search"]
    assert search["met"] and search["confirmed_on_bundle"] and manifest["quality"]["images"]["adherence_drop"] <= 0.01

    scored = runner.invoke(main, ["eval", str(out), "--teacher", "zoo:shapes-unet", "--prompts", "16", "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)
    assert result["psnr"] >= 25.0
    facts = result["bundle"]
    assert facts["precision"] == "int8" and facts["denoiser_step_ms"] > 0
    assert facts["build_report"]["size"]["compression"] > 2.5
