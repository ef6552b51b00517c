from __future__ import annotations

import numpy as np
import pytest

from edgediff.eval import evaluate, load_prompt_set, seeds_for
from edgediff.zoo.dataset import render_scenes
from edgediff.zoo.grammar import parse_prompt

PROMPTS = load_prompt_set("v1", 24)


def _renderer(stream: int):
    """A 'perfect model': renders exactly what each prompt says (jitter from another stream)."""

    def generate(prompts: list[str], seeds: list[int]) -> np.ndarray:
        return render_scenes([parse_prompt(p) for p in prompts], seed=seeds[0], stream=stream)

    return generate


def test_a_generator_that_renders_the_prompt_adheres_fully_and_sits_near_the_fd_floor():
    result = evaluate(_renderer(stream=7), PROMPTS, seed=0)
    assert result["adherence"] == 1.0 and result["adherence_single"] == 1.0 and result["adherence_two"] == 1.0
    assert set(result["adherence_by_attribute"].values()) == {1.0}
    assert result["fd"] < 3 * result["fd_floor"]


def test_blank_images_adhere_to_nothing_and_sit_far_above_the_floor():
    result = evaluate(lambda p, s: np.full((len(p), 64, 64, 3), 128, np.uint8), PROMPTS, seed=0)
    assert result["adherence"] == 0.0
    assert result["adherence_by_attribute"]["count"] == 0.0
    assert result["fd"] > 10 * result["fd_floor"]


def test_result_has_the_documented_keys_and_the_generator_gets_consecutive_seeds():
    seen: list[list[int]] = []

    def generate(prompts: list[str], seeds: list[int]) -> np.ndarray:
        seen.append(seeds)
        return _renderer(0)(prompts, seeds)

    result = evaluate(generate, PROMPTS[:4], seed=100)
    assert seen == [[100, 101, 102, 103]] == [seeds_for(4, 100)]
    assert {"adherence", "adherence_by_attribute", "fd", "fd_floor", "prompts", "seed"} <= set(result)
    assert (result["prompts"], result["seed"]) == (4, 100)
    assert "psnr" not in result and "ssim" not in result


def test_teacher_images_add_psnr_and_ssim():
    generate = _renderer(3)
    teacher = generate(PROMPTS, seeds_for(len(PROMPTS), 0))
    same = evaluate(generate, PROMPTS, seed=0, teacher_images=teacher)
    assert same["psnr"] == 100.0 and same["ssim"] == pytest.approx(1.0)
    other = evaluate(_renderer(4), PROMPTS, seed=0, teacher_images=teacher)
    assert other["psnr"] < 40 and other["ssim"] < 1.0


def test_wrong_image_shape_is_refused():
    with pytest.raises(ValueError, match=r"uint8 \(2, 64, 64, 3\)"):
        evaluate(lambda p, s: np.zeros((2, 32, 32, 3), np.uint8), PROMPTS[:2], seed=0)


def test_prompt_outside_the_grammar_is_refused_before_generating():
    def generate(prompts, seeds):  # pragma: no cover - must not be called
        raise AssertionError("generated")

    with pytest.raises(ValueError, match="not in the shapes grammar"):
        evaluate(generate, ["a photo of a cat"], seed=0)
