"""AOTInductor runtime: a ``model.pt2`` package run through ``torch._inductor.aoti_load_package``.

The package's kernels are compiled for one device, named in the ``model.io.json`` sidecar the
exporter writes with the input and output names; feeds are numpy on the host and move to that
device for each call (a step's latents and text states are small next to its compute). Like the
ExecuTorch wrapper, this one imports torch: the C++ runner (``AOTIModelPackageLoader``) is what a
deployed app links instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgediff.runtimes.base import RUNTIMES, SessionOptions

IO_FILE = "model.io.json"  # written by edgediff.export.aoti beside the package


class AotiSession:
    def __init__(self, model_file: Path, input_names: tuple[str, ...], output_names: tuple[str, ...],
                 device: str) -> None:
        import torch

        self._torch = torch
        self._runner = torch._inductor.aoti_load_package(str(model_file))
        self._device = device
        self.input_names = input_names
        self.output_names = output_names

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])).to(self._device) for name in self.input_names]
        with torch.no_grad():
            out = self._runner(*args)
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        return {name: t.float().cpu().numpy() for name, t in zip(self.output_names, outputs, strict=True)}


@RUNTIMES.register("aoti")
def open_aoti(model_file: Path, options: SessionOptions) -> AotiSession:
    io = json.loads((model_file.parent / IO_FILE).read_text())
    if options.threads and io["device"] == "cpu":
        import torch

        torch.set_num_threads(options.threads)
    return AotiSession(model_file, tuple(io["inputs"]), tuple(io["outputs"]), io["device"])
