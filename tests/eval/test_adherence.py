from __future__ import annotations

from edgediff.eval.adherence import ATTRIBUTES, score, score_image
from edgediff.eval.labels import Detection
from edgediff.zoo.grammar import parse_prompt

TWO = parse_prompt("a small red star at the top left and a large blue ring on the right on a white background")


def _wrong(result: dict[str, bool]) -> list[str]:
    return [k for k in ATTRIBUTES if not result[k]]


def test_exact_detection_adheres():
    d = Detection("white", {"top left": ("star", "red", "small"), "right": ("ring", "blue", "large")})
    assert _wrong(score_image(TWO, d)) == []


def test_swapped_colours_fail_colour_only():
    d = Detection("white", {"top left": ("star", "blue", "small"), "right": ("ring", "red", "large")})
    assert _wrong(score_image(TWO, d)) == ["color"]


def test_misplaced_object_fails_position_but_keeps_its_attributes():
    d = Detection("white", {"top left": ("star", "red", "small"), "bottom": ("ring", "blue", "large")})
    assert _wrong(score_image(TWO, d)) == ["position"]


def test_missing_object_fails_everything_about_it_and_the_count():
    d = Detection("white", {"top left": ("star", "red", "small")})
    assert _wrong(score_image(TWO, d)) == ["shape", "color", "size", "position", "count"]


def test_extra_object_fails_the_count_only():
    d = Detection(
        "white",
        {"top left": ("star", "red", "small"), "right": ("ring", "blue", "large"), "top": ("cross", "red", "small")},
    )
    assert _wrong(score_image(TWO, d)) == ["count"]


def test_wrong_background_fails_background():
    d = Detection("black", {"top left": ("star", "red", "small"), "right": ("ring", "blue", "large")})
    assert _wrong(score_image(TWO, d)) == ["background"]


def test_unsaid_size_and_background_are_not_checked():
    scene = parse_prompt("a green cross at the bottom")
    assert _wrong(score_image(scene, Detection("gray", {"bottom": ("cross", "green", "large")}))) == []


def test_score_reports_shares_overall_per_attribute_and_by_object_count():
    one = parse_prompt("a small red star at the top left on a white background")
    good_one = Detection("white", {"top left": ("star", "red", "small")})
    bad_two = Detection("white", {"top left": ("star", "blue", "small"), "right": ("ring", "blue", "large")})
    result = score([one, TWO], [good_one, bad_two])
    assert result["adherence"] == 0.5
    assert result["adherence_single"] == 1.0 and result["adherence_two"] == 0.0
    assert result["adherence_by_attribute"] == {
        "shape": 1.0,
        "color": 0.5,
        "size": 1.0,
        "position": 1.0,
        "background": 1.0,
        "count": 1.0,
    }
