"""The GPU quantization bench on the CPU: every variant runs through its emulation, and split runs merge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.bench.gpu_quant_step import _markdown, merge_reports

REPO = Path(__file__).resolve().parents[2]


def test_static_and_dynamic_variants_run_and_split_runs_merge_into_one_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench.gpu_quant_step", "--device", "cpu", "--no-compile", "--rounds", "1",
         "--per-round", "1", "--calibration-timesteps", "2", "--models", "config:tiny-sd@32",
         "--schemes", "fp8", "fp8-static", "int8-static", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    path = tmp_path / "gpu_quant_step.json"
    results = json.loads(path.read_text())["models"][0]["results"]
    assert set(results) == {"bf16", "fp8", "fp8-static", "int8-static"}
    # the emulated layers are the real arithmetic: close to the unquantized model, not equal to it
    for name in ("fp8", "fp8-static", "int8-static"):
        assert 0.0 < results[name]["error_vs_bf16"]["rel_l2"] < 0.1

    joined = merge_reports([path, path])
    assert len(joined["models"]) == 2 and len(joined["runs"]) == 2 and " ; " in joined["command"]
    assert all(m["peaks_tflops"] == {} for m in joined["models"])  # each model keeps its own run's peaks
    table = _markdown(joined)
    assert table.count("| fp8-static |") == 2 and "first of 2 runs" in table


def test_merging_a_missing_report_fails_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench.gpu_quant_step", "--merge", str(tmp_path / "none.json"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("pass the gpu_quant_step.json files of earlier runs")
    assert not (tmp_path / "out").exists()
