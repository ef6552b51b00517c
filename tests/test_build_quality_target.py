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


@pytest.mark.slow  # a whole search to its widest fallback (about 50 s); CI's untargeted slow group
def test_an_unreachable_psnr_floor_fails_naming_layers_and_writes_nothing(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    recipe = Recipe(precision="int8w", components=("denoiser",),
                    options=FAST | {"min_psnr": 99.0, "max_fallback_fraction": 0.02})
    with pytest.raises(QualityTargetError, match=r"cannot meet PSNR >= 99.0 dB.*most sensitive layers in float \(model\."):
        build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
    assert not (tmp_path / "q").exists()


@pytest.mark.slow  # a quantized build with its sensitivity search (about 50 s); CI's untargeted slow group
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


def _bundle_reports_lower_psnr(monkeypatch: pytest.MonkeyPatch, lowered_reports: int) -> list[float]:
    """The first ``lowered_reports`` bundle reports measure 100 dB less than the real measurement: the
    case of a borderline prompt that the search's trial kept and the written bundle lost."""
    import edgediff.build_quantized as build_quantized

    real = build_quantized.quality_report
    measured: list[float] = []

    def report(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = real(*args, **kwargs)
        if len(measured) < lowered_reports:
            result["images"]["psnr"] -= 100.0
        measured.append(result["images"]["psnr"])
        return result

    monkeypatch.setattr(build_quantized, "quality_report", report)
    return measured


@pytest.mark.slow  # two quality searches and three builds (about 10 s each); CI's untargeted slow group
def test_a_written_bundle_that_misses_its_target_is_rebuilt_with_the_next_fallback_size(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    measured = _bundle_reports_lower_psnr(monkeypatch, lowered_reports=1)
    recipe = Recipe(precision="int8w", components=("denoiser",), options=FAST | {"min_psnr": 5.0})
    bundle = build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
    record = bundle.components["denoiser"]["quantization"]
    search = record["fallback_search"]
    written = [t for t in search["trials"] if t["on"] == "the written bundle"]
    assert [t["kept_in_float"] for t in written] == [0, 1] and written[0]["margin"] < 0 <= written[1]["margin"]
    assert search["confirmed_on_bundle"] and len(measured) == 2
    assert record["kept_in_float"] == search["kept_in_float"] == [search["most_sensitive"][0]["layer"]]
    assert bundle.manifest["quality"]["images"]["psnr"] == measured[-1] >= 5.0


@pytest.mark.slow
def test_a_written_bundle_that_misses_at_the_widest_allowed_fallback_fails_and_writes_nothing(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    _bundle_reports_lower_psnr(monkeypatch, lowered_reports=99)
    recipe = Recipe(precision="int8w", components=("denoiser",),
                    options=FAST | {"min_psnr": 5.0, "max_fallback_fraction": 0.1})
    with pytest.raises(QualityTargetError, match=r"the written bundle misses PSNR >= 5.0 dB .* the most the recipe "
                                                 r"allows; keep more with --keep-float"):
        build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
    assert not (tmp_path / "q").exists()
