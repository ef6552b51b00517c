"""The manifest's ``quality`` report for a cached bundle: what caching costs in image quality and
what it saves in time, both measured on the finished bundle itself.

The reference is the same bundle with every step on the full denoiser (``cache_interval=1``): that
graph passed its parity check against PyTorch at build time, so the gap measured is caching's alone,
not the exporter's. Images come from the same prompts and noise; the denoising loops of the two plans
are timed alternately so machine noise hits both alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.runtimes.pipeline import BundlePipeline, Generation

DEFAULT_PROMPTS = {True: 32, False: 4}  # with the zoo evaluator (adherence needs many prompts) / PSNR only
TIMED_ROUNDS = 5


class _EveryStepFull:
    """The bundle's pipeline with caching off: the teacher the cached plan is measured against."""

    def __init__(self, pipe: BundlePipeline) -> None:
        self.pipe = pipe
        self.pipeline = pipe.pipeline

    def __call__(self, prompt: str = "", **kwargs: Any) -> Generation:
        return self.pipe(prompt, cache_interval=1, **kwargs)


def cache_quality_report(bundle_dir: Path, prompts: int | None = None, seed: int = 0) -> dict[str, Any]:
    from edgediff.quantize.quality import QualityProbe, evaluator_applies

    pipe = BundlePipeline(bundle_dir, verify=False)
    plan = pipe.cache_plan
    assert plan is not None, "only cached bundles get a cache report"
    count = prompts or DEFAULT_PROMPTS[evaluator_applies(pipe.pipeline)]
    probe = QualityProbe(_EveryStepFull(pipe), count, seed)
    measured = probe.measure_pipeline(pipe)
    steps = pipe.pipeline["steps"]
    return {
        "against": "the same bundle with every step on the full denoiser (parity-checked against PyTorch), "
                   "same prompts and noise",
        "cache": plan.to_json() | {"steps": steps, "full_steps": plan.full_steps(steps)},
        "images": measured,
        "speed": _loop_speed(pipe, probe.prompts[0] if pipe.pipeline["conditioning"] == "text" else ""),
    }


def _loop_speed(pipe: BundlePipeline, prompt: str) -> dict[str, Any]:
    """Median denoising-loop ms of the cached plan and of every step full, runs alternating."""
    class_label = 0 if pipe.pipeline["conditioning"] == "class" else None
    times: dict[int | None, list[float]] = {None: [], 1: []}  # None: the bundle's plan; 1: every step full
    for round_index in range(TIMED_ROUNDS + 1):
        for interval in times:
            started = time.perf_counter()
            pipe(prompt, class_label=class_label, seed=round_index, cache_interval=interval)
            if round_index:  # the first round warms both plans up
                times[interval].append((time.perf_counter() - started) * 1e3)
    cached, full = (float(np.median(times[k])) for k in (None, 1))
    return {"image_ms": cached, "uncached_image_ms": full, "speedup": full / cached,
            "speedup_of": "the uncached bundle per image", "measured_on": f"build host, alternating, median of {TIMED_ROUNDS}"}
