"""Latency statistics: percentiles over repeated runs (medians are what reports compare)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def summarize(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms, dtype=np.float64)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "runs": len(samples_ms),
    }


def time_calls(fn: Callable[[], object], iters: int, warmup: int, tick: Callable[[], None] | None = None) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e3)
        if tick is not None:
            tick()
    return samples
