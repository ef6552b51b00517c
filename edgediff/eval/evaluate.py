"""``evaluate``: one function measuring any text-to-image generator the same way.

The generator is a plain callable (prompts, seeds) -> uint8 images, so a diffusers model in
PyTorch and an exported bundle behind its runtime are scored by identical code: adherence
(classifier reads every prompted attribute), Frechet distance of classifier features to real
renders of the same prompts (with the real-vs-real floor beside it), and, given a teacher's images
for the same prompts and seeds, PSNR and SSIM against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgediff.eval.adherence import score
from edgediff.eval.classifier import AttributeClassifier
from edgediff.eval.labels import decode
from edgediff.eval.metrics import frechet_distance, psnr, ssim
from edgediff.zoo.attributes import Scene
from edgediff.zoo.dataset import render_scenes
from edgediff.zoo.grammar import parse_prompt

Generate = Callable[[list[str], list[int]], np.ndarray]

REAL_STREAM, FLOOR_STREAM = 0, 1  # two independent render sets of the prompts' scenes


def seeds_for(count: int, seed: int) -> list[int]:
    """The per-image seeds ``evaluate`` uses: ``seed, seed+1, ...`` (teachers must use the same)."""
    return [seed + i for i in range(count)]


def _check_images(images: np.ndarray, count: int, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape != (count, 64, 64, 3):
        raise ValueError(f"{what} must be uint8 ({count}, 64, 64, 3), got {images.dtype} {images.shape}")
    return images


def evaluate(
    generate: Generate,
    prompts: Sequence[str],
    seed: int,
    teacher_images: np.ndarray | None = None,
    *,
    classifier: AttributeClassifier | None = None,
) -> dict[str, Any]:
    """Generate one image per prompt (seeds ``seeds_for(len(prompts), seed)``) and measure it.

    Returns ``adherence``, ``adherence_by_attribute``, ``adherence_single``, ``adherence_two``, ``fd``,
    ``fd_floor``, ``prompts`` (count), ``seed``, and with ``teacher_images`` also ``psnr`` and ``ssim``
    (means over images, PSNR capped at 100 dB).
    """
    prompts = list(prompts)
    scenes = [parse_prompt(p) for p in prompts]  # ValueError early for a prompt outside the grammar
    seeds = seeds_for(len(prompts), seed)
    images = _check_images(generate(prompts, seeds), len(prompts), "generated images")
    return evaluate_images(images, prompts, seed, teacher_images, classifier=classifier, scenes=scenes)


def evaluate_images(
    images: np.ndarray,
    prompts: Sequence[str],
    seed: int,
    teacher_images: np.ndarray | None = None,
    *,
    classifier: AttributeClassifier | None = None,
    scenes: list[Scene] | None = None,
) -> dict[str, Any]:
    """``evaluate`` for images already generated (image ``i`` from ``prompts[i]`` and seed ``seed + i``)."""
    prompts = list(prompts)
    scenes = scenes if scenes is not None else [parse_prompt(p) for p in prompts]
    images = _check_images(images, len(prompts), "generated images")
    classifier = classifier or AttributeClassifier.load()
    logits, feats = classifier.forward(images)
    scores = score(scenes, decode(logits))
    real = classifier.features(render_scenes(scenes, seed, REAL_STREAM))
    floor = classifier.features(render_scenes(scenes, seed, FLOOR_STREAM))
    result: dict[str, Any] = {
        "adherence": scores["adherence"],
        "adherence_by_attribute": scores["adherence_by_attribute"],
        "adherence_single": scores["adherence_single"],
        "adherence_two": scores["adherence_two"],
        "fd": frechet_distance(feats, real),
        "fd_floor": frechet_distance(floor, real),
        "prompts": len(prompts),
        "seed": seed,
    }
    if teacher_images is not None:
        teacher_images = _check_images(teacher_images, len(prompts), "teacher images")
        result["psnr"] = float(psnr(images, teacher_images).mean())
        result["ssim"] = float(ssim(images, teacher_images).mean())
    return result
