"""The quantized denoiser's part of a build: its fp32 reference, the quality probe, the search, the report.

``build`` makes one ``QuantizedBuild`` per bundle. The fp32 export of the denoiser and the teacher's
images are expensive (an export and a batch of full generations), so each is made at most once and
shared by the fallback search and the manifest's quality report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from edgediff.build import Progress, _export_and_open, _Prepared, sampling_recipe, screening_session, screens_trials
from edgediff.build_quality import SENSITIVITY_FEEDS, choose_fallback_layers, quality_report, size_bytes, spread
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
                                     sessions={"denoiser": reference.session})
            self._probe = QualityProbe(teacher, quality.prompts, quality.seed)
        return self._probe

    def search_fallback(self, prepared: _Prepared, calibration: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
        """Layers to keep in float so the quantized ``prepared`` meets the recipe's quality target."""
        import torch

        quality = self.settings["quality_target"]
        probe = self.probe(prepared)
        feeds = calibration.feeds.get(prepared.name, []) if calibration is not None else []
        inputs = [tuple(torch.from_numpy(f[s.name]) for s in prepared.specs) for f in spread(feeds[:-1] or feeds, SENSITIVITY_FEEDS)]
        always = self.settings["keep_float"]

        def request(ignored: tuple[str, ...], out_dir: Path) -> Any:
            return prepared.request(out_dir, ignored=(*always, *(n for n in ignored if n not in always)))

        def export_trial(ignored: tuple[str, ...], out_dir: Path) -> Any:
            return _export_and_open(prepared, self.target, request(ignored, out_dir))[1]

        def screen_trial(ignored: tuple[str, ...], out_dir: Path) -> Any:
            return screening_session(self.target, request(ignored, out_dir))

        assert prepared.quantization is not None
        choice = choose_fallback_layers(prepared.module, inputs or [prepared.example], prepared.quantization.scheme,
                                        probe, quality, export_trial, self.progress, prepared.name,
                                        screen=screen_trial if screens_trials(self.target) else None)
        ignored = (*always, *(n for n in choice.ignored if n not in always))
        return ignored, choice.to_json(quality)

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
