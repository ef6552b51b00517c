"""Schemes: JSON round trips, lookup by name, validation, and a package that imports no engine."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from edgediff.errors import EdgeDiffError
from edgediff.quantize import BACKENDS, supported_schemes
from edgediff.quantize.schemes import (
    SCHEMES,
    Fp8,
    Fp16,
    Int4Weight,
    Int8Static,
    Int8Weight,
    get_scheme,
    scheme_from_json,
)

ALL = [
    Fp16(),
    Int8Static(),
    Int8Static(calibration_samples=8, smooth_quant_alpha=0.5, bias_correction=False, hybrid=True),
    Int8Weight(),
    Int4Weight(),
    Int4Weight(group_size=128, symmetric=False),
    Fp8(),
]


@pytest.mark.parametrize("scheme", ALL, ids=lambda s: s.to_json())
def test_every_scheme_survives_a_json_round_trip(scheme) -> None:
    assert scheme_from_json(scheme.to_json()) == scheme
    assert scheme_from_json(json.loads(json.dumps(scheme.to_dict()))) == scheme


def test_names_map_to_schemes_with_documented_defaults() -> None:
    assert SCHEMES.names() == ["fp16", "fp8", "int4w", "int8", "int8w"]
    assert get_scheme("int8") == Int8Static(
        calibration_samples=64, smooth_quant_alpha=None, bias_correction=True, hybrid=False,
        linears_as_convolutions=False,
    )
    assert get_scheme("int4w", group_size=32) == Int4Weight(group_size=32, symmetric=True)
    assert Int8Static().to_dict() == {
        "name": "int8",
        "version": 2,
        "calibration_samples": 64,
        "smooth_quant_alpha": None,
        "bias_correction": True,
        "hybrid": False,
        "linears_as_convolutions": False,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        Int8Static().hybrid = True  # type: ignore[misc]


def test_version_1_int8_records_read_back_with_openvino_linears_as_matmuls() -> None:
    # bundles built before version 2 traced every Linear as a matmul, which the default still does
    assert scheme_from_json({"name": "int8", "version": 1, "hybrid": False}) == Int8Static()
    assert not Int8Static().linears_as_convolutions


def test_bad_names_options_and_values_are_user_errors() -> None:
    with pytest.raises(EdgeDiffError, match="unknown quantization scheme 'int3'; known: fp16, fp8, int4w, int8, int8w"):
        get_scheme("int3")
    with pytest.raises(EdgeDiffError, match="scheme 'int8w' has no option 'group_size'; its options: none"):
        get_scheme("int8w", group_size=32)
    with pytest.raises(EdgeDiffError, match="power of two >= 16"):
        Int4Weight(group_size=48)
    with pytest.raises(EdgeDiffError, match="smooth_quant_alpha"):
        Int8Static(smooth_quant_alpha=1.5)
    with pytest.raises(EdgeDiffError, match="calibration_samples"):
        Int8Static(calibration_samples=0)
    with pytest.raises(EdgeDiffError, match="hybrid int8 keeps Linear layers.*set one of them"):
        Int8Static(hybrid=True, linears_as_convolutions=True)
    with pytest.raises(EdgeDiffError, match="version 3"):
        scheme_from_json({"name": "int8", "version": 3})
    with pytest.raises(EdgeDiffError, match="not valid JSON"):
        scheme_from_json("{int8")


def test_every_format_backend_lists_its_schemes_and_only_the_gpu_one_claims_fp8() -> None:
    cpu_formats = set(BACKENDS) - {"aoti"}
    for format_name in cpu_formats:
        assert supported_schemes(format_name) == {"int8", "int8w", "int4w"}
    assert supported_schemes("aoti") == {"fp8", "int8"}
    assert supported_schemes("litert") == frozenset()


def test_importing_the_backends_loads_no_engine() -> None:
    code = (
        "import sys\n"
        "import edgediff.quantize, edgediff.quantize.sensitivity\n"
        "from edgediff.quantize import supported_schemes\n"
        "[supported_schemes(f) for f in ('onnx', 'openvino', 'executorch')]\n"
        "heavy = ('torch', 'openvino', 'nncf', 'onnx', 'onnxruntime', 'executorch', 'torchao')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_an_option_the_targets_backend_cannot_build_is_refused_before_any_work(tiny_model) -> None:
    from edgediff.build import resolve_settings
    from edgediff.recipe import Recipe
    from edgediff.targets import get_target

    hybrid = Recipe(precision="int8", options={"scheme": {"hybrid": True}})
    with pytest.raises(EdgeDiffError, match="hybrid int8 .*not available on XNNPACK"):
        resolve_settings(tiny_model, get_target("arm64-cpu"), hybrid)
    for target in ("x86-cpu", "intel-cpu"):  # ONNX Runtime and OpenVINO build it
        assert resolve_settings(tiny_model, get_target(target), hybrid)["precision"] == "int8"
    as_conv = Recipe(precision="int8", options={"scheme": {"linears_as_convolutions": True}})
    for target in ("x86-cpu", "arm64-cpu"):
        with pytest.raises(EdgeDiffError, match="linears_as_convolutions is an OpenVINO option"):
            resolve_settings(tiny_model, get_target(target), as_conv)
    assert resolve_settings(tiny_model, get_target("intel-cpu"), as_conv)["precision"] == "int8"
