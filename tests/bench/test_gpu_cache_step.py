"""The GPU caching bench on the CPU: every family's split runs under each plan, and the counted saving follows
the plan's mix of full and shallow steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["config:tiny-sd", pytest.param("config:tiny-pixart", marks=pytest.mark.slow)])
def test_each_plan_runs_and_counts_fewer_flops_the_longer_features_are_reused(model: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench.gpu_cache_step", "--device", "cpu", "--no-compile", "--rounds", "1",
         "--per-round", "1", "--steps", "8", "--intervals", "2", "4", "--models", f"{model}@32", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / f"gpu_cache_step_{model.replace(':', '_')}_32.json").read_text())["models"][0]
    plans = result["plans"]
    assert [plans[n]["full_steps"] for n in ("1", "2", "4")] == [8, 4, 2]
    assert plans["1"]["counted_speedup"] == 1.0 < plans["2"]["counted_speedup"] < plans["4"]["counted_speedup"]
    assert result["gflop"]["shallow"] < result["gflop"]["stock"] <= result["gflop"]["full"] * 1.001
    assert all(p["image_denoise_p50_ms"] > 0 for p in plans.values())
