"""Exporters: one module per format, each registered under its format name.

An exporter turns one component (an export wrapper plus example inputs) into files in a directory.
Shared work -- example inputs, naming, the parity check, the manifest -- lives in ``edgediff.build``
and ``edgediff.export.parity``, not in the exporters.
"""

from __future__ import annotations

from edgediff.export.base import EXPORTERS, Exporter, ExportRequest, Quantization, get_exporter

__all__ = ["EXPORTERS", "ExportRequest", "Exporter", "Quantization", "get_exporter"]
