"""Every runnable target, tested the same way: export the tiny model, check the manifest, re-validate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgediff.bundle import SCHEMA_VERSION, open_bundle
from edgediff.bundle.validate import validate_bundle
from edgediff.errors import BundleError


def test_bundle_records_parity_within_tolerance_for_every_component(tiny_bundle: Path) -> None:
    bundle = open_bundle(tiny_bundle)
    assert set(bundle.components) == {"text_encoder", "denoiser", "vae_decoder"}
    for component in bundle.components.values():
        parity = component["parity"]
        assert parity["passed"] and parity["finite"]
        assert parity["max_abs_err"] < 1e-4
        assert parity["cosine"] > 0.99999


def test_manifest_has_the_documented_keys(tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert {"target", "components", "pipeline", "provenance"} <= set(manifest)
    for c in manifest["components"]:
        assert {"name", "files", "inputs", "outputs", "precision", "parity"} <= set(c)
        assert all(len(f["sha256"]) == 64 for f in c["files"])
    p = manifest["pipeline"]
    for key in ("scheduler", "timesteps", "sigmas", "steps", "guidance_scale", "height", "width",
                "latent_channels", "vae_scale_factor", "tokenizer"):
        assert key in p
    assert len(p["timesteps"]) == p["steps"] == 4
    assert manifest["provenance"]["source"] == "config:tiny-sd"
    assert len(manifest["provenance"]["source_hash"]) == 64
    assert manifest["provenance"]["recipe"]["passes"] == ["export"]
    denoiser = next(c for c in manifest["components"] if c["name"] == "denoiser")
    assert denoiser["inputs"][0] == {"name": "sample", "shape": [2, 4, 16, 16], "dtype": "float32"}


def test_validate_reruns_parity_samples_on_the_runtime(tiny_bundle: Path) -> None:
    report = validate_bundle(tiny_bundle)
    assert all(r["passed"] for r in report["components"].values())


def test_validate_detects_a_modified_component_file(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    entry = open_bundle(copy).entry("vae_decoder")
    entry.write_bytes(entry.read_bytes() + b"\0")
    with pytest.raises(BundleError, match="does not match its sha256"):
        validate_bundle(copy)


def _declared_input_shapes(bundle_dir: Path, component: str) -> dict[str, list[int | None]]:
    """Input shapes as the component's own file declares them (None: a dynamic dimension)."""
    entry = open_bundle(bundle_dir).entry(component)
    if entry.suffix == ".xml":
        import openvino as ov

        model = ov.Core().read_model(str(entry))
        return {p.get_any_name(): [d.get_length() if d.is_static else None for d in p.get_partial_shape()]
                for p in model.inputs}
    if entry.suffix == ".onnx":
        import onnx

        graph = onnx.load(str(entry), load_external_data=False).graph
        return {i.name: [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
                for i in graph.input}
    pytest.skip(f"{entry.suffix} programs are static by construction")


def test_component_files_declare_the_manifest_shapes_statically(tiny_bundle: Path) -> None:
    # A bundle serves one resolution and batch; static shapes let the runtime plan memory and kernels once.
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    for component in manifest["components"]:
        declared = _declared_input_shapes(tiny_bundle, component["name"])
        for spec in component["inputs"]:
            assert declared[spec["name"]] == spec["shape"], (component["name"], spec["name"])


def test_onnx_bundles_ship_no_exporter_debug_metadata(ort_bundle: Path) -> None:
    # Stack traces would ship the build machine's paths and weigh ~1.6 MB on the zoo UNet.
    import onnx

    for name in ("text_encoder", "denoiser", "vae_decoder"):
        entry = open_bundle(ort_bundle).entry(name)
        model = onnx.load(str(entry), load_external_data=False)
        assert not [n.name for n in model.graph.node if n.metadata_props], name
        assert b"stack_trace" not in entry.read_bytes(), name
