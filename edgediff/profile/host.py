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


# The instruction-set extensions that decide which kernels an engine picks: AVX2/FMA fp32 on any recent
# x86 core; AVX-512 doubles the fp32 lanes; VNNI adds int8 dot products (int8 beats fp32 only with them);
# AMX tiles run int8 and bf16 matrix products many times faster again (OpenVINO then computes an "fp32"
# model in bf16 unless told otherwise); on Arm, dotprod/i8mm and bf16 play the same roles.
ISA_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
                "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "bf16", "sve")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 ``flags``, Arm ``Features``); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_features() -> list[str]:
    """Which of ``ISA_FEATURES`` this CPU has: two hosts with the same core count can differ 2-5x on them."""
    flags = cpu_flags()
    return [name for name in ISA_FEATURES if name in flags]


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
        "isa": isa_features(),
        "python": platform.python_version(),
    }
    if runtime_package:
        info["runtime_version"] = package_version(runtime_package)
    return info


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024
