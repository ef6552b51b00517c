from __future__ import annotations

import numpy as np

from edgediff.zoo.dataset import item, render_range, render_scenes, sample_scene
from edgediff.zoo.grammar import parse_prompt


def test_item_is_a_pure_function_of_seed_and_index():
    a_img, a_scene, a_prompt = item(1, 12345)
    b_img, b_scene, b_prompt = item(1, 12345)
    assert np.array_equal(a_img, b_img) and a_scene == b_scene and a_prompt == b_prompt


def test_render_range_matches_items_rendered_one_by_one():
    images, scenes, prompts = render_range(5, 100, 4)
    for k in range(4):
        img, scene, prompt = item(5, 100 + k)
        assert np.array_equal(images[k], img) and scenes[k] == scene and prompts[k] == prompt


def test_streams_differ():
    assert item(1, 0)[2] != item(2, 0)[2] or not np.array_equal(item(1, 0)[0], item(2, 0)[0])


def test_prompt_labels_are_the_exact_scene():
    _, scene, prompt = item(3, 7)
    assert parse_prompt(prompt) == scene


def test_about_half_the_scenes_have_two_objects_in_distinct_cells():
    scenes = [sample_scene(np.random.default_rng([9, i])) for i in range(2000)]
    two = [s for s in scenes if len(s.objects) == 2]
    assert 900 < len(two) < 1100
    assert all(s.objects[0].position != s.objects[1].position for s in two)


def test_render_scenes_fills_unsaid_attributes_and_streams_are_independent():
    scenes = [parse_prompt("a red circle in the center")] * 3
    a, b = render_scenes(scenes, seed=0, stream=0), render_scenes(scenes, seed=0, stream=1)
    assert a.shape == (3, 64, 64, 3)
    assert np.array_equal(a, render_scenes(scenes, seed=0, stream=0))
    assert not np.array_equal(a, b)
