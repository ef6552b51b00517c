"""Scoring what the classifier reads in an image against what the prompt asked for.

Each prompted object is paired with a detected object: the one in its prompted cell if that cell
is occupied (then its position is right), otherwise the unpaired detection agreeing on the most of
shape, colour and size (its position is wrong). An object with no detection left gets every
attribute wrong. An image adheres when the background (if prompted), the object count and every
prompted attribute of every object are right. Per attribute, an image counts as right when that
attribute is right for all of its objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgediff.eval.labels import Detection
from edgediff.zoo.attributes import ObjectSpec, Scene

ATTRIBUTES: tuple[str, ...] = ("shape", "color", "size", "position", "background", "count")


def _agreement(obj: ObjectSpec, found: tuple[str, str, str]) -> int:
    shape, color, size = found
    return int(obj.shape == shape) + int(obj.color == color) + int(obj.size is not None and obj.size == size)


def score_image(scene: Scene, detection: Detection) -> dict[str, bool]:
    """Which prompted attributes one image gets right (keys: ``ATTRIBUTES``; unprompted ones count as right)."""
    free = dict(detection.objects)
    pairs: list[tuple[ObjectSpec, tuple[str, str, str] | None, bool]] = []
    for obj in scene.objects:  # first pass: objects found where they were asked for
        if obj.position in free:
            pairs.append((obj, free.pop(obj.position), True))
    for obj in scene.objects:  # second pass: misplaced objects, best attribute match among the rest
        if any(p[0] is obj for p in pairs):
            continue
        if free:
            best = max(free, key=lambda pos: _agreement(obj, free[pos]))
            pairs.append((obj, free.pop(best), False))
        else:
            pairs.append((obj, None, False))
    result = {
        "shape": all(f is not None and o.shape == f[0] for o, f, _ in pairs),
        "color": all(f is not None and o.color == f[1] for o, f, _ in pairs),
        "size": all(o.size is None or (f is not None and o.size == f[2]) for o, f, _ in pairs),
        "position": all(placed for _, _, placed in pairs),
        "background": scene.background is None or scene.background == detection.background,
        "count": len(detection.objects) == len(scene.objects),
    }
    return result


def score(scenes: Sequence[Scene], detections: Sequence[Detection]) -> dict[str, object]:
    """Adherence overall, per attribute, and split by one- and two-object prompts."""
    if len(scenes) != len(detections):
        raise ValueError(f"{len(scenes)} scenes but {len(detections)} detections")
    rows = [score_image(s, d) for s, d in zip(scenes, detections, strict=True)]
    ok = np.array([all(r.values()) for r in rows], dtype=bool)
    counts = np.array([len(s.objects) for s in scenes])

    def share(mask: np.ndarray) -> float | None:
        return float(ok[mask].mean()) if mask.any() else None

    return {
        "adherence": float(ok.mean()) if len(ok) else None,
        "adherence_by_attribute": {a: float(np.mean([r[a] for r in rows])) if rows else None for a in ATTRIBUTES},
        "adherence_single": share(counts == 1),
        "adherence_two": share(counts == 2),
        "per_image": ok.tolist(),
    }
