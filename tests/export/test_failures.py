"""A failed export leaves nothing at -o, and parity failures stop the build unless allowed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgediff.build import build
from edgediff.errors import BundleError, ExportError, ParityError
from edgediff.recipe import Recipe
from edgediff.targets import get_target


def _no_partial_dirs(parent: Path) -> bool:
    return not any(p.name.startswith(".") and "partial" in p.name for p in parent.iterdir())


def test_exporter_failure_leaves_no_output(tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgediff.export.onnx import OnnxExporter

    def broken(self, request):  # noqa: ANN001
        raise ExportError("unsupported operator aten::foo")

    monkeypatch.setattr(OnnxExporter, "export", broken)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match="aten::foo"):
        build(tiny_model, get_target("x86-cpu"), Recipe(components=("vae_decoder",)), out)
    assert not out.exists() and _no_partial_dirs(tmp_path)


def test_parity_failure_stops_the_build_and_allow_mismatch_keeps_it_flagged(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgediff.runtimes import onnxruntime as ort_runtime

    real_run = ort_runtime.OnnxRuntimeSession.run

    def perturbed(self, feeds):  # noqa: ANN001
        return {k: v + np.float32(0.01) for k, v in real_run(self, feeds).items()}

    monkeypatch.setattr(ort_runtime.OnnxRuntimeSession, "run", perturbed)
    out = tmp_path / "bundle"
    with pytest.raises(ParityError, match="vae_decoder.image.*--allow-mismatch"):
        build(tiny_model, get_target("x86-cpu"), Recipe(components=("vae_decoder",)), out)
    assert not out.exists() and _no_partial_dirs(tmp_path)

    bundle = build(tiny_model, get_target("x86-cpu"), Recipe(components=("vae_decoder",), allow_mismatch=True), out)
    assert bundle.manifest["parity_passed"] is False
    assert bundle.components["vae_decoder"]["parity"]["passed"] is False


def test_existing_output_is_refused_before_any_work(tiny_model, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="already exists.*--force"):
        build(tiny_model, get_target("x86-cpu"), Recipe(), out)
    assert (out / "keep.txt").read_text() == "mine"
