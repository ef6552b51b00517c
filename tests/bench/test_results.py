"""Bench results land whole: JSON beside markdown, renamed into place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench.results import write_result


def test_writes_json_markdown_and_renderings_under_one_stem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stem = tmp_path / "new" / "gemm_v1.2"  # a dot in the name is part of the name, not a suffix
    paths = write_result(stem, {"ms": 1.5}, "| a |\n|---|", renderings={".svg": "<svg/>"})
    assert [p.name for p in paths] == ["gemm_v1.2.json", "gemm_v1.2.md", "gemm_v1.2.svg"]
    assert json.loads(paths[0].read_text()) == {"ms": 1.5}
    assert paths[1].read_text() == "| a |\n|---|\n"
    assert sorted(p.name for p in stem.parent.iterdir()) == sorted(p.name for p in paths)  # no partial files left
    assert "| a |" in capsys.readouterr().out


def test_a_result_that_cannot_be_serialized_leaves_the_previous_one_whole(tmp_path: Path) -> None:
    stem = tmp_path / "bench"
    write_result(stem, {"run": 1}, "first", echo=False)
    with pytest.raises(TypeError):
        write_result(stem, {"run": object()}, "second", echo=False)
    assert json.loads((tmp_path / "bench.json").read_text()) == {"run": 1}
    assert (tmp_path / "bench.md").read_text() == "first\n"
