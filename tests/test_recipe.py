from __future__ import annotations

from pathlib import Path

import pytest

from edgediff.errors import EdgeDiffError
from edgediff.recipe import Recipe, load_recipe


def test_recipe_file_round_trips_and_flags_override(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('passes = ["export"]\nprecision = "fp16"\nheight = 256\nwidth = 256\n')
    recipe = load_recipe(path).merged(height=128, steps=None)
    assert (recipe.precision, recipe.height, recipe.width) == ("fp16", 128, 256)
    assert recipe.to_json()["passes"] == ["export"]


@pytest.mark.parametrize(
    ("passes", "message"),
    [
        (("export", "quantize"), "out of order"),
        (("sharpen", "export"), "unknown recipe pass 'sharpen'"),
        (("prune", "export"), "'prune' is not available"),
    ],
)
def test_recipes_are_checked_before_any_work(passes: tuple[str, ...], message: str) -> None:
    with pytest.raises(EdgeDiffError, match=message):
        Recipe(passes=passes).validate()


def test_unknown_recipe_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("precison = 'fp16'\n")
    with pytest.raises(EdgeDiffError, match="unknown keys \\['precison'\\]"):
        load_recipe(path)
