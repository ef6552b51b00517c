from __future__ import annotations

import numpy as np
import pytest

from edgediff.zoo.attributes import ObjectSpec, Scene
from edgediff.zoo.dataset import sample_scene
from edgediff.zoo.grammar import parse_prompt, prompt_for, vocabulary


def test_one_object_prompt_reads_as_english():
    scene = Scene((ObjectSpec("star", "red", "small", "top left"),), "white")
    assert prompt_for(scene) == "a small red star at the top left on a white background"


def test_two_object_prompt_joins_objects_with_and():
    scene = Scene(
        (ObjectSpec("ring", "blue", "large", "center"), ObjectSpec("cross", "orange", "small", "right")), "gray"
    )
    assert (
        prompt_for(scene)
        == "a large blue ring in the center and a small orange cross on the right on a gray background"
    )


def test_parse_inverts_prompt_for_on_a_thousand_random_scenes():
    for i in range(1000):
        scene = sample_scene(np.random.default_rng([7, i]))
        assert parse_prompt(prompt_for(scene)) == scene


def test_parse_leaves_unsaid_attributes_empty():
    scene = parse_prompt("A green square at the bottom.")
    assert scene == Scene((ObjectSpec("square", "green", None, "bottom"),), None)


def test_top_left_is_not_read_as_top():
    assert parse_prompt("a red circle at the top left").objects[0].position == "top left"


@pytest.mark.parametrize(
    "text",
    [
        "a red hexagon in the center",
        "a red circle",
        "two red circles in the center",
        "a small red circle at the top on a blue background",
    ],
)
def test_prompt_outside_the_grammar_is_rejected(text):
    with pytest.raises(ValueError, match="not in the shapes grammar"):
        parse_prompt(text)


def test_vocabulary_is_the_31_grammar_words_in_fixed_order():
    words = vocabulary()
    assert len(words) == 31 and len(set(words)) == 31
    assert words[:4] == ["a", "and", "on", "background"]
    assert words[-3:] == ["white", "black", "gray"]
