"""The CLI end to end: export -> run -> profile -> validate, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from edgediff.cli import main


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgediff.cli", *args], capture_output=True, text=True)


def test_run_writes_a_png_of_the_bundle_size(ort_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "img.png"
    result = CliRunner().invoke(main, ["run", str(ort_bundle), "--prompt", "a red circle", "--seed", "0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 32)


def test_profile_json_reports_component_and_end_to_end_latency(ort_bundle: Path) -> None:
    result = CliRunner().invoke(main, ["profile", str(ort_bundle), "--iters", "3", "--warmup", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["components"]["denoiser"]["p50_ms"] > 0
    assert report["end_to_end"]["p50_ms"] > report["components"]["denoiser"]["p50_ms"]
    assert report["load_ms"] > 0 and report["peak_rss_mb"] > 0
    assert report["host"]["cpu_count"] >= 1


def test_validate_passes_on_a_fresh_bundle(ort_bundle: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(ort_bundle)])
    assert result.exit_code == 0 and "hashes ok, parity ok" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "/no/such/folder", "--target", "x86-cpu"], "does not exist; pass a diffusers pipeline folder"),
        (["export", "config:tiny-sd", "--target", "pixel-9"], "unknown target 'pixel-9'"),
        (["export", "config:tiny-sd", "--target", "x86-cpu", "--precision", "bf16"], "choose one of fp32, fp16"),
        (["export", "config:tiny-sd", "--target", "jetson-orin"], "cannot be built on this host"),
        (["export", "config:nope", "--target", "x86-cpu"], "unknown architecture config:nope"),
        (["run", "/no/such/bundle"], "is not an edgediff bundle"),
        (["export", "config:tiny-sd", "--target", "x86-cpu", "--precision", "int8", "--cache-interval", "2"],
         "builds fp32/fp16 bundles"),
        (["export", "config:tiny-sd", "--target", "x86-cpu", "--decoder", "tiny"], "ships no tiny decoder"),
        (["export", "config:tiny-sd", "--target", "x86-cpu", "--decoder", "/no/such/decoder"], "no such folder"),
    ],
)
def test_bad_input_gives_one_error_line_exit_2_and_no_output(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    full = [*args, "-o", str(out)]
    result = _cli(*full)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_not_a_diffusers_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    result = _cli("export", str(tmp_path / "model"), "--target", "x86-cpu", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "is not a diffusers pipeline folder (no model_index.json)" in result.stderr
