"""The exporter interface and registry."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgediff.registry import Registry


@dataclass(frozen=True)
class Quantization:
    """Quantize while exporting: the scheme, the calibration feeds and the layers kept in float."""

    scheme: Any  # an edgediff.quantize.schemes.Scheme
    calibration: list[dict[str, Any]]  # feeds keyed by input name (numpy), as the runtime receives them
    # torch module FQNs of the wrapper kept in float; each exporter maps them to its own layer names
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportRequest:
    """One component to export: the wrapper module, its traced inputs and where the files go."""

    component: str
    module: Any  # torch.nn.Module (an edgediff.models.wrappers.ExportWrapper)
    example_inputs: tuple[Any, ...]  # torch tensors, in the wrapper's input order
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    precision: str
    out_dir: Path  # an empty directory for this component's files
    quantization: Quantization | None = None  # None: float export at ``precision``


class Exporter(Protocol):
    """Writes a component's files and returns the entry file (the one a runtime opens).

    An exporter may also define ``trial_session(request) -> Session``: the quantized graph run without
    writing the format, for the fallback search's trials. Only formats whose serialization dominates a
    trial and whose quantized reference graph computes what the runtime computes define it (see
    ``ExecuTorchExporter``); ``trial_session`` below falls back to export-and-open for the others.
    """

    format: str
    runtime: str
    # Schemes whose activations this format quantizes with static ranges: a build captures calibration
    # feeds for these only (``calibrated_schemes`` below reads it, defaulting to static int8 alone).
    calibrated_schemes: frozenset[str]

    def export(self, request: ExportRequest) -> Path: ...


EXPORTERS: Registry[type[Exporter]] = Registry("export format")

# format name -> module that registers it; imported on first use so that `import edgediff` stays light.
_MODULES = {
    "onnx": "edgediff.export.onnx",
    "openvino": "edgediff.export.openvino",
    "executorch": "edgediff.export.executorch",
    "aoti": "edgediff.export.aoti",
}


STATIC_SCHEMES = frozenset({"int8"})  # what every format calibrates


def calibrated_schemes(exporter: Exporter) -> frozenset[str]:
    """The schemes ``exporter`` needs calibration feeds for."""
    return getattr(exporter, "calibrated_schemes", STATIC_SCHEMES)


def get_exporter(format_name: str) -> Exporter:
    if format_name not in EXPORTERS and format_name in _MODULES:
        importlib.import_module(_MODULES[format_name])
    return EXPORTERS.get(format_name)()
