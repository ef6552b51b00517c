"""The quantized denoiser's part of a build: its fp32 reference, the quality probe, the search, the report.

``build`` makes one ``QuantizedBuild`` per bundle. The fp32 export of the denoiser and the teacher's
images are expensive (an export and a batch of full generations), so each is made at most once and
shared by the fallback search and the manifest's quality report.

The search measures trials with the teacher's PyTorch text encoder and decoder around each trial's
denoiser; the report measures the finished bundle, with its own exported components. Rounding can
flip a borderline prompt between the two, so the target is confirmed on the bundle itself
(``confirm_on_bundle``): a bundle that misses it is rebuilt with the next fallback size of the same
ranking, and a build that runs out of allowed layers fails instead of shipping the miss.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from edgediff.build import Progress, _export_and_open, _Prepared, sampling_recipe, screening_session, screens_trials
from edgediff.build_quality import (
    SENSITIVITY_FEEDS,
    FallbackChoice,
    QualityTargetError,
    choose_fallback_layers,
    describe_measured,
    quality_report,
    size_bytes,
    spread,
    unmet_on_bundle_message,
)
from edgediff.bundle.manifest import file_records
from edgediff.models.types import Model
from edgediff.quantize.quality import QualityProbe
from edgediff.runtimes.base import SessionOptions, open_session
from edgediff.targets import Target


class FloatReference:
    """The fp32 export of a quantized component: the teacher's denoiser for the quality probe (the
    fp32 bundle's images, at runtime speed) and the size/latency reference."""

    def __init__(self, prepared: _Prepared, target: Target, progress: Progress) -> None:
        progress(f"{prepared.name}: exporting an fp32 reference to measure the quantized one against")
        self._dir = tempfile.TemporaryDirectory(prefix="edgediff-fp32-")
        root = Path(self._dir.name)
        _, self.session = _export_and_open(prepared, target, prepared.request(root, float_copy=True))
        self.bytes = size_bytes(file_records(root, root))

    def close(self) -> None:
        self.session = None
        self._dir.cleanup()


class QuantizedBuild:
    """Per-build state of a quantized denoiser; ``close`` removes the fp32 reference export."""

    def __init__(self, model: Model, target: Target, settings: dict[str, Any], progress: Progress) -> None:
        self.model = model
        self.target = target
        self.settings = settings
        self.progress = progress
        self.denoiser: _Prepared | None = None  # set once the quantized denoiser is exported
        self._reference: FloatReference | None = None
        self._probe: QualityProbe | None = None
        self._choice: FallbackChoice | None = None  # the search's, widened when the bundle misses the target
        self._bundle_trials: list[dict[str, Any]] = []  # the target measured on each bundle written

    def reference(self, prepared: _Prepared) -> FloatReference:
        if self._reference is None:
            self._reference = FloatReference(prepared, self.target, self.progress)
        return self._reference

    def probe(self, prepared: _Prepared) -> QualityProbe:
        """Teacher = the model's fp32 text encoder and VAE in PyTorch, with the fp32 denoiser export."""
        if self._probe is None:
            from edgediff.models.torch_pipeline import torch_pipeline

            reference = self.reference(prepared)
            quality = self.settings["quality_target"]
            self.progress(f"quality: generating {quality.prompts} fp32 teacher image(s) to measure the quantized "
                          "bundle against")
            teacher = torch_pipeline(self.model, sampling_recipe(self.settings),
                                     sessions={"denoiser": reference.session}, device=self.target.reference_device)
            self._probe = QualityProbe(teacher, quality.prompts, quality.seed)
        return self._probe

    def search_fallback(self, prepared: _Prepared, calibration: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
        """Layers to keep in float so the quantized ``prepared`` meets the recipe's quality target."""
        import torch

        quality = self.settings["quality_target"]
        always = self.settings["keep_float"]
        if self._choice is not None:  # a rebuild after the bundle missed: the widened choice, no new search
            return self._with_always(self._choice.ignored), self.search_json()
        probe = self.probe(prepared)
        feeds = calibration.feeds.get(prepared.name, []) if calibration is not None else []
        inputs = [tuple(torch.from_numpy(f[s.name]) for s in prepared.specs) for f in spread(feeds[:-1] or feeds, SENSITIVITY_FEEDS)]

        def request(ignored: tuple[str, ...], out_dir: Path) -> Any:
            return prepared.request(out_dir, ignored=(*always, *(n for n in ignored if n not in always)))

        def export_trial(ignored: tuple[str, ...], out_dir: Path) -> Any:
            return _export_and_open(prepared, self.target, request(ignored, out_dir))[1]

        def screen_trial(ignored: tuple[str, ...], out_dir: Path) -> Any:
            return screening_session(self.target, request(ignored, out_dir))

        assert prepared.quantization is not None
        self._choice = choose_fallback_layers(prepared.module, inputs or [prepared.example],
                                              prepared.quantization.scheme, probe, quality, export_trial,
                                              self.progress, prepared.name,
                                              screen=screen_trial if screens_trials(self.target) else None)
        return self._with_always(self._choice.ignored), self.search_json()

    def _with_always(self, ignored: tuple[str, ...]) -> tuple[str, ...]:
        always = self.settings["keep_float"]
        return (*always, *(n for n in ignored if n not in always))

    @property
    def searched(self) -> bool:
        """Whether a fallback search chose this build's float layers."""
        return self._choice is not None

    def search_json(self) -> dict[str, Any]:
        """The manifest's ``fallback_search``: the search's trials, then each bundle measured."""
        assert self._choice is not None
        record = self._choice.to_json(self.settings["quality_target"])
        record["trials"] += self._bundle_trials
        record["confirmed_on_bundle"] = bool(self._bundle_trials) and self._bundle_trials[-1]["margin"] >= 0
        return record

    def confirm_on_bundle(self, report: dict[str, Any] | None) -> bool:
        """Whether the written bundle meets the quality target; when it misses, widen the fallback to the
        search's next size (the caller rebuilds the denoiser) or raise when no allowed size is left."""
        quality = self.settings["quality_target"]
        if self._choice is None or report is None:
            return True
        measured = report["images"]
        margin = quality.margin(measured)
        kept = len(self._choice.ignored)
        self._bundle_trials.append({"kept_in_float": kept, "on": "the written bundle", "margin": margin,
                                    **{k: measured[k] for k in ("psnr", "ssim", "adherence", "adherence_drop", "fd")
                                       if k in measured}})
        if margin >= 0:
            return True
        wider = self._choice.widened()
        if wider is None:
            raise QualityTargetError(unmet_on_bundle_message(self._choice, quality, measured))
        self.progress(f"quality: the written bundle misses {quality.describe()} ({describe_measured(measured)}) "
                      f"with {kept} layer(s) in float, though its search trial met it; rebuilding the denoiser "
                      f"with {len(wider.ignored)}")
        self._choice = wider
        return False

    def report(self, bundle_dir: Path, components: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The manifest's ``quality`` report for the quantized denoiser (None when there is none to report)."""
        from edgediff.runtimes.pipeline import BundlePipeline

        prepared = self.denoiser
        if prepared is None or not self.settings["quality_report"]:
            return None
        reference = self.reference(prepared)
        probe = self.probe(prepared)
        record = next(c for c in components if c["name"] == "denoiser")
        bundle_pipe = BundlePipeline(bundle_dir, verify=False)  # quantized text encoder/VAE count too, if any
        whole = not bundle_pipe.missing_components()
        session = bundle_pipe.sessions.get("denoiser") or open_session(
            self.target.runtime, bundle_dir / record["entry"], SessionOptions(precision=prepared.precision))
        self.progress("quality: measuring the quantized bundle's images and per-step latency against fp32")
        report = quality_report(
            probe, bundle_pipe if whole else session, whole_pipeline=whole, quantized_session=session,
            float_session=reference.session, feeds=prepared.feeds, quantized_bytes=size_bytes(record["files"]),
            float_bytes=reference.bytes,
        )
        images = report["images"]
        self.progress(f"quality: PSNR {images['psnr']:.1f} dB vs fp32"
                      + (f", adherence {images['adherence']:.3f} (fp32 {images['teacher_adherence']:.3f})"
                         if "adherence" in images else "")
                      + f", {report['size']['compression']:.1f}x smaller, "
                      + f"{report['speed'].get('speedup', float('nan')):.2f}x fp32 speed")
        return report

    def close(self) -> None:
        if self._reference is not None:
            self._reference.close()
