"""The prompt grammar: a ``Scene`` <-> an English sentence, both ways, exactly.

    prompt  := object [" and " object] [" on a " BACKGROUND " background"]
    object  := "a " [SIZE " "] COLOR " " SHAPE " " place
    place   := "at the top left" | "at the top" | ... | "on the left" | "in the center" | ...

Parsing is the inverse of ``prompt_for``, so the evaluator reads a prompt's labels from its text
alone and any prompt the grammar accepts can be scored; words the grammar leaves out (size,
background) are simply not checked.
"""

from __future__ import annotations

import re

from edgediff.zoo.attributes import BACKGROUND_NAMES, COLOR_NAMES, SHAPES, SIZES, ObjectSpec, Scene

PLACES: dict[str, str] = {
    "top left": "at the top left",
    "top": "at the top",
    "top right": "at the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "at the bottom left",
    "bottom": "at the bottom",
    "bottom right": "at the bottom right",
}
_PLACE_TO_POSITION = {phrase: position for position, phrase in PLACES.items()}


def object_phrase(obj: ObjectSpec) -> str:
    size = f"{obj.size} " if obj.size is not None else ""
    return f"a {size}{obj.color} {obj.shape} {PLACES[obj.position]}"


def prompt_for(scene: Scene) -> str:
    """The sentence describing ``scene``: 'a small red star at the top left on a white background'."""
    text = " and ".join(object_phrase(o) for o in scene.objects)
    if scene.background is not None:
        text += f" on a {scene.background} background"
    return text


def _alternation(words: tuple[str, ...] | list[str]) -> str:
    # Longest first, so 'top left' wins over 'top'.
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_OBJECT = (
    rf"a (?:(?P<size{{i}}>{_alternation(SIZES)}) )?(?P<color{{i}}>{_alternation(COLOR_NAMES)}) "
    rf"(?P<shape{{i}}>{_alternation(SHAPES)}) (?P<place{{i}}>{_alternation(list(_PLACE_TO_POSITION))})"
)
_PROMPT = re.compile(
    _OBJECT.format(i=0)
    + rf"(?: and {_OBJECT.format(i=1)})?"
    + rf"(?: on a (?P<background>{_alternation(BACKGROUND_NAMES)}) background)?"
)


def normalize(text: str) -> str:
    """Lower case, single spaces, no trailing full stop: the form the tokenizer also sees."""
    return " ".join(text.lower().strip().rstrip(".").split())


def parse_prompt(text: str) -> Scene:
    """The labels a prompt asks for; ValueError if the grammar does not accept it."""
    match = _PROMPT.fullmatch(normalize(text))
    if match is None:
        raise ValueError(f"prompt is not in the shapes grammar: {text!r}")
    objects = []
    for i in (0, 1):
        if match.group(f"shape{i}") is None:
            continue
        objects.append(
            ObjectSpec(
                shape=match.group(f"shape{i}"),
                color=match.group(f"color{i}"),
                size=match.group(f"size{i}"),
                position=_PLACE_TO_POSITION[match.group(f"place{i}")],
            )
        )
    return Scene(objects=tuple(objects), background=match.group("background"))


def vocabulary() -> list[str]:
    """Every word the grammar can produce, in a fixed order (the tokenizer's ids follow it)."""
    words = ["a", "and", "on", "background", "at", "the", "in"]
    for place in PLACES.values():
        words += place.split()
    words += list(SIZES) + list(COLOR_NAMES) + list(SHAPES) + list(BACKGROUND_NAMES)
    return list(dict.fromkeys(words))
