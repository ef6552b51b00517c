"""A recipe's ``[options.scheme]`` table reaches the quantizer, is recorded, and is checked up front."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgediff.build import build
from edgediff.errors import EdgeDiffError, TargetError
from edgediff.recipe import Recipe
from edgediff.targets import get_target


def _int4_initializers(bundle) -> int:  # noqa: ANN001
    graph = onnx.load(str(bundle.entry("denoiser"))).graph
    return sum(i.data_type == onnx.TensorProto.INT4 for i in graph.initializer)


@pytest.mark.parametrize("conv_bits", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_int4w_convolution_bits_follow_the_recipe(tiny_model, tmp_path: Path, conv_bits: int) -> None:  # noqa: ANN001
    recipe = Recipe(precision="int4w", components=("denoiser",),
                    options={"quality_report": False, "scheme": {"conv_bits": conv_bits}})
    bundle = build(tiny_model, get_target("x86-cpu"), recipe, tmp_path / "q")
    scheme = bundle.components["denoiser"]["quantization"]["scheme"]
    assert scheme == {"name": "int4w", "version": 2, "group_size": 64, "symmetric": True, "conv_bits": conv_bits,
                      "calibration_samples": 64}  # read by XNNPACK only
    # MatMul weights live in MatMulNBits' uint8 blobs; INT4 initializers are the convolutions'
    assert (_int4_initializers(bundle) > 0) == (conv_bits == 4)


def test_bad_scheme_options_fail_before_any_work(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    target = get_target("x86-cpu")
    with pytest.raises(EdgeDiffError, match="scheme 'int4w' has no option 'bits'; its options: calibration_samples, conv_bits, group_size, symmetric"):
        build(tiny_model, target, Recipe(precision="int4w", options={"scheme": {"bits": 3}}), tmp_path / "a")
    with pytest.raises(EdgeDiffError, match="conv_bits must be 4 or 8, got 2"):
        build(tiny_model, target, Recipe(precision="int4w", options={"scheme": {"conv_bits": 2}}), tmp_path / "b")
    with pytest.raises(TargetError, match="must be a table of scheme fields"):
        build(tiny_model, target, Recipe(precision="int4w", options={"scheme": 8}), tmp_path / "c")
    with pytest.raises(TargetError, match="scheme options apply to quantized precisions"):
        build(tiny_model, target, Recipe(precision="fp32", options={"scheme": {"conv_bits": 8}}), tmp_path / "d")
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_a_recipe_file_carries_the_scheme_table(tmp_path: Path) -> None:
    from edgediff.recipe import load_recipe

    path = tmp_path / "int4w.toml"
    path.write_text('precision = "int4w"\n[options.scheme]\nconv_bits = 8\ngroup_size = 32\n')
    recipe = load_recipe(path)
    assert recipe.precision == "int4w" and recipe.options == {"scheme": {"conv_bits": 8, "group_size": 32}}
