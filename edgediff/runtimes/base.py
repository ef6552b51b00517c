"""The runtime interface: ``open(model_file) -> Session``; ``Session.run(feeds) -> outputs``, numpy in and out.

Runtimes import numpy and their engine only, so ``BundlePipeline`` runs as a device app would:
without torch (ExecuTorch's Python binding is the exception: it exchanges torch tensors, so its
wrapper converts at the boundary; on a device the C++ runtime needs no torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from edgediff.registry import Registry

SpinPolicy = Literal["default", "within-run", "never"]


@dataclass(frozen=True)
class SessionOptions:
    precision: str = "fp32"  # the bundle's precision; engines with precision hints follow it
    threads: int | None = None  # None: the engine's default (all cores)
    # How idle worker threads wait for the next parallel region. "default": the engine's own choice;
    # "within-run": spin while a run lasts, sleep the moment it returns (sessions that take turns on the
    # same cores: see BundlePipeline); "never": always sleep. Engines without the knob ignore it.
    spin: SpinPolicy = "default"


class Session(Protocol):
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


SessionOpener = Callable[[Path, SessionOptions], Session]
RUNTIMES: Registry[SessionOpener] = Registry("runtime")

_MODULES = {
    "onnxruntime": "edgediff.runtimes.onnxruntime",
    "openvino": "edgediff.runtimes.openvino",
    "executorch": "edgediff.runtimes.executorch",
    "aoti": "edgediff.runtimes.aoti",
}


def open_session(runtime: str, model_file: Path, options: SessionOptions | None = None) -> Session:
    if runtime not in RUNTIMES and runtime in _MODULES:
        importlib.import_module(_MODULES[runtime])
    return RUNTIMES.get(runtime)(model_file, options or SessionOptions())
