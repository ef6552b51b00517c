"""Draw a ``Scene`` as a 64x64 RGB image, anti-aliased, with a little seeded jitter.

Shapes are defined as inside-tests in coordinates normalised by the object's radius and sampled
4x4 times per pixel, so edges are smooth (a VAE can reconstruct them) and a shape looks the same in
every cell. The jitter (position +-1 px, radius +-0.5 px) makes renders of one scene differ, so a
Frechet distance between two render sets of the same prompts has a non-zero floor to compare with.
"""

from __future__ import annotations

import numpy as np

from edgediff.zoo.attributes import (
    BACKGROUNDS,
    CELL_CENTERS,
    COLORS,
    IMAGE_SIZE,
    POSITION_JITTER,
    POSITIONS,
    RADIUS,
    RADIUS_JITTER,
    ObjectSpec,
    Scene,
)

SUPERSAMPLE = 4


def _polygon_inside(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd ray casting, vectorised over points; vertices (K, 2) as (u, v)."""
    inside = np.zeros(u.shape, dtype=bool)
    k = len(vertices)
    for i in range(k):
        (u1, v1), (u2, v2) = vertices[i], vertices[(i + 1) % k]
        crosses = (v1 > v) != (v2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            u_at = u1 + (v - v1) * (u2 - u1) / (v2 - v1)
        inside ^= crosses & (u < u_at)
    return inside


def _star_vertices(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = -np.pi / 2 + np.arange(2 * points) * np.pi / points  # first point straight up
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


_STAR = _star_vertices()
_TRIANGLE = np.array([[0.0, -1.0], [1.0, 0.8], [-1.0, 0.8]])


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of a unit-radius shape at normalised coordinates (u right, v down)."""
    r2 = u * u + v * v
    if shape == "circle":
        return r2 <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == "triangle":
        return _polygon_inside(u, v, _TRIANGLE)
    if shape == "star":
        return _polygon_inside(u, v, _STAR)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.32) & (av <= 1.0)) | ((av <= 0.32) & (au <= 1.0))
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.55**2)
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(shape: str, cx: float, cy: float, radius: float) -> tuple[slice, slice, np.ndarray]:
    """Fraction of each pixel near the object that the shape covers, and where that window sits."""
    x0, x1 = max(int(np.floor(cx - radius)) - 1, 0), min(int(np.ceil(cx + radius)) + 2, IMAGE_SIZE)
    y0, y1 = max(int(np.floor(cy - radius)) - 1, 0), min(int(np.ceil(cy + radius)) + 2, IMAGE_SIZE)
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    xs = (np.arange(x0, x1)[:, None] + offsets[None, :]).reshape(-1)  # (W*S,)
    ys = (np.arange(y0, y1)[:, None] + offsets[None, :]).reshape(-1)  # (H*S,)
    u = (xs[None, :] - cx) / radius
    v = (ys[:, None] - cy) / radius
    u, v = np.broadcast_arrays(u, v)
    mask = shape_mask(shape, u, v).astype(np.float32)  # (H*S, W*S)
    h, w = y1 - y0, x1 - x0
    cover = mask.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(1, 3))  # (H, W)
    return slice(y0, y1), slice(x0, x1), cover


def object_geometry(obj: ObjectSpec, rng: np.random.Generator) -> tuple[float, float, float]:
    """Centre x, centre y and radius in pixels, jittered by ``rng`` (3 draws per object)."""
    if obj.size is None:
        raise ValueError("an object needs a size to be rendered")
    row, col = POSITIONS[obj.position]
    jx, jy, jr = rng.uniform(-1.0, 1.0, size=3)
    cx = CELL_CENTERS[col] + POSITION_JITTER * jx
    cy = CELL_CENTERS[row] + POSITION_JITTER * jy
    return float(cx), float(cy), float(RADIUS[obj.size] + RADIUS_JITTER * jr)


def render(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The scene as uint8 (64, 64, 3); ``rng`` supplies the jitter."""
    if scene.background is None:
        raise ValueError("a scene needs a background colour to be rendered")
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    image[:] = BACKGROUNDS[scene.background]
    for obj in scene.objects:
        cx, cy, radius = object_geometry(obj, rng)
        rows, cols, cover = _coverage(obj.shape, cx, cy, radius)
        color = np.asarray(COLORS[obj.color], dtype=np.float32)
        patch = image[rows, cols]
        image[rows, cols] = patch * (1.0 - cover[..., None]) + color * cover[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
