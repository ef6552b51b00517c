"""How scene labels map onto the attribute classifier's outputs, and back.

The classifier reads an image as a 3x3 grid of cells plus a background: for each cell, is there
an object, and if so its shape, colour and size. Objects sit in grid cells by construction, so
this per-cell reading is exact for renders and lets two-object scenes be scored object by object.

Logit layout (``NUM_OUTPUTS`` = 3 + 9 * 17): background (3), then per cell, row-major:
occupancy (1), shape (6), colour (8), size (2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgediff.zoo.attributes import BACKGROUND_NAMES, COLOR_NAMES, POSITION_NAMES, POSITIONS, SHAPES, SIZES, Scene

NUM_CELLS = 9
CELL_WIDTH = 1 + len(SHAPES) + len(COLOR_NAMES) + len(SIZES)  # 17
NUM_OUTPUTS = len(BACKGROUND_NAMES) + NUM_CELLS * CELL_WIDTH  # 156
_SHAPE = slice(1, 1 + len(SHAPES))
_COLOR = slice(_SHAPE.stop, _SHAPE.stop + len(COLOR_NAMES))
_SIZE = slice(_COLOR.stop, _COLOR.stop + len(SIZES))
# Cell index (row-major) -> position name, and back.
CELL_POSITION: tuple[str, ...] = tuple(sorted(POSITION_NAMES, key=lambda p: POSITIONS[p][0] * 3 + POSITIONS[p][1]))
POSITION_CELL: dict[str, int] = {p: i for i, p in enumerate(CELL_POSITION)}


@dataclass(frozen=True)
class Targets:
    """Integer class targets for a batch; -1 where a cell is empty (shape/colour/size undefined)."""

    background: np.ndarray  # (N,)
    occupied: np.ndarray  # (N, 9) 0/1
    shape: np.ndarray  # (N, 9)
    color: np.ndarray  # (N, 9)
    size: np.ndarray  # (N, 9)


def encode_targets(scenes: list[Scene]) -> Targets:
    n = len(scenes)
    background = np.empty(n, dtype=np.int64)
    occupied = np.zeros((n, NUM_CELLS), dtype=np.int64)
    shape, color, size = (np.full((n, NUM_CELLS), -1, dtype=np.int64) for _ in range(3))
    for i, scene in enumerate(scenes):
        if scene.background is None:
            raise ValueError("a training scene needs a background")
        background[i] = BACKGROUND_NAMES.index(scene.background)
        for obj in scene.objects:
            if obj.size is None:
                raise ValueError("a training scene needs object sizes")
            c = POSITION_CELL[obj.position]
            occupied[i, c] = 1
            shape[i, c] = SHAPES.index(obj.shape)
            color[i, c] = COLOR_NAMES.index(obj.color)
            size[i, c] = SIZES.index(obj.size)
    return Targets(background, occupied, shape, color, size)


@dataclass(frozen=True)
class Detection:
    """What the classifier reads in one image: background and the attributes of every occupied cell."""

    background: str
    objects: dict[str, tuple[str, str, str]]  # position -> (shape, colour, size)


def split_logits(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 156) -> background logits (N, 3) and per-cell logits (N, 9, 17)."""
    nb = len(BACKGROUND_NAMES)
    return logits[:, :nb], logits[:, nb:].reshape(len(logits), NUM_CELLS, CELL_WIDTH)


def decode(logits: np.ndarray) -> list[Detection]:
    """Logits (N, 156) -> one ``Detection`` per image; a cell is occupied where its logit is > 0."""
    bg, cells = split_logits(np.asarray(logits))
    bg_idx = bg.argmax(axis=1)
    shape_idx = cells[:, :, _SHAPE].argmax(axis=2)
    color_idx = cells[:, :, _COLOR].argmax(axis=2)
    size_idx = cells[:, :, _SIZE].argmax(axis=2)
    out = []
    for i in range(len(bg_idx)):
        objects = {
            CELL_POSITION[c]: (SHAPES[shape_idx[i, c]], COLOR_NAMES[color_idx[i, c]], SIZES[size_idx[i, c]])
            for c in range(NUM_CELLS)
            if cells[i, c, 0] > 0
        }
        out.append(Detection(background=BACKGROUND_NAMES[bg_idx[i]], objects=objects))
    return out
