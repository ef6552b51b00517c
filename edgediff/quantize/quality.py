"""How much a quantized denoiser costs in image quality, measured against the fp32 teacher.

Quality is judged on images, not on one layer's numbers: the quantized denoiser runs the whole
sampling loop (text encoder and VAE stay the fp32 teacher's), from the same noise as the teacher, on
a fixed set of prompts. Two measures serve as targets:

- PSNR of the images against the teacher's (any model; the teacher-fidelity test users apply by eye);
- the zoo evaluator's prompt adherence, as a drop in points from the teacher's own adherence (only
  where the evaluator applies: 64x64 images of the shapes grammar, i.e. the zoo models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgediff.errors import EdgeDiffError

# recipe options (and the CLI flags that set them) read here
QUALITY_OPTIONS = ("max_quality_drop", "min_psnr", "quality_prompts", "quality_seed", "max_fallback_fraction")
EVALUATOR_SIZE = (64, 64)


@dataclass(frozen=True)
class QualityTarget:
    """What a quantized bundle must keep; ``None`` bounds are not checked."""

    max_adherence_drop: float | None = None  # fraction: 0.01 is one point of adherence
    min_psnr: float | None = None  # dB against the teacher's images
    prompts: int = 32
    seed: int = 0
    # the search may keep at most this share of the quantizable layers in float; beyond it the
    # bundle would hardly be quantized, so the build fails instead
    max_fallback_fraction: float = 0.25

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> QualityTarget:
        target = cls(
            max_adherence_drop=_optional_float(options, "max_quality_drop"),
            min_psnr=_optional_float(options, "min_psnr"),
            prompts=int(options.get("quality_prompts", cls.prompts)),
            seed=int(options.get("quality_seed", cls.seed)),
            max_fallback_fraction=float(options.get("max_fallback_fraction", cls.max_fallback_fraction)),
        )
        target.validate()
        return target

    def validate(self) -> None:
        if self.max_adherence_drop is not None and not 0.0 <= self.max_adherence_drop < 1.0:
            raise EdgeDiffError(f"--max-quality-drop is a fraction of adherence in [0, 1), got {self.max_adherence_drop}")
        if self.min_psnr is not None and self.min_psnr <= 0:
            raise EdgeDiffError(f"--min-psnr is in dB and must be positive, got {self.min_psnr}")
        if self.prompts < 1:
            raise EdgeDiffError(f"--quality-prompts must be at least 1, got {self.prompts}")
        if not 0.0 <= self.max_fallback_fraction <= 1.0:
            raise EdgeDiffError(f"max_fallback_fraction must be in [0, 1], got {self.max_fallback_fraction}")

    @property
    def requested(self) -> bool:
        return self.max_adherence_drop is not None or self.min_psnr is not None

    def margin(self, measured: Mapping[str, Any]) -> float:
        """How far ``measured`` clears the tightest bound (>= 0: met), in that bound's units."""
        slack = [float("inf")]
        if self.min_psnr is not None:
            slack.append(measured["psnr"] - self.min_psnr)
        if self.max_adherence_drop is not None:
            slack.append(self.max_adherence_drop - measured["adherence_drop"])
        return min(slack)

    def describe(self) -> str:
        parts = []
        if self.max_adherence_drop is not None:
            parts.append(f"adherence drop <= {self.max_adherence_drop * 100:.1f} points")
        if self.min_psnr is not None:
            parts.append(f"PSNR >= {self.min_psnr:.1f} dB vs fp32")
        return " and ".join(parts) or "no target"

    def to_json(self) -> dict[str, Any]:
        return {"max_adherence_drop": self.max_adherence_drop, "min_psnr": self.min_psnr, "prompts": self.prompts,
                "seed": self.seed, "max_fallback_fraction": self.max_fallback_fraction}


def _optional_float(options: Mapping[str, Any], key: str) -> float | None:
    value = options.get(key)
    return None if value is None else float(value)


def evaluator_applies(pipeline: Mapping[str, Any]) -> bool:
    """The zoo evaluator scores 64x64 text-conditioned images of the shapes grammar."""
    return pipeline["conditioning"] == "text" and (pipeline["height"], pipeline["width"]) == EVALUATOR_SIZE


class QualityProbe:
    """The fp32 teacher's images on a fixed prompt set, and the measures of any denoiser against them.

    ``teacher`` is a ``SessionPipeline`` over the fp32 modules; ``measure`` swaps in another denoiser
    session and generates the same prompts from the same noise.
    """

    def __init__(self, teacher: Any, prompts: int, seed: int) -> None:
        from edgediff.eval import load_prompt_set

        self.teacher = teacher
        self.adherence = evaluator_applies(teacher.pipeline)
        self.prompts = load_prompt_set("v1", prompts)
        self.seeds = [seed + i for i in range(len(self.prompts))]
        self.seed = seed
        self.teacher_images = self._generate(teacher)
        self.teacher_scores = self._score(self.teacher_images) if self.adherence else {}

    def _generate(self, pipe: Any) -> np.ndarray:
        num_classes = pipe.pipeline.get("num_classes") or 1
        images = []
        for i, (prompt, seed) in enumerate(zip(self.prompts, self.seeds, strict=True)):
            if pipe.pipeline["conditioning"] == "class":
                images.append(pipe(class_label=i % num_classes, seed=seed).to_uint8())
            else:
                images.append(pipe(prompt, seed=seed).to_uint8())
        return np.stack(images)

    def _score(self, images: np.ndarray) -> dict[str, Any]:
        from edgediff.eval import evaluate_images

        return evaluate_images(images, self.prompts, self.seed)

    def measure(self, denoiser: Any) -> dict[str, Any]:
        """Images from the teacher's pipeline with ``denoiser`` (a session) swapped in, measured."""
        from edgediff.runtimes.pipeline import SessionPipeline

        pipe = SessionPipeline(self.teacher.pipeline, {**self.teacher.sessions, "denoiser": denoiser},
                               self.teacher.tokenizer)
        return self.measure_images(self._generate(pipe))

    def measure_pipeline(self, pipe: Any) -> dict[str, Any]:
        """Images from another whole pipeline (a finished bundle), measured."""
        return self.measure_images(self._generate(pipe))

    def measure_images(self, images: np.ndarray) -> dict[str, Any]:
        from edgediff.eval.metrics import psnr, ssim

        result: dict[str, Any] = {
            "prompts": len(self.prompts),
            "seed": self.seed,
            "psnr": float(psnr(images, self.teacher_images).mean()),
            "ssim": float(ssim(images, self.teacher_images).mean()),
        }
        if self.adherence:
            scores = self._score(images)
            result |= {
                "adherence": scores["adherence"],
                "teacher_adherence": self.teacher_scores["adherence"],
                "adherence_drop": self.teacher_scores["adherence"] - scores["adherence"],
                "fd": scores["fd"],
                "teacher_fd": self.teacher_scores["fd"],
            }
        return result


def check_target_measurable(target: QualityTarget, pipeline: Mapping[str, Any]) -> None:
    """An adherence bound needs the zoo evaluator; say so before any work."""
    if target.max_adherence_drop is not None and not evaluator_applies(pipeline):
        raise EdgeDiffError(
            "--max-quality-drop is measured by the zoo evaluator, which scores 64x64 text-to-image models of the "
            f"shapes grammar (zoo:shapes-unet, zoo:shapes-dit); this build is {pipeline['height']}x{pipeline['width']} "
            f"{pipeline['conditioning']}-conditioned -- use --min-psnr instead"
        )

