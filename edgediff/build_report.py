"""The manifest's ``quality`` report for float bundles whose graphs are not the source model's: cached
steps (``--cache-interval``), a distilled VAE decoder (``--decoder``) and a guidance-distilled denoiser
(``--denoiser``). Quantized bundles get theirs from ``build_quantized``.

The teacher is the finished bundle with the originals restored: every step on the full denoiser
(that graph passed its parity check against PyTorch at build time), the source model's own VAE
decoder, and the source's denoiser run with the guidance the student stands for, in PyTorch. So the
gap measured is the substitution's alone, not the exporter's.
Images come from the same prompts and noise; the two denoising plans are timed alternately, so
machine noise hits both alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.models.types import Model
from edgediff.runtimes.base import Session
from edgediff.runtimes.pipeline import BundlePipeline, Generation, SessionPipeline

DEFAULT_PROMPTS = {True: 32, False: 4}  # with the zoo evaluator (adherence needs many prompts) / PSNR only
TIMED_ROUNDS = 5


class _Teacher:
    """The bundle's pipeline with the originals back: caching off, ``restored`` sessions swapped in, and
    for a guidance-distilled denoiser (``guided``) the source's run with that guidance, as a batch of two."""

    def __init__(self, pipe: BundlePipeline, restored: dict[str, Session], guided: dict[str, Any] | None = None) -> None:
        pipeline = pipe.pipeline
        if guided is not None:
            pipeline = pipeline | {"guidance_scale": guided["guidance_scale"], "denoiser_batch": 2,
                                   "guidance_distilled": None, "cache": None}
        self.inner = SessionPipeline(pipeline, {**pipe.sessions, **restored}, pipe.tokenizer)
        self.pipeline = pipe.pipeline
        self.cached = pipe.cache_plan is not None

    def __call__(self, prompt: str = "", **kwargs: Any) -> Generation:
        return self.inner(prompt, cache_interval=1 if self.cached else None, **kwargs)


def substitution_quality_report(
    bundle_dir: Path, *, restored: dict[str, Session] | None = None, decoder: dict[str, Any] | None = None,
    guided: dict[str, Any] | None = None, prompts: int | None = None, seed: int = 0,
) -> dict[str, Any]:
    """Images of the bundle vs its teacher, plus its speed. ``restored``: the source's own sessions for what
    the bundle substitutes (``vae_decoder`` for a distilled decoder, ``denoiser`` for a guidance-distilled
    one); ``decoder`` / ``guided``: what the manifest records of those stand-ins."""
    from edgediff.quantize.quality import QualityProbe, evaluator_applies

    pipe = BundlePipeline(bundle_dir, verify=False)
    plan = pipe.cache_plan
    restored = restored or {}
    count = prompts or DEFAULT_PROMPTS[evaluator_applies(pipe.pipeline)]
    probe = QualityProbe(_Teacher(pipe, restored, guided), count, seed)
    measured = probe.measure_pipeline(pipe)
    parts = [("every step on the full denoiser (parity-checked against PyTorch)", "every step full", plan is not None),
             (f"the source model's denoiser with guidance {guided['guidance_scale']:g} (PyTorch fp32)" if guided else "",
              "guided teacher", guided is not None),
             ("the source model's VAE decoder (PyTorch fp32)", "source decoder", "vae_decoder" in restored)]
    report: dict[str, Any] = {
        "against": "the same bundle with " + " and ".join(p[0] for p in parts if p[2]) + ", same prompts and noise",
        "against_short": " + ".join(p[1] for p in parts if p[2]),
        "images": measured,
        "speed": _speed(pipe, probe.prompts[0] if pipe.pipeline["conditioning"] == "text" else ""),
    }
    if plan is not None:
        steps = pipe.pipeline["steps"]
        report["cache"] = plan.to_json() | {"steps": steps, "full_steps": plan.full_steps(steps)}
    if decoder is not None:
        report["decoder"] = decoder
    if guided is not None:
        report["guided"] = guided
    return report


def _speed(pipe: BundlePipeline, prompt: str) -> dict[str, Any]:
    """Median image and decode ms of the bundle; for a cached one, also every step full (runs alternating)."""
    class_label = 0 if pipe.pipeline["conditioning"] == "class" else None
    plans: list[int | None] = [None, 1] if pipe.cache_plan is not None else [None]  # None: the bundle's own plan
    image_ms: dict[int | None, list[float]] = {k: [] for k in plans}
    decode_ms: list[float] = []
    for round_index in range(TIMED_ROUNDS + 1):
        for interval in plans:
            started = time.perf_counter()
            generation = pipe(prompt, class_label=class_label, seed=round_index, cache_interval=interval)
            if round_index:  # the first round warms every plan up
                image_ms[interval].append((time.perf_counter() - started) * 1e3)
                if interval is None:
                    decode_ms.append(generation.timings_ms["decode_ms"])
    speed: dict[str, Any] = {"image_ms": float(np.median(image_ms[None])), "decode_ms": float(np.median(decode_ms)),
                             "measured_on": f"build host, median of {TIMED_ROUNDS}"}
    if pipe.cache_plan is not None:
        full = float(np.median(image_ms[1]))
        speed |= {"uncached_image_ms": full, "speedup": full / speed["image_ms"],
                  "speedup_of": "the uncached bundle per image", "measured_on": speed["measured_on"] + ", alternating"}
    return speed


def report_for_build(bundle_dir: Path, source_model: Model, settings: dict[str, Any], prompts: int | None) -> dict[str, Any]:
    """The report of a cached, distilled-decoder and/or guidance-distilled build; the source model's own
    decoder and guided denoiser (PyTorch fp32) are the teacher's."""
    import torch

    from edgediff.runtimes.torch_session import TorchSession

    restored: dict[str, Session] = {}
    record = None
    if settings["decoder"]:
        from edgediff.distill.decoder_swap import check_decoder_fits, decoder_folder
        from edgediff.distill.tiny_decoder import decoder_gflop, load_tiny_decoder

        folder = decoder_folder(source_model, settings["decoder"])
        record = check_decoder_fits(source_model, folder)
        teacher = source_model.build_component("vae_decoder")
        latents = teacher.example_inputs(settings["height"], settings["width"], 1)[0]
        record["gflop"] = decoder_gflop(load_tiny_decoder(folder), latents)
        record["teacher_gflop"] = decoder_gflop(teacher, latents)
        restored["vae_decoder"] = TorchSession(teacher, ("latents",), ("image",))
    if settings["guided"]:
        denoiser = source_model.build_component("denoiser")
        names = tuple(spec.name for spec in denoiser.input_specs(settings["height"], settings["width"], 2))
        restored["denoiser"] = TorchSession(denoiser, names, tuple(denoiser.output_names))
    with torch.no_grad():
        return substitution_quality_report(bundle_dir, restored=restored, decoder=record, guided=settings["guided"],
                                           prompts=prompts)
