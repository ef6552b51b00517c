"""``quantize zoo --update``: a rerun's cells replace their own rows in a published table, nothing else."""

from __future__ import annotations

import pytest

from tools.bench.quantize import _zoo_markdown, merge_zoo_rows


def _row(target: str, precision: str, adherence: float) -> dict:
    return {"model": "zoo:m", "target": target, "precision": precision, "adherence": adherence, "fd": 1.0,
            "psnr_vs_fp32": 40.0, "denoiser_bytes": 2**20, "denoiser_step_ms": 1.0}


def _table(command: str, rows: list[dict], prompts: int = 64) -> dict:
    return {"prompts": prompts, "eval_offset": 64, "teacher": "t", "command": command, "host": {"h": command},
            "rows": rows}


def test_rerun_cells_replace_their_rows_in_place_and_the_commands_accumulate() -> None:
    published = _table("first", [_row("x86-cpu", "fp32", 1.0), {**_row("x86-cpu", "int8", 0.0), "error": "E"},
                                 _row("intel-cpu", "int8", 0.9)])
    rerun = _table("second", [_row("x86-cpu", "fp32", 1.0), _row("x86-cpu", "int8", 0.98), _row("x86-cpu", "int4w", 0.97)])

    merged = merge_zoo_rows(published, rerun)

    assert [(r["target"], r["precision"], r["adherence"]) for r in merged["rows"]] == [
        ("x86-cpu", "fp32", 1.0), ("x86-cpu", "int8", 0.98), ("intel-cpu", "int8", 0.9), ("x86-cpu", "int4w", 0.97)]
    assert "error" not in merged["rows"][1]
    assert merged["commands"] == ["first", "second"] and merged["hosts"] == [{"h": "first"}, {"h": "second"}]
    assert merge_zoo_rows(merged, _table("third", []))["commands"] == ["first", "second", "third"]
    assert "| zoo:m | x86-cpu | int8 | 0.980 |" in _zoo_markdown(merged)


def test_a_rerun_scored_on_other_prompts_is_refused_in_one_line() -> None:
    with pytest.raises(SystemExit) as refused:
        merge_zoo_rows(_table("first", []), _table("second", [], prompts=32))
    assert "prompts" in str(refused.value) and "\n" not in str(refused.value)
