"""The attribute vocabulary of the shapes family: what a scene can contain, and its exact labels.

Every image the generator draws is described by a ``Scene``: a background colour and one or two
``ObjectSpec`` (shape, colour, size, grid position). The same records are the labels the evaluator
checks generated images against, so they are plain, hashable and JSON-friendly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMAGE_SIZE = 64

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")

# Object colours are saturated and far from every background colour, so an object is never
# invisible on its background and a colour name never has two readings.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "pink": (245, 130, 190),
    "cyan": (40, 200, 210),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}

SIZES: tuple[str, ...] = ("small", "large")

# A 3x3 grid: name -> (row, col). The names are the words the prompt grammar uses.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top": (0, 1),
    "top right": (0, 2),
    "left": (1, 0),
    "center": (1, 1),
    "right": (1, 2),
    "bottom left": (2, 0),
    "bottom": (2, 1),
    "bottom right": (2, 2),
}
POSITION_NAMES: tuple[str, ...] = tuple(POSITIONS)
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)

# Pixel geometry: cell centres sit at 11, 32 and 53 px; radii leave two large objects in
# neighbouring cells at most touching (19 px apart after jitter, radii 9.5 + 9.5 + 0.5 jitter).
CELL_CENTERS: tuple[float, float, float] = (11.0, 32.0, 53.0)
RADIUS: dict[str, float] = {"small": 6.0, "large": 9.5}
POSITION_JITTER = 1.0
RADIUS_JITTER = 0.5

OBJECT_ATTRIBUTES: tuple[str, ...] = ("shape", "color", "size", "position")


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene. ``size`` may be None in a prompt that does not name it."""

    shape: str
    color: str
    size: str | None
    position: str

    def __post_init__(self) -> None:
        _check(self.shape, SHAPES, "shape")
        _check(self.color, COLOR_NAMES, "color")
        if self.size is not None:
            _check(self.size, SIZES, "size")
        _check(self.position, POSITION_NAMES, "position")

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "color": self.color, "size": self.size, "position": self.position}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectSpec:
        return cls(shape=d["shape"], color=d["color"], size=d.get("size"), position=d["position"])


@dataclass(frozen=True)
class Scene:
    """A whole image's labels: one or two objects in distinct cells and a background colour.

    ``background`` may be None in a prompt that does not name it; a rendered scene always has one.
    """

    objects: tuple[ObjectSpec, ...]
    background: str | None

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 2:
            raise ValueError(f"a scene has one or two objects, got {len(self.objects)}")
        if len({o.position for o in self.objects}) != len(self.objects):
            raise ValueError("two objects of a scene cannot share a position")
        if self.background is not None:
            _check(self.background, BACKGROUND_NAMES, "background")

    def to_dict(self) -> dict[str, Any]:
        return {"objects": [o.to_dict() for o in self.objects], "background": self.background}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        return cls(objects=tuple(ObjectSpec.from_dict(o) for o in d["objects"]), background=d.get("background"))


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(allowed)}")
