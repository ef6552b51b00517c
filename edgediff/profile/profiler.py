"""``profile_bundle``: time each component session and the whole pipeline on the bundle's runtime.

Component inputs are synthetic arrays of the manifest's shapes (latency does not depend on values
for these graphs); end to end runs the real pipeline on a fixed prompt and seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.profile.host import host_info, peak_rss_mb
from edgediff.profile.stats import summarize, time_calls

RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "executorch": "executorch"}


@dataclass(frozen=True)
class ProfileSettings:
    iters: int = 20
    warmup: int = 3
    end_to_end_iters: int | None = None  # None: same as iters
    threads: int | None = None
    prompt: str = "a red circle"


def synthetic_feeds(inputs: list[dict[str, Any]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        if spec["dtype"].startswith("int"):
            feeds[spec["name"]] = np.zeros(spec["shape"], dtype=spec["dtype"])
        elif spec["name"] == "timestep":
            feeds[spec["name"]] = np.full(spec["shape"], 499.0, dtype=np.float32)
        else:
            feeds[spec["name"]] = rng.standard_normal(spec["shape"], dtype=np.float32)
    return feeds


def profile_bundle(
    bundle_path: str | Path,
    settings: ProfileSettings = ProfileSettings(),
    tick: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Profile one bundle. ``tick`` is called once per timed run (for a progress bar)."""
    from edgediff.runtimes.pipeline import BundlePipeline

    started = time.perf_counter()
    pipe = BundlePipeline(bundle_path, threads=settings.threads, cache_prompts=False)  # end to end pays for encoding
    load_ms = pipe.load_ms
    bundle = pipe.bundle
    components = {}
    for name, component in bundle.components.items():
        feeds = synthetic_feeds(component["inputs"])
        session = pipe.sessions[name]
        samples = time_calls(lambda s=session, f=feeds: s.run(f), settings.iters, settings.warmup, tick)
        components[name] = summarize(samples) | {"batch": component["inputs"][0]["shape"][0]}

    e2e_iters = settings.end_to_end_iters or settings.iters
    missing = pipe.missing_components()
    if missing:
        end_to_end: dict[str, Any] = {"skipped": f"partial bundle: lacks {', '.join(missing)}"}
    else:
        end_to_end = _time_end_to_end(pipe, settings.prompt, e2e_iters, tick)
    return {
        "bundle": str(bundle.path),
        "target": bundle.manifest["target"]["name"],
        "runtime": bundle.runtime,
        "precision": bundle.precision,
        "source": bundle.manifest["provenance"]["source"],
        "height": bundle.pipeline["height"],
        "width": bundle.pipeline["width"],
        "steps": bundle.pipeline["steps"],
        "iters": settings.iters,
        "warmup": settings.warmup,
        "load_ms": load_ms,
        "components": components,
        "end_to_end": end_to_end,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": time.perf_counter() - started,
        "host": host_info(RUNTIME_PACKAGES.get(bundle.runtime)),
    }


def _time_end_to_end(pipe: Any, prompt: str, iters: int, tick: Callable[[], None] | None) -> dict[str, Any]:
    p = pipe.pipeline
    kwargs: dict[str, Any] = {"seed": 0}
    if p["conditioning"] == "text":
        kwargs["prompt"] = prompt
    else:
        kwargs["class_label"] = 0
    stages: list[dict[str, float]] = []

    def generate() -> None:
        stages.append(pipe(**kwargs).timings_ms)

    samples = time_calls(generate, iters, 1, tick)
    timed = stages[1:]  # the first entry is the warm-up run
    return summarize(samples) | {
        "steps": p["steps"],
        "guidance_scale": p["guidance_scale"],
        "stages_p50_ms": {k: float(np.median([s[k] for s in timed])) for k in timed[0]},
    }


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"**{result['source']}** on `{result['target']}` ({result['runtime']}, {result['precision']}, "
        f"{result['height']}x{result['width']}, {result['steps']} steps)",
        "",
        "| stage | batch | p50 ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, stats in result["components"].items():
        lines.append(f"| {name} | {stats['batch']} | {stats['p50_ms']:.2f} | {stats['p90_ms']:.2f} | {stats['p99_ms']:.2f} |")
    e2e = result["end_to_end"]
    if "skipped" in e2e:
        lines.append(f"| end to end | - | {e2e['skipped']} | | |")
    else:
        lines.append(f"| end to end | 1 image | {e2e['p50_ms']:.2f} | {e2e['p90_ms']:.2f} | {e2e['p99_ms']:.2f} |")
    lines += ["", f"load {result['load_ms']:.0f} ms, peak RSS {result['peak_rss_mb']:.0f} MB, host: {result['host']['cpu']}"]
    return "\n".join(lines)
