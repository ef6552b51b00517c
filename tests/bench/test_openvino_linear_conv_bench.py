"""tools.bench.openvino_linear_conv: int8 IRs written on one host are the ones timed on another."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from tools.bench import openvino_linear_conv as bench

pytest.importorskip("openvino")


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"tokens": 8, "channels": 16, "layers": 1, "rounds": 1, "per_round": 1,
                                 "threads": 1, "save_int8": None, "int8_from": None, **kw})


def _outputs(models: dict[str, object], x: np.ndarray) -> dict[str, np.ndarray]:
    import openvino as ov

    core = ov.Core()
    return {form: core.compile_model(m, "CPU").create_infer_request().infer([x])[0] for form, m in models.items()}


def test_saved_int8_irs_are_read_back_instead_of_quantized_again(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    x = np.random.default_rng(2).standard_normal((1, 8, 16)).astype(np.float32)
    written = bench._models(_args(save_int8=tmp_path / "ir"))
    assert sorted(p.name for p in (tmp_path / "ir").glob("*.xml")) == ["conv1x1-int8.xml", "linear-int8.xml"]

    def no_nncf(*_: object, **__: object) -> None:
        raise AssertionError("quantized again instead of reading the carried IR")

    monkeypatch.setattr("edgediff.quantize.nncf_openvino.quantize_openvino", no_nncf)
    read = bench._models(_args(int8_from=tmp_path / "ir"))
    before, after = _outputs(written, x), _outputs(read, x)
    for form in ("linear-int8", "conv1x1-int8"):
        np.testing.assert_allclose(after[form], before[form], rtol=1e-5, atol=1e-5)


def test_a_folder_without_the_irs_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"has no linear-int8.xml; write the IRs with --save-int8"):
        bench._models(_args(int8_from=tmp_path))
