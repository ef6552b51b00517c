"""The evaluator: prompt adherence, Frechet distance and teacher fidelity of generated images.

numpy only (no torch import), so a bundle evaluated through its runtime needs nothing more.
"""

from __future__ import annotations

from edgediff.eval.classifier import AttributeClassifier
from edgediff.eval.evaluate import evaluate, evaluate_images, seeds_for
from edgediff.eval.metrics import frechet_distance, psnr, ssim
from edgediff.eval.prompts import load_prompt_set

__all__ = [
    "AttributeClassifier",
    "evaluate",
    "evaluate_images",
    "frechet_distance",
    "load_prompt_set",
    "psnr",
    "seeds_for",
    "ssim",
]
