from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgediff.cli import main
from edgediff.errors import TargetError
from edgediff.targets import get_target, list_targets


def test_targets_json_lists_required_fields_and_the_three_cpu_targets_are_available() -> None:
    result = CliRunner().invoke(main, ["targets", "--json"])
    assert result.exit_code == 0
    entries = {t["name"]: t for t in json.loads(result.output)}
    for entry in entries.values():
        assert {"name", "format", "runtime", "precisions", "default_precision", "available"} <= set(entry)
        assert entry["default_precision"] in entry["precisions"]
    assert {n for n, t in entries.items() if t["available"]} - {"h100"} == {"x86-cpu", "intel-cpu", "arm64-cpu"}
    for planned in ("snapdragon-8-gen3", "jetson-orin", "apple-m-series", "android-litert"):
        assert entries[planned]["available"] is False
        assert entries[planned]["availability"] == "exporter not built yet"


def test_a_gpu_target_is_available_only_where_an_nvidia_driver_is(monkeypatch, tmp_path) -> None:
    from edgediff.targets import target as target_module

    h100 = get_target("h100")
    monkeypatch.setattr(target_module, "NVIDIA_DRIVER_FILES", (str(tmp_path / "absent"),))
    assert not h100.available and "no NVIDIA GPU driver" in h100.availability_reason()
    (tmp_path / "version").write_text("NVRM version: 570\n")
    monkeypatch.setattr(target_module, "NVIDIA_DRIVER_FILES", (str(tmp_path / "absent"), str(tmp_path / "version")))
    assert h100.available and h100.availability_reason() == "ok"


def test_targets_table_says_why_a_target_is_unavailable() -> None:
    result = CliRunner().invoke(main, ["targets"])
    assert "jetson-orin" in result.output and "no (exporter not built yet)" in result.output


def test_unknown_target_names_the_known_ones() -> None:
    with pytest.raises(TargetError, match="unknown target 'pixel'.*x86-cpu"):
        get_target("pixel")


def test_precision_outside_the_target_is_refused_with_the_choices() -> None:
    with pytest.raises(TargetError, match="does not support precision 'bf16'; choose one of fp32, fp16, int8, int8w, int4w"):
        get_target("x86-cpu").check_precision("bf16")


def test_every_target_format_is_unique_per_runtime_pair() -> None:
    names = [t.name for t in list_targets()]
    assert len(names) == len(set(names))


def test_every_quantized_precision_a_buildable_target_lists_is_implemented_by_its_formats_backend() -> None:
    """The catalog promises precisions; the build refuses any its format's quantizer lacks."""
    from edgediff.build import FLOAT_PRECISIONS
    from edgediff.quantize import supported_schemes

    for target in list_targets():
        if target.buildable:
            quantized = set(target.precisions) - set(FLOAT_PRECISIONS)
            assert quantized <= supported_schemes(target.format), (target.name, quantized)
