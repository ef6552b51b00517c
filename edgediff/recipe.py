"""Recipes: the ordered passes a build applies, from a TOML file or CLI flags, checked before any work.

A recipe is recorded verbatim in the bundle manifest. Passes run in the fixed order
prune -> distill -> quantize -> export; only ``export`` (with its precision) exists so far, and a recipe
naming another pass fails validation up front rather than after minutes of work.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgediff.errors import EdgeDiffError

PASS_ORDER = ("prune", "distill", "quantize", "export")
AVAILABLE_PASSES = ("export",)


@dataclass(frozen=True)
class Recipe:
    """What to build. ``None`` fields take the model's defaults (its native size, steps and guidance)."""

    passes: tuple[str, ...] = ("export",)
    precision: str | None = None  # None: the target's default precision
    height: int | None = None
    width: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None  # numpy scheduler name; None: the one matching the model's scheduler
    components: tuple[str, ...] | None = None  # None: every component of the model
    allow_mismatch: bool = False  # keep a bundle whose parity fails, flagged in the manifest
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passes"] = list(self.passes)
        if self.components is not None:
            data["components"] = list(self.components)
        return data

    def validate(self) -> None:
        unknown = [p for p in self.passes if p not in PASS_ORDER]
        if unknown:
            raise EdgeDiffError(f"unknown recipe pass {unknown[0]!r}; passes are {', '.join(PASS_ORDER)}")
        order = [PASS_ORDER.index(p) for p in self.passes]
        if order != sorted(order) or len(set(order)) != len(order):
            raise EdgeDiffError(f"recipe passes {list(self.passes)} are out of order; use the order {' -> '.join(PASS_ORDER)}")
        missing = [p for p in self.passes if p not in AVAILABLE_PASSES]
        if missing:
            raise EdgeDiffError(f"recipe pass {missing[0]!r} is not available in this edgediff yet; remove it from the recipe")
        if self.passes[-1:] != ("export",):
            raise EdgeDiffError("a recipe must end with the 'export' pass")
        for name in ("height", "width", "steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise EdgeDiffError(f"recipe {name} must be positive, got {value}")

    def merged(self, **overrides: Any) -> Recipe:
        """This recipe with the non-None overrides applied (CLI flags win over a recipe file)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_recipe(path: Path) -> Recipe:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EdgeDiffError(f"cannot read recipe {path}: {exc}") from exc
    known = set(Recipe.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise EdgeDiffError(f"recipe {path} has unknown keys {unknown}; known keys: {', '.join(sorted(known))}")
    for key in ("passes", "components"):
        if key in data and data[key] is not None:
            data[key] = tuple(data[key])
    return Recipe(**data)
