"""``BundlePipeline``: a whole bundle run as a device app would -- tokenize, encode, denoise, decode.

No torch: numpy, the `tokenizers` runtime, the numpy schedulers and the bundle's engine. The math
follows diffusers' pipelines step for step (same latent scaling, guidance formula and batch order),
so for the same initial noise an fp32 bundle reproduces the diffusers pipeline's image.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.bundle.manifest import Bundle, open_bundle
from edgediff.cache import CachePlan
from edgediff.errors import EdgeDiffError
from edgediff.runtimes.base import Session, SessionOptions, SpinPolicy, open_session
from edgediff.runtimes.tokenizer import PromptTokenizer
from edgediff.schedulers import Scheduler, make_scheduler

StepCallback = Callable[[int, float, np.ndarray], None]  # (step index, timestep, latents)


@dataclass(frozen=True)
class Generation:
    """One generated image, in [0, 1] float (1, 3, H, W) and as uint8 HWC, plus per-stage timings."""

    image: np.ndarray
    timings_ms: dict[str, float]

    def to_uint8(self) -> np.ndarray:
        return (self.image[0].transpose(1, 2, 0) * 255.0).round().clip(0, 255).astype(np.uint8)


class _DenoiserCalls:
    """One generation's denoiser calls under a cache plan (or none).

    Full steps run ``denoiser`` and keep its deep features per branch (the CFG batch, or the
    unconditional and conditional runs of a batch-1 export); cached steps run the shallow graph on them.
    """

    def __init__(self, sessions: dict[str, Session], plan: CachePlan | None) -> None:
        self.sessions = sessions
        self.plan = plan
        self.features: dict[str, np.ndarray] = {}
        self.step = 0

    def __call__(self, feeds: dict[str, np.ndarray], branch: str) -> np.ndarray:
        plan = self.plan
        if plan is None:
            return self.sessions["denoiser"].run(feeds)["noise_pred"]
        if plan.is_full_step(self.step):
            out = self.sessions["denoiser"].run(feeds)
            self.features[branch] = out[plan.feature]
            return out["noise_pred"]
        return self.sessions[plan.shallow_component].run({**feeds, plan.feature: self.features[branch]})["noise_pred"]


class SessionPipeline:
    """The generation loop over any set of component sessions (a bundle's, or PyTorch modules').

    ``pipeline`` is a manifest's ``pipeline`` section; ``sessions`` maps component names to sessions.
    ``cache_prompts`` keeps each prompt's text embedding for later calls: an evaluation run encodes
    the empty negative prompt once instead of once per image. Timing runs turn it off, so that
    every call pays for its text encoder as a device app with a new prompt would.
    """

    def __init__(
        self,
        pipeline: dict[str, Any],
        sessions: dict[str, Session],
        tokenizer: PromptTokenizer | None,
        *,
        cache_prompts: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.cache_prompts = cache_prompts
        self._prompt_cache: dict[str, np.ndarray] = {}
        self.cache_plan = CachePlan.from_json(pipeline.get("cache"))

    def missing_components(self) -> list[str]:
        """Components an end-to-end run needs that are absent (a partial export)."""
        needed = {"denoiser", "vae_decoder"} | ({"text_encoder"} if self.pipeline["conditioning"] == "text" else set())
        if self.cache_plan is not None:
            needed.add(self.cache_plan.shallow_component)
        return sorted(needed - set(self.sessions))

    # -- stages ------------------------------------------------------------------------------------
    def encode_prompt(self, prompt: str) -> np.ndarray:
        """(1, L, D) encoder states; kept per prompt when ``cache_prompts`` (see the class docstring)."""
        if prompt in self._prompt_cache:
            return self._prompt_cache[prompt]
        assert self.tokenizer is not None
        ids = self.tokenizer(prompt)
        embedding = self.sessions["text_encoder"].run({"input_ids": ids})["encoder_hidden_states"]
        if self.cache_prompts:
            self._prompt_cache[prompt] = embedding
        return embedding

    def scheduler(self, steps: int | None = None, name: str | None = None) -> Scheduler:
        """The bundle's sampler (or another over the same noise schedule) for ``steps`` steps."""
        p = self.pipeline
        return make_scheduler(name or p["scheduler"], p["scheduler_config"], steps or p["steps"])

    def initial_noise(self, seed: int) -> np.ndarray:
        p = self.pipeline
        shape = (1, p["latent_channels"], p["latent_height"], p["latent_width"])
        return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)

    def _plan_for(self, cache_interval: int | None) -> CachePlan | None:
        """The bundle's cache plan, or the caller's interval over the same graphs (1: every step full)."""
        if cache_interval is None:
            return self.cache_plan
        if cache_interval == 1:
            return None
        if self.cache_plan is None:
            raise EdgeDiffError("this bundle has no shallow denoiser to cache with; re-export it with --cache-interval")
        return CachePlan(interval=cache_interval)

    def _denoise_batch(self, denoise: _DenoiserCalls, latents: np.ndarray, t: float, cond: np.ndarray,
                       uncond: np.ndarray | None) -> np.ndarray:
        """noise_pred for one step, with classifier-free guidance folded in by the caller."""
        p = self.pipeline
        cond_key = "encoder_hidden_states" if p["conditioning"] == "text" else "class_labels"
        exported_batch = p["denoiser_batch"]
        if uncond is None:
            batch = np.repeat(latents, exported_batch, axis=0)
            conds = np.repeat(cond, exported_batch, axis=0)
            out = denoise({"sample": batch, "timestep": np.full((exported_batch,), t, np.float32), cond_key: conds},
                          "batch")
            return out[:1]
        if exported_batch == 2:
            out = denoise(
                {"sample": np.concatenate([latents, latents]), "timestep": np.full((2,), t, np.float32),
                 cond_key: np.concatenate([uncond, cond])}, "batch"
            )
            return np.stack([out[0:1], out[1:2]])
        ts = np.full((1,), t, np.float32)
        u = denoise({"sample": latents, "timestep": ts, cond_key: uncond}, "uncond")
        c = denoise({"sample": latents, "timestep": ts, cond_key: cond}, "cond")
        return np.stack([u, c])

    # -- the whole pipeline --------------------------------------------------------------------------
    def __call__(
        self,
        prompt: str = "",
        *,
        negative_prompt: str = "",
        class_label: int | None = None,
        seed: int = 0,
        steps: int | None = None,
        guidance_scale: float | None = None,
        scheduler: str | None = None,
        noise: np.ndarray | None = None,
        on_step: StepCallback | None = None,
        cache_interval: int | None = None,
    ) -> Generation:
        """Generate one image. ``noise`` (unit Gaussian, latent shape) overrides the seed's initial noise;
        ``cache_interval`` overrides a cached bundle's plan (1 runs every step on the full denoiser)."""
        p = self.pipeline
        missing = self.missing_components()
        if missing:
            raise EdgeDiffError(f"this pipeline lacks {', '.join(missing)}; export all components to run it end to end")
        guidance = p["guidance_scale"] if guidance_scale is None else guidance_scale
        use_cfg = guidance > 1.0
        distilled = p.get("guidance_distilled")
        if use_cfg and distilled:
            raise EdgeDiffError(f"this bundle's denoiser has guidance {distilled['guidance_scale']:g} distilled in; "
                                "run it without --guidance-scale (or with 1)")
        timings: dict[str, float] = {}

        started = time.perf_counter()
        if p["conditioning"] == "text":
            cond = self.encode_prompt(prompt)
            uncond = self.encode_prompt(negative_prompt) if use_cfg else None
        else:
            if class_label is None:
                raise EdgeDiffError("this bundle is class-conditional; pass a class label (--class-label N)")
            cond = np.array([class_label], np.int64)
            uncond = np.array([p["num_classes"]], np.int64) if use_cfg else None  # the null class
        timings["encode_ms"] = (time.perf_counter() - started) * 1e3

        denoise = _DenoiserCalls(self.sessions, self._plan_for(cache_interval))
        sampler = self.scheduler(steps, scheduler)
        latents = (self.initial_noise(seed) if noise is None else noise.astype(np.float32)) * np.float32(
            sampler.init_noise_sigma
        )
        rng = np.random.default_rng([seed, 1])  # a separate stream for per-step noise (LCM)
        started = time.perf_counter()
        for i, t in enumerate(sampler.timesteps):
            model_input = sampler.scale_model_input(latents, i)
            denoise.step = i
            pred = self._denoise_batch(denoise, model_input, float(t), cond, uncond)
            if uncond is not None:
                noise_uncond, noise_cond = pred[0], pred[1]
                pred = noise_uncond + np.float32(guidance) * (noise_cond - noise_uncond)
            step_noise = rng.standard_normal(latents.shape, dtype=np.float32) if sampler.needs_noise else None
            latents = sampler.step(pred, i, latents, step_noise).astype(np.float32)
            if on_step is not None:
                on_step(i, float(t), latents)
        timings["denoise_ms"] = (time.perf_counter() - started) * 1e3

        started = time.perf_counter()
        image = self.sessions["vae_decoder"].run({"latents": latents})["image"]
        timings["decode_ms"] = (time.perf_counter() - started) * 1e3
        return Generation(image=image, timings_ms=timings)


class BundlePipeline(SessionPipeline):
    """A bundle opened on its runtime: sessions for every component, the bundle's tokenizer."""

    def __init__(
        self,
        bundle: Bundle | str | Path,
        *,
        threads: int | None = None,
        verify: bool = True,
        cache_prompts: bool = True,
        spin: SpinPolicy = "within-run",
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else open_bundle(bundle, verify=verify)
        pipeline = self.bundle.pipeline
        # Components take turns on the same cores: threads of one engine session that spin-wait after its
        # run steal them from the next. On ONNX Runtime (2 cores, zoo:shapes-unet, 4 steps) turning spinning
        # off took a whole image from 297 to 206 ms, and a cached one (two denoisers alternating) from 343 to
        # 160; spinning only within a run keeps that and gains 4-10% more (tools/bench/session_spin.py).
        # An app that runs other work beside the pipeline may pass spin="never".
        opts = SessionOptions(precision=self.bundle.precision, threads=threads, spin=spin)
        started = time.perf_counter()
        sessions: dict[str, Session] = {
            name: open_session(self.bundle.runtime, self.bundle.entry(name), opts) for name in self.bundle.components
        }
        self.load_ms = (time.perf_counter() - started) * 1e3
        tokenizer = None
        if pipeline["tokenizer"]:
            tok = pipeline["tokenizer"]
            tokenizer = PromptTokenizer.from_file(self.bundle.path / tok["file"], tok["max_length"], tok["pad_id"])
        super().__init__(pipeline, sessions, tokenizer, cache_prompts=cache_prompts)
