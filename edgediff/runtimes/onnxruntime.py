"""ONNX Runtime, CPU execution provider, all graph optimizations on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgediff.runtimes.base import RUNTIMES, SessionOptions


class OnnxRuntimeSession:
    def __init__(self, model_file: Path, options: SessionOptions) -> None:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if options.threads:
            so.intra_op_num_threads = options.threads
        self._session = ort.InferenceSession(str(model_file), so, providers=["CPUExecutionProvider"])
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_names = tuple(o.name for o in self._session.get_outputs())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(list(self.output_names), {k: feeds[k] for k in self.input_names})
        return dict(zip(self.output_names, outputs, strict=True))


@RUNTIMES.register("onnxruntime")
def open_onnxruntime(model_file: Path, options: SessionOptions) -> OnnxRuntimeSession:
    return OnnxRuntimeSession(model_file, options)
