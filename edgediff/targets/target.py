"""The ``Target`` type and lookup."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgediff.errors import TargetError


@dataclass(frozen=True)
class Target:
    """One device profile.

    ``requires`` names the Python modules that must import on this host for the target to be built
    and run here; ``buildable`` is False for targets whose exporter is not written yet, so that
    ``edgediff targets`` says so instead of hiding them.
    """

    name: str
    format: str  # exporter registry key: "onnx", "openvino", "executorch", ...
    runtime: str  # runtime registry key: "onnxruntime", "openvino", "executorch", ...
    precisions: tuple[str, ...]
    default_precision: str
    device: str  # "cpu", "npu", "gpu"
    fixed_shapes: bool = True
    memory_budget_mb: int | None = None
    requires: tuple[str, ...] = ()
    buildable: bool = True
    # built on the GPU it runs on (its kernels are compiled for that device): checked by the driver's
    # presence, so that listing targets needs no torch import
    needs_nvidia_gpu: bool = False
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reference_device(self) -> str:
        """Where a build runs the fp32 PyTorch model (calibration capture, quality teacher): the GPU a
        GPU target is built on, since its full-size references take minutes on a CPU."""
        return "cuda" if self.needs_nvidia_gpu else "cpu"

    def missing_modules(self) -> list[str]:
        """Modules this target needs that do not import here (checked without importing them)."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    @property
    def available(self) -> bool:
        """True when this host can build a bundle for the target and run it."""
        return self.buildable and not self.missing_modules() and (not self.needs_nvidia_gpu or _nvidia_driver())

    def availability_reason(self) -> str:
        if not self.buildable:
            return "exporter not built yet"
        missing = self.missing_modules()
        if missing:
            return "missing on this host: " + ", ".join(missing)
        if self.needs_nvidia_gpu and not _nvidia_driver():
            return "no NVIDIA GPU driver on this host: build on the machine with the GPU"
        return "ok"

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise TargetError(
                f"target {self.name!r} does not support precision {precision!r}; "
                f"choose one of {', '.join(self.precisions)}"
            )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["precisions"] = list(self.precisions)
        data["requires"] = list(self.requires)
        data["available"] = self.available
        data["availability"] = self.availability_reason()
        return data


def _nvidia_driver() -> bool:
    return any(Path(path).exists() for path in NVIDIA_DRIVER_FILES)


# the loaded kernel driver, or its control device where a container hides /proc/driver
NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


def list_targets() -> list[Target]:
    from edgediff.targets.catalog import TARGETS

    return list(TARGETS.values())


def get_target(name: str) -> Target:
    from edgediff.targets.catalog import TARGETS

    try:
        return TARGETS[name]
    except KeyError:
        raise TargetError(
            f"unknown target {name!r}; run 'edgediff targets' to list them ({', '.join(TARGETS)})"
        ) from None
