"""Calibration capture: what each component really receives when the real pipeline runs.

Static quantization sets activation ranges from data, and a denoiser's activations change with the
timestep: Q-Diffusion (Li et al., 2023, section 3.2) shows that calibrating on the first steps only
(or on the final ones) clips the others, and samples uniformly across all steps instead. This module
runs the fp32 PyTorch pipeline on calibration prompts, records every component's inputs -- the
denoiser's at every step, with classifier-free guidance batched as the target runs it -- and keeps an
equal share of each timestep. The set is computed once per build (or loaded from a file) and handed to
whichever backend quantizes for the target.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.errors import EdgeDiffError

Feeds = dict[str, np.ndarray]

GENERIC_PROMPTS = (  # for models outside the zoo's grammar: varied subjects, styles and lengths
    "a photo of a cat sitting on a windowsill",
    "a watercolor painting of a lighthouse at dusk",
    "an astronaut riding a horse on the moon",
    "a bowl of ramen, studio lighting, high detail",
    "a city street in the rain at night, neon signs",
    "a portrait of an old fisherman, oil painting",
    "a red sports car on a mountain road",
    "a cozy library with wooden shelves and warm light",
)


class _Recorder:
    """A session proxy that keeps a copy of every feed it forwards."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.input_names = inner.input_names
        self.output_names = inner.output_names
        self.calls: list[Feeds] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self.inner.run(feeds)


class _SkippedDecoder:
    """Stands in for a VAE decoder that is not being calibrated: its output ends the loop unused,
    and decoding is the slowest stage at real resolutions."""

    input_names = ("latents",)
    output_names = ("image",)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"image": np.zeros((1, 3, 1, 1), np.float32)}


@dataclass
class CalibrationSet:
    """Per-component lists of feeds, plus where they came from (recorded in the manifest)."""

    feeds: dict[str, list[Feeds]]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        arrays = {f"{c}/{i}/{k}": v for c, items in self.feeds.items() for i, f in enumerate(items) for k, v in f.items()}
        arrays["__meta__"] = np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + ".partial")
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CalibrationSet:
        if not path.is_file():
            raise EdgeDiffError(f"calibration file {path} does not exist; create one with 'edgediff calibrate'")
        feeds: dict[str, dict[int, Feeds]] = {}
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            for key in data.files:
                if key == "__meta__":
                    continue
                component, index, name = key.split("/", 2)
                feeds.setdefault(component, {}).setdefault(int(index), {})[name] = data[key]
        return cls({c: [items[i] for i in sorted(items)] for c, items in feeds.items()}, meta)


def uniform_over_timesteps(calls: list[Feeds], samples: int) -> list[Feeds]:
    """Keep ``samples`` denoiser calls, every timestep equally represented (round-robin, noisiest first)."""
    by_timestep: dict[float, list[Feeds]] = {}
    for call in calls:
        by_timestep.setdefault(float(call["timestep"].flat[0]), []).append(call)
    order = sorted(by_timestep, reverse=True)
    chosen: list[Feeds] = []
    depth = 0
    while len(chosen) < samples and any(depth < len(by_timestep[t]) for t in order):
        for t in order:
            if depth < len(by_timestep[t]) and len(chosen) < samples:
                chosen.append(by_timestep[t][depth])
        depth += 1
    return chosen


def calibration_prompts(model_source: str, count: int, seed: int = 1234) -> list[str]:
    """Prompts to calibrate on: the zoo grammar for zoo models (a stream disjoint from the eval set's
    seeds), a generic list otherwise."""
    if model_source.startswith("zoo:"):
        from edgediff.zoo.dataset import sample_scene
        from edgediff.zoo.grammar import prompt_for

        rng = np.random.default_rng([seed, 7])
        return [prompt_for(sample_scene(rng)) for _ in range(count)]
    return [GENERIC_PROMPTS[i % len(GENERIC_PROMPTS)] for i in range(count)]


def capture_calibration(
    model: Any,
    recipe: Any,
    *,
    samples: int,
    components: tuple[str, ...] = ("denoiser",),
    prompts: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> CalibrationSet:
    """Run the fp32 PyTorch pipeline as ``recipe`` builds it and record every component's inputs.

    ``samples`` is the number of feeds kept per component; the prompt count defaults to enough prompts
    for each timestep to get ``samples / steps`` denoiser calls. ``device`` is where the fp32 pipeline
    runs; the recorded feeds are numpy either way, so every backend reads the same set.
    """
    from edgediff.models.torch_pipeline import torch_pipeline

    pipe = torch_pipeline(model, recipe, device=device)
    steps = pipe.pipeline["steps"]
    n_prompts = prompts or max(1, -(-samples // steps))
    texts = calibration_prompts(model.source, n_prompts, seed)
    if "vae_decoder" not in components and "vae_decoder" in pipe.sessions:
        pipe.sessions["vae_decoder"] = _SkippedDecoder()
    recorders = {name: _Recorder(pipe.sessions[name]) for name in components if name in pipe.sessions}
    pipe.sessions.update(recorders)
    for i, text in enumerate(texts):
        if pipe.pipeline["conditioning"] == "text":
            pipe(text, seed=seed + i)
        else:
            pipe(class_label=i % max(1, pipe.pipeline["num_classes"]), seed=seed + i)
    feeds = {
        name: (uniform_over_timesteps(rec.calls, samples) if name == "denoiser" else rec.calls[:samples])
        for name, rec in recorders.items()
    }
    meta = {
        "source": model.source,
        "source_hash": model.source_hash,
        "prompts": len(texts),
        "steps": steps,
        "guidance_scale": pipe.pipeline["guidance_scale"],
        "height": pipe.pipeline["height"],
        "width": pipe.pipeline["width"],
        "samples": {name: len(items) for name, items in feeds.items()},
        "timesteps_covered": sorted({float(f["timestep"].flat[0]) for f in feeds.get("denoiser", [])}, reverse=True),
    }
    return CalibrationSet(feeds, meta)
