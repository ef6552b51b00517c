"""The procedural data set: scene ``index`` of stream ``seed`` is always the same image and labels.

Each item draws from its own generator seeded by ``(seed, index)``, so the stream is unbounded,
any slice can be rendered on its own (in parallel, on any machine) and train/held-out splits are
just different seeds.
"""

from __future__ import annotations

import numpy as np

from edgediff.zoo.attributes import BACKGROUND_NAMES, COLOR_NAMES, POSITION_NAMES, SHAPES, SIZES, ObjectSpec, Scene
from edgediff.zoo.grammar import prompt_for
from edgediff.zoo.render import render

TWO_OBJECT_PROBABILITY = 0.5


def sample_scene(rng: np.random.Generator, two_object_probability: float = TWO_OBJECT_PROBABILITY) -> Scene:
    """A uniformly random scene: every attribute independent, the two positions distinct."""
    count = 2 if rng.random() < two_object_probability else 1
    positions = rng.choice(len(POSITION_NAMES), size=count, replace=False)
    objects = tuple(
        ObjectSpec(
            shape=SHAPES[rng.integers(len(SHAPES))],
            color=COLOR_NAMES[rng.integers(len(COLOR_NAMES))],
            size=SIZES[rng.integers(len(SIZES))],
            position=POSITION_NAMES[int(p)],
        )
        for p in positions
    )
    return Scene(objects=objects, background=BACKGROUND_NAMES[rng.integers(len(BACKGROUND_NAMES))])


def item(seed: int, index: int) -> tuple[np.ndarray, Scene, str]:
    """Image (64, 64, 3) uint8, its labels and its prompt, for item ``index`` of stream ``seed``."""
    rng = np.random.default_rng([seed, index])
    scene = sample_scene(rng)
    return render(scene, rng), scene, prompt_for(scene)


def render_range(seed: int, start: int, count: int) -> tuple[np.ndarray, list[Scene], list[str]]:
    """Items ``start .. start+count-1`` of stream ``seed``: images (count, 64, 64, 3), scenes, prompts."""
    images = np.empty((count, 64, 64, 3), dtype=np.uint8)
    scenes: list[Scene] = []
    prompts: list[str] = []
    for k in range(count):
        images[k], scene, prompt = item(seed, start + k)
        scenes.append(scene)
        prompts.append(prompt)
    return images, scenes, prompts


def complete(scene: Scene, rng: np.random.Generator) -> Scene:
    """Fill what a prompt left unsaid (an object's size, the background) with random choices."""
    objects = tuple(
        o if o.size is not None else ObjectSpec(o.shape, o.color, SIZES[rng.integers(len(SIZES))], o.position)
        for o in scene.objects
    )
    background = scene.background or BACKGROUND_NAMES[rng.integers(len(BACKGROUND_NAMES))]
    return Scene(objects=objects, background=background)


def render_scenes(scenes: list[Scene], seed: int, stream: int = 0) -> np.ndarray:
    """Render given scenes (e.g. parsed from prompts); image ``i`` draws from generator ``(seed, stream, i)``.

    Two streams of one seed are two independent render sets of the same scenes (real vs real).
    """
    images = np.empty((len(scenes), 64, 64, 3), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, stream, i])
        images[i] = render(complete(scene, rng), rng)
    return images
