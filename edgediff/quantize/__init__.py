"""Quantization: schemes (what to apply) and one backend per format (how to apply it).

Backends import their engines lazily, so importing this package stays light. Each backend module
exposes ``SUPPORTED`` (the scheme names it implements) and one function:

- ``nncf_openvino.quantize_openvino(model, scheme, calibration, ignored)`` -> ``openvino.Model``
- ``ort_qdq.quantize_onnx(src, dst, scheme, calibration, ignored)`` -> writes ``dst``
- ``pt2e_xnnpack.quantize_for_xnnpack(module, example_inputs, scheme, calibration, ignored)`` -> ``nn.Module``
- ``torch_gpu.quantize_linear_layers(module, scheme, ...)`` -> ``nn.Module`` (the AOTInductor exporter's)

A backend may also expose ``check_options(scheme)``, refusing scheme options it has no kernel for
(hybrid int8 on XNNPACK, say); ``check_scheme_options`` runs it when a build resolves its settings,
before calibration is captured.

``sensitivity`` chooses the ``ignored`` layers (kept in float) for a quality target.
"""

from __future__ import annotations

import importlib

from edgediff.quantize.schemes import (
    SCHEMES,
    Fp8,
    Fp16,
    Int4Weight,
    Int8Static,
    Int8Weight,
    Scheme,
    get_scheme,
    scheme_from_json,
)

# export format -> the backend module that quantizes for it
BACKENDS = {
    "openvino": "edgediff.quantize.nncf_openvino",
    "onnx": "edgediff.quantize.ort_qdq",
    "executorch": "edgediff.quantize.pt2e_xnnpack",
    "aoti": "edgediff.quantize.torch_gpu",
}


def supported_schemes(format_name: str) -> frozenset[str]:
    """Scheme names the backend for ``format_name`` implements (empty for a format without one)."""
    module = BACKENDS.get(format_name)
    return importlib.import_module(module).SUPPORTED if module else frozenset()


def check_scheme_options(format_name: str, scheme: Scheme) -> None:
    """Raise the backend's one-line error if ``format_name`` cannot build ``scheme`` with its options."""
    module = BACKENDS.get(format_name)
    check = getattr(importlib.import_module(module), "check_options", None) if module else None
    if check is not None:
        check(scheme)


__all__ = [
    "BACKENDS",
    "SCHEMES",
    "Fp16",
    "Fp8",
    "Int4Weight",
    "Int8Static",
    "Int8Weight",
    "Scheme",
    "check_scheme_options",
    "get_scheme",
    "scheme_from_json",
    "supported_schemes",
]
