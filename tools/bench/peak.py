"""This CPU's fp32 matmul peak, measured, with the clock-derived FMA ceiling beside it.

Per-step latencies mean little across machines; as a fraction of what the CPU's fastest kernel
reaches (a large sgemm) they compare. The theoretical number assumes 2 FMA units per core of 8 fp32
lanes (AVX2) or 16 (AVX-512) at the maximum clock; it is labelled as such because turbo, shared
cores and memory bandwidth keep real kernels below it. Both are fp32: int8 (VNNI, AMX) and bf16 (AMX)
kernels run above them, so an int8 or bf16 engine's share of this peak can pass 100%.

    python -m tools.bench.peak --out out/peak.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from edgediff.profile.host import cpu_flags, cpu_model

SIZES = (1024, 2048, 3072)
REPEATS = 5
FMA_UNITS = 2  # per core, on AVX2 cores of the last decade (Haswell on, Zen 2 on)
FLOPS_PER_FMA = 2


def _sgemm_gflops(n: int, repeats: int) -> list[float]:
    """GFLOP/s of ``repeats`` n×n fp32 matmuls (2n³ flops each), after one warm-up."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    torch.matmul(a, b, out=out)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
    return rates


def measure_matmul_peak(threads: int, sizes: tuple[int, ...] = SIZES, repeats: int = REPEATS) -> dict[str, Any]:
    """Median sgemm GFLOP/s per size on ``threads`` threads, and the best of those medians as the peak."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        per_size = {str(n): statistics.median(_sgemm_gflops(n, repeats)) for n in sizes}
    finally:
        torch.set_num_threads(previous)
    return {
        "threads": threads,
        "library": f"torch {torch.__version__} sgemm",
        "repeats": repeats,
        "gflops_by_size": {k: round(v, 2) for k, v in per_size.items()},
        "measured_peak_gflops": round(max(per_size.values()), 2),
    }


def max_clock_mhz() -> tuple[float | None, str]:
    """The CPU's maximum clock and where it was read (lscpu's max, else the fastest core in /proc/cpuinfo)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"^CPU max MHz:\s*([\d.]+)", out, re.MULTILINE)
        if match and float(match.group(1)) > 0:
            return float(match.group(1)), "lscpu 'CPU max MHz'"
    except OSError:
        pass
    try:
        mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.MULTILINE)]
        if mhz:
            return max(mhz), "/proc/cpuinfo 'cpu MHz' (current clock of the fastest core; may be below the max)"
    except OSError:
        pass
    return None, "not found"


def theoretical_fp32_peak(cores: int) -> dict[str, Any]:
    mhz, source = max_clock_mhz()
    flags = cpu_flags()
    isa = "AVX-512" if "avx512f" in flags else "AVX2"
    lanes = 16 if isa == "AVX-512" else 8  # 512- or 256-bit registers / 32-bit floats
    per_cycle = FMA_UNITS * lanes * FLOPS_PER_FMA
    return {
        "label": f"theoretical {isa}-FMA fp32 peak (not measured)",
        "formula": f"{FMA_UNITS} FMA units x {lanes} fp32 lanes x {FLOPS_PER_FMA} flops x GHz x cores",
        "cores": cores,
        "max_mhz": mhz,
        "clock_source": source,
        "cpu_has_avx2_fma": {"avx2", "fma"} <= flags if flags else None,
        "gflops": round(per_cycle * mhz / 1000 * cores, 1) if mhz else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = os.cpu_count() or 1
    parser.add_argument("--threads", type=int, default=cores, help="default: all cores")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--out", type=Path, help="write the JSON here as well as to stdout")
    args = parser.parse_args()
    result = {
        "cpu": cpu_model(),
        "measured": measure_matmul_peak(args.threads, tuple(args.sizes), args.repeats),
        "theoretical": theoretical_fp32_peak(args.threads),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
