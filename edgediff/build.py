"""``build(model, target, recipe, out)``: export every component for a target, check parity, write a bundle.

Everything that can be checked without work is checked first (target available here, precision
supported, recipe order, output free, sizes), so a mistake costs a second, not a ten-minute export.
"""

from __future__ import annotations

import gc
import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgediff import __version__
from edgediff.bundle.atomic import atomic_directory, check_output_free
from edgediff.bundle.manifest import SCHEMA_VERSION, Bundle, file_records, open_bundle, sha256_file, write_manifest
from edgediff.cache import CachePlan, cache_plan_from_options
from edgediff.errors import ExportError, ParityError, TargetError
from edgediff.export import ExportRequest, Quantization, get_exporter
from edgediff.export.parity import compare, tolerance_for
from edgediff.models.pipeline_spec import TOKENIZER_FILE, pipeline_spec, sampling_settings
from edgediff.models.types import Model
from edgediff.recipe import Recipe
from edgediff.runtimes.base import SessionOptions, open_session
from edgediff.targets import Target

if TYPE_CHECKING:
    from edgediff.build_quantized import QuantizedBuild

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


def model_for_recipe(model: Model, recipe: Recipe) -> Model:
    """The model as the recipe builds it: its denoiser swapped for a guidance-distilled one (``denoiser``),
    its VAE decoder for a distilled one (``decoder``), its denoiser split in two for caching
    (``cache_interval``, after the swap: the split reads whichever denoiser is built). Cheap: factories
    change, nothing is built."""
    if recipe.options.get("denoiser"):
        from edgediff.distill.guidance_swap import student_folder, with_guided_denoiser

        model = with_guided_denoiser(model, student_folder(model, str(recipe.options["denoiser"])))
    if recipe.options.get("decoder"):
        from edgediff.distill.decoder_swap import decoder_folder, with_tiny_decoder

        model = with_tiny_decoder(model, decoder_folder(model, str(recipe.options["decoder"])))
    if cache_plan_from_options(recipe.options) is not None:
        from edgediff.cache.splits import with_deep_cache

        model = with_deep_cache(model)
    return model


def resolve_settings(model: Model, target: Target, recipe: Recipe) -> dict[str, Any]:
    """The concrete build settings (recipe over model defaults), validated; no heavy work.

    ``model`` is the recipe's model (``model_for_recipe``): its components are the ones built.
    """
    recipe.validate()
    if not target.available:
        raise TargetError(f"target {target.name!r} cannot be built on this host ({target.availability_reason()}); "
                          "run 'edgediff targets' to see which can")
    precision = recipe.precision or target.default_precision
    target.check_precision(precision)
    plan = cache_plan_from_options(recipe.options)
    settings = sampling_settings(model, recipe) | {"precision": precision}
    settings["cache"] = None if plan is None else plan.to_json()
    if plan is not None:
        _check_cache_settings(plan, settings)
    settings["decoder"] = recipe.options.get("decoder")
    settings["guided"] = _guided_settings(model, recipe, settings)
    for option in ("decoder", "denoiser"):
        if recipe.options.get(option) and precision not in FLOAT_PRECISIONS:
            raise TargetError(f"--{option} builds fp32/fp16 bundles; a quantized build measures its denoiser against "
                              f"the same model in fp32, not against the source's own {option}: drop --precision "
                              f"{precision} or --{option}")
    quantized = tuple(recipe.options.get("quantize_components", DEFAULT_QUANTIZED_COMPONENTS))
    settings["quantized_components"] = quantized
    settings["keep_float"] = tuple(recipe.options.get("keep_float", ()))
    settings["quality_target"] = None
    settings["quality_report"] = bool(recipe.options.get("quality_report", True))
    if precision not in FLOAT_PRECISIONS:
        from edgediff.quantize import check_scheme_options, supported_schemes
        from edgediff.quantize.quality import QualityTarget, check_target_measurable

        if precision not in supported_schemes(target.format):
            raise TargetError(f"the {target.format} quantizer does not implement {precision!r}; "
                              f"choose one of {', '.join(sorted(supported_schemes(target.format)))}")
        quality = QualityTarget.from_options(recipe.options)
        if quality.requested:
            check_target_measurable(quality, pipeline_spec(model, settings))
        settings["quality_target"] = quality
        settings["scheme_options"] = _scheme_options(recipe.options)
        # an unknown or bad option, or one the target's backend cannot build, fails here, before any work
        check_scheme_options(target.format, scheme_for(precision, settings))
    elif any(k in recipe.options for k in ("max_quality_drop", "min_psnr", "keep_float", "scheme")):
        raise TargetError(f"quality targets, --keep-float and scheme options apply to quantized precisions, not "
                          f"{precision}; add --precision int8 (or int8w, int4w)")
    return settings


def _guided_settings(model: Model, recipe: Recipe, settings: dict[str, Any]) -> dict[str, Any] | None:
    """A guidance-distilled denoiser's record; the sampling then runs without guidance, on a batch of one."""
    if not recipe.options.get("denoiser"):
        return None
    from edgediff.distill.guidance_swap import guided_settings, student_folder

    record = guided_settings(student_folder(model, str(recipe.options["denoiser"])), recipe.guidance_scale)
    settings["guidance_scale"], settings["denoiser_batch"] = 1.0, 1
    return record


def _scheme_options(options: dict[str, Any]) -> dict[str, Any]:
    """The recipe's ``[options.scheme]`` table: fields of the precision's scheme (``group_size = 32``,
    ``conv_bits = 8`` for int4w; ``calibration_samples`` and ``hybrid`` for int8)."""
    table = options.get("scheme", {})
    if not isinstance(table, dict):
        raise TargetError(f"recipe option 'scheme' must be a table of scheme fields, e.g. [options.scheme] "
                          f"conv_bits = 8; got {table!r}")
    return dict(table)


def scheme_for(precision: str, settings: dict[str, Any]) -> Any:
    """The quantization scheme a build applies: ``precision``'s, with the recipe's scheme options."""
    from edgediff.quantize import get_scheme

    return get_scheme(precision, **settings.get("scheme_options", {}))


def _check_cache_settings(plan: CachePlan, settings: dict[str, Any]) -> None:
    if settings["precision"] not in FLOAT_PRECISIONS:
        raise TargetError(f"--cache-interval builds fp32/fp16 bundles; quantizing the shallow denoiser needs calibration "
                          f"on cached features, which edgediff does not capture yet: drop --precision "
                          f"{settings['precision']} or --cache-interval")
    components = settings["components"]
    if "denoiser" in components and plan.shallow_component not in components:  # --components named only the full half
        components.insert(components.index("denoiser") + 1, plan.shallow_component)
    if plan.shallow_component in components and "denoiser" not in components:
        raise TargetError(f"{plan.shallow_component} runs on the full denoiser's features; add denoiser to --components")


def _partial(settings: dict[str, Any], model: Model) -> bool:
    """Whether the build leaves out components a whole generation needs (no image-level report then)."""
    return set(settings["components"]) != set(model.component_names)


def _calibration_for_build(model: Model, target: Target, recipe: Recipe, settings: dict[str, Any],
                           progress: Progress) -> Any:
    """Capture calibration data once, when the target's format quantizes activations with static ranges
    for the requested scheme (int8 everywhere; int4w's convolutions on XNNPACK)."""
    precision = settings["precision"]
    if precision in FLOAT_PRECISIONS:
        return None
    from edgediff.quantize.calibration import CalibrationSet, capture_calibration

    samples = calibration_samples_for(scheme_for(precision, settings), target, recipe)
    if settings["quality_target"].requested:  # the sensitivity ranking runs on real feeds
        from edgediff.build_quality import SENSITIVITY_FEEDS

        samples = max(samples, SENSITIVITY_FEEDS)
    if not samples:
        return None
    if recipe.options.get("calibration_file"):
        return CalibrationSet.load(Path(recipe.options["calibration_file"]))
    progress(f"calibration: running the fp32 pipeline ({target.reference_device}) to capture {samples} samples "
             "across all timesteps")
    sampling = sampling_recipe(settings)
    # one extra sample per component is held out for the quantized parity check
    return capture_calibration(model, sampling, samples=samples + 1, components=settings["quantized_components"],
                               device=target.reference_device)


def calibration_samples_for(scheme: Any, target: Target, recipe: Recipe) -> int:
    """How many feeds ``scheme`` calibrates on when ``target``'s format builds it; 0 where it keeps
    activations float (weight-only schemes, and int4w everywhere but XNNPACK)."""
    from edgediff.export.base import calibrated_schemes, get_exporter

    if scheme.name not in calibrated_schemes(get_exporter(target.format)):
        return 0
    return int(recipe.options.get("calibration_samples", scheme.calibration_samples))


def sampling_recipe(settings: dict[str, Any]) -> Recipe:
    """The recipe that samples as the bundle will (size, steps, guidance, scheduler): for runs of the fp32 model."""
    return Recipe(height=settings["height"], width=settings["width"], steps=settings["steps"],
                  guidance_scale=settings["guidance_scale"], scheduler=settings["scheduler"])


def _batch_for(component: str, settings: dict[str, Any]) -> int:
    return settings["denoiser_batch"] if component in ("denoiser", CachePlan.shallow_component) else 1


FLOAT_PRECISIONS = ("fp32", "fp16", "bf16")
# Quantized precisions apply to the denoiser (where the steps' time goes) unless the recipe names
# more: an int8 VAE decoder is the usual source of washed-out images, and the text encoder runs once.
DEFAULT_QUANTIZED_COMPONENTS = ("denoiser",)


def component_precision(component: str, settings: dict[str, Any]) -> str:
    precision = settings["precision"]
    if precision in FLOAT_PRECISIONS or component in settings["quantized_components"]:
        return precision
    return "fp32"


def _quantization_for(
    name: str, precision: str, calibration: Any, settings: dict[str, Any], ignored: tuple[str, ...] = ()
) -> tuple[Quantization | None, dict[str, Any] | None]:
    """The exporter's quantization request and the feed held out for the parity check (if any)."""
    if precision in FLOAT_PRECISIONS:
        return None, None
    scheme = scheme_for(precision, settings)
    feeds = calibration.feeds.get(name, []) if calibration is not None else []
    held_out = feeds[-1] if len(feeds) > 1 else None
    used = feeds[:-1] if held_out is not None else feeds
    return Quantization(scheme=scheme, calibration=used, ignored=ignored), held_out


@dataclass
class _Prepared:
    """One component ready to export: its module, traced inputs and fp32 reference output."""

    name: str
    precision: str
    module: Any
    specs: Any
    example: tuple[Any, ...]
    quantization: Quantization | None
    references: dict[str, np.ndarray]  # output name -> fp32 PyTorch output

    @property
    def reference(self) -> np.ndarray:
        """The first output (``noise_pred`` for denoisers): what quantization error is measured on."""
        return self.references[self.module.output_names[0]]

    def request(self, out_dir: Path, *, ignored: tuple[str, ...] | None = None, float_copy: bool = False) -> ExportRequest:
        quantization = self.quantization
        if quantization is not None and ignored is not None:
            quantization = replace(quantization, ignored=ignored)
        return ExportRequest(
            component=self.name,
            module=self.module,
            example_inputs=self.example,
            input_names=tuple(s.name for s in self.specs),
            output_names=self.module.output_names,
            precision="fp32" if float_copy else self.precision,
            out_dir=out_dir,
            quantization=None if float_copy else quantization,
        )

    @property
    def feeds(self) -> dict[str, np.ndarray]:
        return {s.name: t.numpy() for s, t in zip(self.specs, self.example, strict=True)}


def _prepare(name: str, model: Model, settings: dict[str, Any], calibration: Any) -> _Prepared:
    import torch

    precision = component_precision(name, settings)
    module = model.build_component(name)
    batch = _batch_for(name, settings)
    h, w = settings["height"], settings["width"]
    specs = module.input_specs(h, w, batch)
    example = module.example_inputs(h, w, batch)
    ignored = settings["keep_float"] if name in settings["quantized_components"] else ()
    quantization, held_out = _quantization_for(name, precision, calibration, settings, ignored)
    if held_out is not None:  # check a quantized graph on a real input it was not calibrated on
        example = tuple(torch.from_numpy(held_out[s.name]) for s in specs)
    with torch.no_grad():
        outputs = module(*example)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    references = {n: t.numpy() for n, t in zip(module.output_names, outputs, strict=True)}
    return _Prepared(name, precision, module, specs, example, quantization, references)


def _export_and_open(prepared: _Prepared, target: Target, request: ExportRequest) -> tuple[Path, Any]:
    """Export ``request`` and open it on the target's runtime; a graph that does not run is an ExportError."""
    entry = get_exporter(target.format).export(request)
    try:
        session = open_session(target.runtime, entry, SessionOptions(precision=request.precision))
    except Exception as exc:  # engines raise their own error types; all mean the exported graph does not run
        raise _runtime_failure(target, prepared.name, exc) from exc
    return entry, session


def screens_trials(target: Target) -> bool:
    """Whether the target's exporter can run a search trial cheaply (``trial_session``: no files written)."""
    return hasattr(get_exporter(target.format), "trial_session")


def screening_session(target: Target, request: ExportRequest) -> Any:
    """A session for screening one fallback-search trial; only for targets where ``screens_trials``."""
    return get_exporter(target.format).trial_session(request)


def _runtime_failure(target: Target, name: str, exc: Exception) -> ExportError:
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return ExportError(
        f"{target.runtime} cannot run the exported {name}: {message}; this is an exporter gap for this "
        "architecture -- try another target, and report it with --debug output"
    )


def _export_component(
    name: str,
    model: Model,
    target: Target,
    settings: dict[str, Any],
    bundle_dir: Path,
    allow_mismatch: bool,
    progress: Progress,
    calibration: Any,
    quantized: QuantizedBuild | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    progress(f"{name}: building the PyTorch module")
    prepared = _prepare(name, model, settings, calibration)
    search = None
    ignored = prepared.quantization.ignored if prepared.quantization is not None else ()
    if prepared.quantization is not None and name == "denoiser" and settings["quality_target"].requested:
        assert quantized is not None
        ignored, search = quantized.search_fallback(prepared, calibration)
    out_dir = bundle_dir / name
    out_dir.mkdir()
    request = prepared.request(out_dir, ignored=ignored)
    progress(f"{name}: exporting to {target.format} ({prepared.precision})")
    progress(f"{name}: checking parity on {target.runtime}")
    entry, session = _export_and_open(prepared, target, request)
    feeds = prepared.feeds
    try:
        actual = session.run(feeds)
    except Exception as exc:  # engines raise their own error types; all mean the exported graph does not run
        raise _runtime_failure(target, name, exc) from exc
    del session, request
    gc.collect()
    tolerances = {out: tolerance_for(name, prepared.precision, out) for out in prepared.references}
    # Every output is checked; the manifest keeps the worst (a cached denoiser's features must match too).
    reports = {out: compare(ref, actual[out]) for out, ref in prepared.references.items()}
    output_name, report = max(reports.items(), key=lambda item: item[1].rel_l2_err)
    tolerance = tolerances[output_name]
    passed = all(tolerances[out].passes(r) for out, r in reports.items())
    if not passed and not allow_mismatch:
        failing = next(out for out, r in reports.items() if not tolerances[out].passes(r))
        raise ParityError(name, failing, reports[failing], tolerances[failing].describe())

    samples = bundle_dir / "parity" / f"{name}.npz"
    samples.parent.mkdir(exist_ok=True)
    np.savez(samples, **{f"input.{k}": v for k, v in feeds.items()},
             **{f"output.{out}": ref for out, ref in prepared.references.items()})
    progress(
        f"{name}: parity max_abs={report.max_abs_err:.2e} rel_l2={report.rel_l2_err:.2e} "
        f"{'ok' if passed else 'MISMATCH (kept: --allow-mismatch)'} ({time.perf_counter() - started:.1f}s)"
    )
    quantization = prepared.quantization
    if quantization is not None and name == "denoiser" and quantized is not None:
        quantized.denoiser = prepared
    return {
        "name": name,
        "format": target.format,
        "runtime": target.runtime,
        "entry": entry.relative_to(bundle_dir).as_posix(),
        "files": file_records(bundle_dir, out_dir),
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in prepared.specs],
        "outputs": [{"name": out, "shape": list(ref.shape), "dtype": "float32"} for out, ref in prepared.references.items()],
        "precision": prepared.precision,
        "quantization": None if quantization is None else {
            "scheme": quantization.scheme.to_dict(),
            "calibration_samples": len(quantization.calibration),
            "kept_in_float": list(ignored),
            "fallback_search": search,
        },
        "parity": {
            "output": output_name,
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
    source_model = model
    model = model_for_recipe(model, recipe)
    settings = resolve_settings(model, target, recipe)
    check_output_free(out, force)
    started = time.perf_counter()
    calibration = _calibration_for_build(model, target, recipe, settings, progress)
    quantized = None
    if settings["precision"] not in FLOAT_PRECISIONS:
        from edgediff.build_quantized import QuantizedBuild

        quantized = QuantizedBuild(model, target, settings, progress)
    try:
        bundle = _build_into(model, source_model, target, recipe, settings, out, force, calibration, quantized, started,
                             progress)
    finally:
        if quantized is not None:
            quantized.close()
    progress(f"bundle written to {out}")
    return bundle


def _build_into(
    model: Model, source_model: Model, target: Target, recipe: Recipe, settings: dict[str, Any], out: Path, force: bool,
    calibration: Any, quantized: QuantizedBuild | None, started: float, progress: Progress,
) -> Bundle:
    with atomic_directory(out, force=force) as tmp:
        components = [
            _export_component(name, model, target, settings, tmp, recipe.allow_mismatch, progress, calibration,
                              quantized)
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
        quality = quantized.report(tmp, components) if quantized is not None else None
        while quantized is not None and not quantized.confirm_on_bundle(quality):
            index = settings["components"].index("denoiser")
            shutil.rmtree(tmp / "denoiser")
            components[index] = _export_component("denoiser", model, target, settings, tmp, recipe.allow_mismatch,
                                                  progress, calibration, quantized)
            manifest["parity_passed"] = all(c["parity"]["passed"] for c in components)
            write_manifest(tmp, json.loads(json.dumps(manifest)))
            quality = quantized.report(tmp, components)
        if quantized is not None and quantized.searched:
            denoiser = next(c for c in components if c["name"] == "denoiser")
            denoiser["quantization"]["fallback_search"] = quantized.search_json()
        substituted = settings["cache"] is not None or settings["decoder"] or settings["guided"]
        if substituted and settings["quality_report"] and not _partial(settings, model):
            progress("quality: measuring the bundle's images and speed against the source's graphs")
            from edgediff.build_report import report_for_build

            quality = report_for_build(tmp, source_model, settings, recipe.options.get("quality_prompts"))
        if quality is not None:
            manifest["quality"] = quality
            manifest["provenance"]["build_seconds"] = round(time.perf_counter() - started, 1)
            write_manifest(tmp, json.loads(json.dumps(manifest)))
    return open_bundle(out)

