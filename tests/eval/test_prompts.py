from __future__ import annotations

import pytest

from edgediff.errors import EdgeDiffError
from edgediff.eval.prompts import load_prompt_set, prompt_set_versions
from edgediff.zoo.grammar import parse_prompt


def test_v1_has_400_prompts_alternating_one_and_two_objects():
    prompts = load_prompt_set("v1")
    assert len(prompts) == 400
    assert [len(parse_prompt(p).objects) for p in prompts[:6]] == [1, 2, 1, 2, 1, 2]
    assert prompts[0] == "a small pink star at the bottom on a white background"


def test_v1_file_is_what_its_generator_writes():
    from tools.zoo.make_prompts import build

    assert [row["text"] for row in build(400)] == load_prompt_set("v1")


def test_first_n_prompts_and_bounds():
    assert load_prompt_set("v1", 3) == load_prompt_set("v1")[:3]
    with pytest.raises(EdgeDiffError, match="between 1 and 400"):
        load_prompt_set("v1", 401)


def test_unknown_version_lists_the_known_ones():
    assert prompt_set_versions() == ["v1"]
    with pytest.raises(EdgeDiffError, match="known: v1"):
        load_prompt_set("v9")


def test_importing_the_evaluator_and_zoo_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, edgediff.eval, edgediff.zoo; print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
