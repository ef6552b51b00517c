"""Quality targets on quantized builds: met targets are recorded, unmet ones fail naming the layers."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgediff.build import build
from edgediff.build_quality import QualityTargetError
from edgediff.errors import EdgeDiffError, TargetError
from edgediff.recipe import Recipe
from edgediff.targets import get_target

FAST = {"calibration_samples": 4, "quality_prompts": 2}


def test_an_unreachable_psnr_floor_fails_naming_layers_and_writes_nothing(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    recipe = Recipe(precision="int8w", components=("denoiser",),
                    options=FAST | {"min_psnr": 99.0, "max_fallback_fraction": 0.02})
    with pytest.raises(QualityTargetError, match=r"cannot meet PSNR >= 99.0 dB.*most sensitive layers in float \(model\."):
        build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
    assert not (tmp_path / "q").exists()


def test_a_met_target_records_the_search_and_keeps_float_layers_out_of_the_qdq_graph(
    tiny_model, tmp_path: Path  # noqa: ANN001
) -> None:
    recipe = Recipe(precision="int8w", components=("denoiser",),
                    options=FAST | {"min_psnr": 5.0, "keep_float": ["model.conv_in"]})
    bundle = build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
    record = bundle.components["denoiser"]["quantization"]
    search = record["fallback_search"]
    assert search["met"] and search["trials"][0]["kept_in_float"] == 0 and search["trials"][0]["psnr"] >= 5.0
    assert search["candidates"] > 10 and search["most_sensitive"][0]["output_rel_l2"] > 0
    assert record["kept_in_float"] == ["model.conv_in"]
    graph = onnx.load(str(bundle.entry("denoiser"))).graph
    # conv_in is the Conv reading the graph's ``sample`` input: kept in float, it reads it directly
    # (no Quantize/Dequantize pair between) and its weight is an fp32 initializer
    conv_in = [n for n in graph.node if n.op_type == "Conv" and n.input[0] == "sample"]
    weights = {i.name: i for i in graph.initializer}
    assert len(conv_in) == 1 and weights[conv_in[0].input[1]].data_type == onnx.TensorProto.FLOAT
    others = [n for n in graph.node if n.op_type == "Conv" and n is not conv_in[0]]
    assert others and all(n.input[1] not in weights or weights[n.input[1]].data_type != onnx.TensorProto.FLOAT
                          for n in others)


def test_adherence_targets_are_refused_where_the_zoo_evaluator_does_not_apply(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    recipe = Recipe(precision="int8", options={"max_quality_drop": 0.01})
    with pytest.raises(EdgeDiffError, match="use --min-psnr instead"):
        build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")


def test_quality_targets_on_a_float_precision_are_refused(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(TargetError, match="apply to quantized precisions"):
        build(tiny_model, get_target("x86-cpu"), Recipe(precision="fp32", options={"min_psnr": 30.0}), tmp_path / "q")


def test_an_unknown_module_to_keep_in_float_is_named(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    recipe = Recipe(precision="int8w", components=("denoiser",), options=FAST | {"keep_float": ["model.nope"]})
    with pytest.raises(EdgeDiffError, match="module 'model.nope' to keep in float has no weighted layer"):
        build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
