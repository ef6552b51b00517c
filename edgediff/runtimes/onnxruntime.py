"""ONNX Runtime, CPU execution provider, all graph optimizations on.

Every session owns an intra-op thread pool whose workers spin-wait for the next parallel region,
also after a run has returned (ORT's default). In a pipeline the text encoder, denoiser(s) and VAE
take turns, so the idle pools' spinning threads take the cores of the session that runs next.
Turning spinning off altogether fixes that but makes every operator wake its workers from sleep:
the config:sd-turbo UNet (~2000 nodes) then lost 7-10% per step. ``spin="within-run"`` keeps both:
workers spin during a run and stop the moment it returns (``session.force_spinning_stop``).
Measured by ``python -m tools.bench.session_spin`` (docs/benchmarks/session_spin_*.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgediff.runtimes.base import RUNTIMES, SessionOptions, SpinPolicy

SPIN_CONFIG: dict[SpinPolicy, dict[str, str]] = {
    "default": {},
    "within-run": {"session.intra_op.allow_spinning": "1", "session.force_spinning_stop": "1"},
    "never": {"session.intra_op.allow_spinning": "0"},
}


class OnnxRuntimeSession:
    def __init__(self, model_file: Path, options: SessionOptions) -> None:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if options.threads:
            so.intra_op_num_threads = options.threads
        for key, value in SPIN_CONFIG[options.spin].items():
            so.add_session_config_entry(key, value)
        self._session = ort.InferenceSession(str(model_file), so, providers=["CPUExecutionProvider"])
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_names = tuple(o.name for o in self._session.get_outputs())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(list(self.output_names), {k: feeds[k] for k in self.input_names})
        return dict(zip(self.output_names, outputs, strict=True))


@RUNTIMES.register("onnxruntime")
def open_onnxruntime(model_file: Path, options: SessionOptions) -> OnnxRuntimeSession:
    return OnnxRuntimeSession(model_file, options)
