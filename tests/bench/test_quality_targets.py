"""``--max-quality-drop PRECISION=DROP``: the benchmarks' quality targets, parsed alike in both scripts."""

from __future__ import annotations

import json

import pytest

from tools.bench import compare
from tools.bench.quantize import quality_targets


def test_targets_parse_per_precision() -> None:
    assert quality_targets(["int8=0.01", "int4w=0.03"]) == {"int8": 0.01, "int4w": 0.03}
    assert quality_targets([]) == {}


@pytest.mark.parametrize("word", ["int8", "int8=", "=0.01", "int8=much"])
def test_a_malformed_target_exits_with_one_line_naming_the_form(word: str) -> None:
    with pytest.raises(SystemExit) as exited:
        quality_targets([word])
    message = str(exited.value)
    assert "PRECISION=DROP" in message and repr(word) in message and "\n" not in message


def test_compare_keeps_a_quality_targeted_bundle_apart_from_the_plain_one(tmp_path) -> None:
    args = compare.parse_args(["--max-quality-drop", "int8=0.01", "--work", str(tmp_path)])
    assert args.max_quality_drop == {"int8": 0.01} and args.search_prompts == 64
    from edgediff.models import load_model

    source_hash = load_model("zoo:shapes-unet").source_hash
    for name in ("zoo_shapes-unet-64x64-x86-cpu-int8", "zoo_shapes-unet-64x64-x86-cpu-int8-drop0.01"):
        folder = tmp_path / "bundles" / name
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps(
            {"provenance": {"source": "zoo:shapes-unet", "source_hash": source_hash},
             "pipeline": {"height": 64, "width": 64}}))
    plain = compare.bundle_dir("zoo:shapes-unet", "x86-cpu", "int8", 64, 64, tmp_path, {"calibration_samples": 8})
    targeted = compare.bundle_dir("zoo:shapes-unet", "x86-cpu", "int8", 64, 64, tmp_path,
                                  {"calibration_samples": 8, "max_quality_drop": 0.01})
    assert plain.name.endswith("int8") and targeted.name.endswith("int8-drop0.01")  # reused, neither re-exported


def test_compare_rebuilds_a_bundle_whose_source_changed(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import edgediff.api

    folder = tmp_path / "bundles" / "zoo_shapes-unet-64x64-x86-cpu-fp32-tinyvae"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(  # built from another decoder: its source hash differs
        {"provenance": {"source": "zoo:shapes-unet", "source_hash": "0" * 64}, "pipeline": {"height": 64, "width": 64}}))
    exports: list[str] = []
    monkeypatch.setattr(edgediff.api, "export_bundle", lambda model, target, out, **kw: exports.append(out.name))
    compare.bundle_dir("zoo:shapes-unet", "x86-cpu", "fp32", 64, 64, tmp_path, {"decoder": "tiny"})
    assert exports == [folder.name]
