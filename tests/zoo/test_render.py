from __future__ import annotations

import numpy as np

from edgediff.zoo.attributes import BACKGROUNDS, COLORS, SHAPES, ObjectSpec, Scene
from edgediff.zoo.render import render, shape_mask


def _render(shape: str, color: str = "red", size: str = "large", position: str = "center", bg: str = "white", seed=0):
    return render(Scene((ObjectSpec(shape, color, size, position),), bg), np.random.default_rng(seed))


def test_render_is_64x64_rgb_uint8():
    image = _render("circle")
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_red_circle_has_exact_object_and_background_colours():
    image = _render("circle")
    assert tuple(image[32, 32]) == COLORS["red"]
    assert tuple(image[0, 0]) == BACKGROUNDS["white"]
    assert tuple(image[63, 63]) == BACKGROUNDS["white"]


def test_ring_has_a_background_coloured_hole():
    image = _render("ring", bg="black")
    assert tuple(image[32, 32]) == BACKGROUNDS["black"]
    assert tuple(image[32, 32 + 8]) == COLORS["red"]  # on the band (radius 9.5 +- 1.5 px jitter)


def test_object_sits_in_its_grid_cell():
    image = _render("square", position="bottom right")
    assert tuple(image[53, 53]) == COLORS["red"]
    assert tuple(image[11, 11]) == BACKGROUNDS["white"]


def test_large_objects_cover_more_pixels_than_small_ones():
    def covered(size: str) -> int:
        return int((_render("circle", size=size) != BACKGROUNDS["white"]).any(axis=2).sum())

    assert covered("large") > 2 * covered("small")


def test_same_seed_same_image_other_seed_jittered():
    assert np.array_equal(_render("star", seed=3), _render("star", seed=3))
    assert not np.array_equal(_render("star", seed=3), _render("star", seed=4))


def test_circle_mask_area_is_pi_r_squared():
    centres = (np.arange(600) + 0.5) / 600 * 3.0 - 1.5  # pixel centres over [-1.5, 1.5]
    u, v = np.meshgrid(centres, centres)
    area = shape_mask("circle", u, v).mean() * 9.0
    assert abs(area - np.pi) < 1e-3


def test_every_shape_has_a_distinct_mask():
    u, v = np.meshgrid(np.linspace(-1.2, 1.2, 97), np.linspace(-1.2, 1.2, 97))
    masks = {s: shape_mask(s, u, v).tobytes() for s in SHAPES}
    assert len(set(masks.values())) == len(SHAPES) == 6
