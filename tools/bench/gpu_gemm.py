"""One matmul, three ways, at a model's own shapes: bf16, int8 ``torch._int_mm`` and fp8 ``torch._scaled_mm``.

A quantized denoiser can only beat bf16 where its products do. Peaks measured at 8192³ say int8
tensor cores outrun bf16 on an H100; the products a DiT runs (K = 1152 for PixArt) may not, and this
says which. The default shapes are PixArt-alpha's linear layers at 1024², batch 2 (8192 tokens):
attention projections, the fused QKV, and the MLP's two products.

    python -m tools.bench.gpu_gemm --out docs/benchmarks        # on a CUDA machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.results import write_result

PIXART_1024_BATCH2 = ("8192x1152x1152", "8192x1152x3456", "8192x1152x4608", "8192x4608x1152")
KINDS = ("bf16", "int8", "fp8")


def _median_ms(fn: Any, repeats: int, calls: int) -> float:
    import torch

    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - started) / calls * 1e3)
    return statistics.median(times)


def products(m: int, k: int, n: int) -> dict[str, Any]:
    """The three products of an (m, k) activation and an (n, k) weight, as zero-argument calls."""
    import torch

    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=gen)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=gen)
    a8 = torch.randint(-127, 128, (m, k), device="cuda", dtype=torch.int8, generator=gen)
    w8 = torch.randint(-127, 128, (n, k), device="cuda", dtype=torch.int8, generator=gen)
    af, wf = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
    one = torch.tensor(1.0, device="cuda")
    return {
        "bf16": lambda: a @ w.t(),
        "int8": lambda: torch._int_mm(a8, w8.t()),
        "fp8": lambda: torch._scaled_mm(af, wf.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                        use_fast_accum=True),
    }


def run(shapes: list[str], repeats: int, calls: int) -> dict[str, Any]:
    import torch

    rows = []
    for shape in shapes:
        m, k, n = (int(v) for v in shape.split("x"))
        row: dict[str, Any] = {"m": m, "k": k, "n": n}
        for kind, fn in products(m, k, n).items():
            ms = _median_ms(fn, repeats, calls)
            row[kind] = {"ms": ms, "tflops": 2 * m * k * n / ms / 1e9}
        for kind in KINDS[1:]:
            row[kind]["vs_bf16"] = row["bf16"]["ms"] / row[kind]["ms"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "repeats": repeats,
            "calls": calls, "rows": rows, "command": "python -m tools.bench.gpu_gemm " + " ".join(sys.argv[1:])}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Command: `{result['command']}`", "",
             f"{result['device']}, torch {result['torch']}; median of {result['repeats']} x {result['calls']} calls.", "",
             "| M x K x N | bf16 ms | bf16 TFLOP/s | int8 `_int_mm` ms | int8 vs bf16 | fp8 `_scaled_mm` ms | fp8 vs bf16 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['m']} x {r['k']} x {r['n']} | {r['bf16']['ms']:.4f} | {r['bf16']['tflops']:.0f} | "
                     f"{r['int8']['ms']:.4f} | {r['int8']['vs_bf16']:.2f}x | {r['fp8']['ms']:.4f} | "
                     f"{r['fp8']['vs_bf16']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(PIXART_1024_BATCH2), help="MxKxN products to time")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("error: gpu_gemm times CUDA kernels and this host has no CUDA device; run it on the GPU machine")
    result = run(args.shapes, args.repeats, args.calls)
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "gpu_gemm", result, markdown(result))


if __name__ == "__main__":
    main()
