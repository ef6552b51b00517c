"""``build(model, target, recipe, out)``: export every component for a target, check parity, write a bundle.

Everything that can be checked without work is checked first (target available here, precision
supported, recipe order, output free, sizes), so a mistake costs a second, not a ten-minute export.
"""

from __future__ import annotations

import gc
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgediff import __version__
from edgediff.bundle.atomic import atomic_directory, check_output_free
from edgediff.bundle.manifest import SCHEMA_VERSION, Bundle, file_records, open_bundle, sha256_file, write_manifest
from edgediff.errors import ExportError, ParityError, TargetError
from edgediff.export import ExportRequest, Quantization, get_exporter
from edgediff.export.parity import compare, tolerance_for
from edgediff.models.pipeline_spec import TOKENIZER_FILE, pipeline_spec, sampling_settings
from edgediff.models.types import Model
from edgediff.recipe import Recipe
from edgediff.runtimes.base import SessionOptions, open_session
from edgediff.targets import Target

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


def resolve_settings(model: Model, target: Target, recipe: Recipe) -> dict[str, Any]:
    """The concrete build settings (recipe over model defaults), validated; no heavy work."""
    recipe.validate()
    if not target.available:
        raise TargetError(f"target {target.name!r} cannot be built on this host ({target.availability_reason()}); "
                          "run 'edgediff targets' to see which can")
    precision = recipe.precision or target.default_precision
    target.check_precision(precision)
    settings = sampling_settings(model, recipe) | {"precision": precision}
    quantized = tuple(recipe.options.get("quantize_components", DEFAULT_QUANTIZED_COMPONENTS))
    settings["quantized_components"] = quantized
    if precision not in FLOAT_PRECISIONS:
        from edgediff.quantize import supported_schemes

        if precision not in supported_schemes(target.format):
            raise TargetError(f"the {target.format} quantizer does not implement {precision!r}; "
                              f"choose one of {', '.join(sorted(supported_schemes(target.format)))}")
    return settings


def _calibration_for_build(model: Model, recipe: Recipe, settings: dict[str, Any], progress: Progress) -> Any:
    """Capture calibration data once, when a static (activation-calibrated) scheme is requested."""
    precision = settings["precision"]
    if precision in FLOAT_PRECISIONS:
        return None
    from edgediff.quantize import get_scheme
    from edgediff.quantize.calibration import CalibrationSet, capture_calibration

    scheme = get_scheme(precision)
    samples = int(recipe.options.get("calibration_samples", getattr(scheme, "calibration_samples", 0)))
    if not samples:
        return None
    if recipe.options.get("calibration_file"):
        return CalibrationSet.load(Path(recipe.options["calibration_file"]))
    progress(f"calibration: running the fp32 pipeline to capture {samples} samples across all timesteps")
    sampling = Recipe(height=settings["height"], width=settings["width"], steps=settings["steps"],
                      guidance_scale=settings["guidance_scale"], scheduler=settings["scheduler"])
    # one extra sample per component is held out for the quantized parity check
    return capture_calibration(model, sampling, samples=samples + 1, components=settings["quantized_components"])


def _batch_for(component: str, settings: dict[str, Any]) -> int:
    return settings["denoiser_batch"] if component == "denoiser" else 1


FLOAT_PRECISIONS = ("fp32", "fp16")
# Quantized precisions apply to the denoiser (where the steps' time goes) unless the recipe names
# more: an int8 VAE decoder is the usual source of washed-out images, and the text encoder runs once.
DEFAULT_QUANTIZED_COMPONENTS = ("denoiser",)


def component_precision(component: str, settings: dict[str, Any]) -> str:
    precision = settings["precision"]
    if precision in FLOAT_PRECISIONS or component in settings["quantized_components"]:
        return precision
    return "fp32"


def _quantization_for(name: str, precision: str, calibration: Any) -> tuple[Quantization | None, dict[str, Any] | None]:
    """The exporter's quantization request and the feed held out for the parity check (if any)."""
    if precision in FLOAT_PRECISIONS:
        return None, None
    from edgediff.quantize import get_scheme

    scheme = get_scheme(precision)
    feeds = calibration.feeds.get(name, []) if calibration is not None else []
    held_out = feeds[-1] if len(feeds) > 1 else None
    used = feeds[:-1] if held_out is not None else feeds
    return Quantization(scheme=scheme, calibration=used), held_out


def _export_component(
    name: str,
    model: Model,
    target: Target,
    settings: dict[str, Any],
    bundle_dir: Path,
    allow_mismatch: bool,
    progress: Progress,
    calibration: Any = None,
) -> dict[str, Any]:
    import torch

    started = time.perf_counter()
    precision = component_precision(name, settings)
    progress(f"{name}: building the PyTorch module")
    module = model.build_component(name)
    batch = _batch_for(name, settings)
    h, w = settings["height"], settings["width"]
    specs = module.input_specs(h, w, batch)
    example = module.example_inputs(h, w, batch)
    quantization, held_out = _quantization_for(name, precision, calibration)
    if held_out is not None:  # check a quantized graph on a real input it was not calibrated on
        example = tuple(torch.from_numpy(held_out[s.name]) for s in specs)
    (output_name,) = module.output_names  # every wrapper has exactly one output
    with torch.no_grad():
        reference = module(*example).numpy()
    out_dir = bundle_dir / name
    out_dir.mkdir()
    request = ExportRequest(
        component=name,
        module=module,
        example_inputs=example,
        input_names=tuple(s.name for s in specs),
        output_names=module.output_names,
        precision=precision,
        out_dir=out_dir,
        quantization=quantization,
    )
    progress(f"{name}: exporting to {target.format} ({precision})")
    entry = get_exporter(target.format).export(request)
    del module, request
    gc.collect()

    progress(f"{name}: checking parity on {target.runtime}")
    feeds = {s.name: t.numpy() for s, t in zip(specs, example, strict=True)}
    try:
        session = open_session(target.runtime, entry, SessionOptions(precision=precision))
        actual = session.run(feeds)[output_name]
    except Exception as exc:  # engines raise their own error types; all mean the exported graph does not run
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"{target.runtime} cannot run the exported {name}: {message}; this is an exporter gap for this "
            "architecture -- try another target, and report it with --debug output"
        ) from exc
    del session
    report = compare(reference, actual)
    tolerance = tolerance_for(name, precision)
    passed = tolerance.passes(report)
    if not passed and not allow_mismatch:
        raise ParityError(name, output_name, report, tolerance.describe())

    samples = bundle_dir / "parity" / f"{name}.npz"
    samples.parent.mkdir(exist_ok=True)
    np.savez(samples, **{f"input.{k}": v for k, v in feeds.items()}, **{f"output.{output_name}": reference})
    progress(
        f"{name}: parity max_abs={report.max_abs_err:.2e} rel_l2={report.rel_l2_err:.2e} "
        f"{'ok' if passed else 'MISMATCH (kept: --allow-mismatch)'} ({time.perf_counter() - started:.1f}s)"
    )
    return {
        "name": name,
        "format": target.format,
        "runtime": target.runtime,
        "entry": entry.relative_to(bundle_dir).as_posix(),
        "files": file_records(bundle_dir, out_dir),
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in specs],
        "outputs": [{"name": output_name, "shape": list(reference.shape), "dtype": "float32"}],
        "precision": precision,
        "quantization": None if quantization is None else {
            "scheme": quantization.scheme.to_dict(),
            "calibration_samples": len(quantization.calibration),
            "ignored": list(quantization.ignored),
        },
        "parity": {
            "max_abs_err": report.max_abs_err,
            "rel_l2_err": report.rel_l2_err,
            "cosine": report.cosine,
            "finite": report.finite,
            "passed": passed,
            "tolerance": tolerance.describe(),
            "samples": samples.relative_to(bundle_dir).as_posix(),
            "samples_sha256": sha256_file(samples),
        },
    }


def build(
    model: Model,
    target: Target,
    recipe: Recipe,
    out: Path,
    *,
    force: bool = False,
    progress: Progress = _silent,
) -> Bundle:
    settings = resolve_settings(model, target, recipe)
    check_output_free(out, force)
    started = time.perf_counter()
    calibration = _calibration_for_build(model, recipe, settings, progress)
    with atomic_directory(out, force=force) as tmp:
        components = [
            _export_component(name, model, target, settings, tmp, recipe.allow_mismatch, progress, calibration)
            for name in settings["components"]
        ]
        if model.tokenizer_json is not None:
            (tmp / TOKENIZER_FILE).parent.mkdir()
            (tmp / TOKENIZER_FILE).write_text(model.tokenizer_json)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "target": {"name": target.name, "format": target.format, "runtime": target.runtime, "device": target.device},
            "precision": settings["precision"],
            "parity_passed": all(c["parity"]["passed"] for c in components),
            "components": components,
            "pipeline": pipeline_spec(model, settings),
            "calibration": None if calibration is None else calibration.meta,
            "provenance": {
                "source": model.source,
                "source_hash": model.source_hash,
                "edgediff_version": __version__,
                "recipe": recipe.to_json(),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "build_seconds": round(time.perf_counter() - started, 1),
                "build_host": {"machine": platform.machine(), "python": platform.python_version()},
            },
        }
        write_manifest(tmp, json.loads(json.dumps(manifest)))
    progress(f"bundle written to {out}")
    return open_bundle(out)
