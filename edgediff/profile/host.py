"""What machine a measurement came from (numbers without their host are not comparable)."""

from __future__ import annotations

import os
import platform
import resource
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def host_info(runtime_package: str | None = None) -> dict[str, object]:
    info: dict[str, object] = {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    if runtime_package:
        info["runtime_version"] = package_version(runtime_package)
    return info


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024
