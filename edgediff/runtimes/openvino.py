"""OpenVINO runtime on the CPU plugin, latency-oriented.

The inference precision follows the bundle: an fp32 bundle pins f32 so that CPUs with bf16/AMX
units do not silently downcast (OpenVINO's default there) and break parity.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import openvino as ov

from edgediff.runtimes.base import RUNTIMES, SessionOptions

_CORE: ov.Core | None = None


def _core() -> ov.Core:
    global _CORE
    if _CORE is None:
        _CORE = ov.Core()
    return _CORE


class OpenVinoSession:
    def __init__(self, model_file: Path, options: SessionOptions) -> None:
        config: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY"}
        if options.precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = str(options.threads)
        model = _core().read_model(str(model_file))
        # Names come from the IR: a compiled static-shape model merges neighbouring tensors' names
        # into its ports, so the compiled ports' "any name" can be an internal one. Ports go by index.
        self.input_names = tuple(p.get_any_name() for p in model.inputs)
        self.output_names = tuple(p.get_any_name() for p in model.outputs)
        self._compiled = _core().compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._request.infer({i: feeds[k] for i, k in enumerate(self.input_names)})
        return {name: np.array(result[port]) for name, port in zip(self.output_names, self._compiled.outputs, strict=True)}


@RUNTIMES.register("openvino")
def open_openvino(model_file: Path, options: SessionOptions) -> OpenVinoSession:
    return OpenVinoSession(model_file, options)
