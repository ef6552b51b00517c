"""ExecuTorch runtime (XNNPACK-delegated .pte) through ``executorch.runtime``.

The Python binding exchanges torch tensors, so this wrapper converts numpy at the boundary; it is the
one runtime whose Python form imports torch. Input/output names come from the bundle manifest,
because a .pte method carries positions, not names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgediff.runtimes.base import RUNTIMES, SessionOptions


class ExecuTorchSession:
    def __init__(self, model_file: Path, options: SessionOptions, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> None:
        import torch
        from executorch.runtime import Runtime

        self._torch = torch
        if options.threads:
            torch.set_num_threads(options.threads)
        self._program = Runtime.get().load_program(str(model_file))
        self._method = self._program.load_method("forward")
        self.input_names = input_names
        self.output_names = output_names

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [self._torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in self.input_names]
        outputs = self._method.execute(args)
        return {name: out.numpy() for name, out in zip(self.output_names, outputs, strict=True)}


@RUNTIMES.register("executorch")
def open_executorch(model_file: Path, options: SessionOptions) -> ExecuTorchSession:
    names_file = model_file.with_suffix(".io.json")
    names = json.loads(names_file.read_text())
    return ExecuTorchSession(model_file, options, tuple(names["inputs"]), tuple(names["outputs"]))
