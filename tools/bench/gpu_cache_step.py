"""Caching on one GPU: the denoiser work of one image under each cache interval, compiled, side by side.

For each model the stock denoiser and its cache split (``edgediff.cache``: DeepCache for a UNet, Δ-cache
for a PixArt or DiT transformer) are built from the same weights in bf16 and compiled. Each round times,
with CUDA events and in turn, one image's worth of denoiser calls under every plan: interval 1 (the stock
denoiser every step) and each ``--intervals`` N (the full half on steps 0, N, 2N, ..., the shallow half
between, fed the full half's features). Reported: medians per plan, the median of per-round ratios to
interval 1, and the FLOPs of the stock, full and shallow graphs, so the measured saving can be set
against the counted one. Random weights: this says what caching saves in time at real scale, not what it
costs in quality (that is measured on the zoo models: ``python -m tools.bench.cache``).

    python -m tools.bench.gpu_cache_step --models config:pixart-alpha@1024 --out docs/benchmarks

CPU dry run:

    python -m tools.bench.gpu_cache_step --device cpu --no-compile --models config:tiny-pixart@32 --out /tmp/c

Writes ``gpu_cache_step_<model>.{json,md}`` under ``--out`` per model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tools.bench.gpu_quant_step import Timer, _flops, _host, _inputs, _model_spec
from tools.bench.results import write_result


def _plan_calls(full: Any, shallow: Any, stock: Any, inputs: tuple[torch.Tensor, ...], steps: int,
                interval: int) -> Any:
    """One image's denoiser calls under a plan (interval 1: the stock denoiser every step)."""

    def run() -> None:
        features = None
        for index in range(steps):
            if interval == 1:
                stock(*inputs)
            elif index % interval == 0:
                _, features = full(*inputs)
            else:
                shallow(*inputs, features)

    return run


def bench_model(ref: str, size: int, args: argparse.Namespace, device: torch.device, timer: Timer) -> dict[str, Any]:
    from edgediff.cache.splits import CACHED_DENOISERS, cacheable_families
    from edgediff.models import load_model

    started = time.perf_counter()
    model = load_model(ref)
    cacheable_families()
    stock = model.build_component("denoiser").eval()
    full_cls, shallow_cls = CACHED_DENOISERS.get(model.family)
    full, shallow = full_cls(stock.model, model.geometry).eval(), shallow_cls(stock.model, model.geometry).eval()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    stock.to(device, dtype)  # the three wrappers share these weights
    inputs = _inputs(stock, size, args.batch, device, dtype)
    print(f"\n== {ref} {size}x{size} batch {args.batch} ({model.family}): built in {time.perf_counter() - started:.0f} s",
          flush=True)
    with torch.no_grad():
        _, features = full(*inputs)
    flops = {name: _flops(module, args_)[0] for name, module, args_ in
             (("stock", stock, inputs), ("full", full, inputs), ("shallow", shallow, (*inputs, features)))}
    print(", ".join(f"{k} {v / 1e12:.3f} TFLOP" for k, v in flops.items()), flush=True)

    graphs = {"stock": stock, "full": full, "shallow": shallow}
    if args.compile:
        graphs = {name: torch.compile(module, mode=args.mode) for name, module in graphs.items()}
    with torch.no_grad():
        for name, graph in graphs.items():
            started = time.perf_counter()
            for _ in range(2):  # the first call compiles
                graph(*inputs, *((features,) if name == "shallow" else ()))
            print(f"{name}: compiled and ran in {time.perf_counter() - started:.0f} s", flush=True)

        plans = [1, *args.intervals]
        calls = {n: _plan_calls(graphs["full"], graphs["shallow"], graphs["stock"], inputs, args.steps, n) for n in plans}
        single = {"stock": lambda: graphs["stock"](*inputs), "full": lambda: graphs["full"](*inputs),
                  "shallow": lambda: graphs["shallow"](*inputs, features)}
        for fn in (*calls.values(), *single.values()):
            timer.run(fn, 1)  # warm-up
        image_ms: dict[int, list[float]] = {n: [] for n in plans}
        step_ms: dict[str, list[float]] = {name: [] for name in single}
        for round_index in range(args.rounds):
            for n in plans:
                image_ms[n].append(statistics.median(timer.run(calls[n], args.per_round)))
            for name, fn in single.items():
                step_ms[name].append(statistics.median(timer.run(fn, args.per_round)))
            print(f"round {round_index + 1}/{args.rounds}: "
                  + ", ".join(f"interval {n} {image_ms[n][-1]:.1f} ms" for n in plans), flush=True)

    base = image_ms[1]
    return {
        "model": ref, "size": size, "family": model.family, "front_blocks": getattr(full, "front", None),
        "gflop": {k: v / 1e9 for k, v in flops.items()},
        "step_p50_ms": {name: statistics.median(v) for name, v in step_ms.items()},
        "plans": {str(n): {"full_steps": sum(i % n == 0 for i in range(args.steps)),
                           "image_denoise_p50_ms": statistics.median(image_ms[n]),
                           "speedup": statistics.median(b / t for b, t in zip(base, image_ms[n], strict=True)),
                           "counted_speedup": args.steps * flops["stock"] / _plan_flops(flops, args.steps, n),
                           "rounds_ms": image_ms[n]} for n in plans},
    }


def _plan_flops(flops: dict[str, float], steps: int, interval: int) -> float:
    if interval == 1:
        return steps * flops["stock"]
    full = sum(i % interval == 0 for i in range(steps))
    return full * flops["full"] + (steps - full) * flops["shallow"]


def markdown(report: dict[str, Any]) -> str:
    host = report["host"]
    lines = [f"Command: `{report['command']}`", "",
             f"{host.get('gpu', report['device'])}, torch {host['torch']}, {report['compile_mode']}, denoiser batch "
             f"{report['batch']}, {report['steps']} steps per image; medians of {report['rounds']} rounds x "
             f"{report['per_round']}, speedup = median of per-round ratios to interval 1.", ""]
    for m in report["models"]:
        g, s = m["gflop"], m["step_p50_ms"]
        front = f", shallow graph: {m['front_blocks']} front block(s)" if m["front_blocks"] else ""
        lines += [f"**{m['model']} {m['size']}x{m['size']}** ({m['family']}{front}): one step stock {s['stock']:.2f} ms "
                  f"({g['stock']:.0f} GFLOP), full half {s['full']:.2f} ms, shallow half {s['shallow']:.2f} ms "
                  f"({g['shallow']:.0f} GFLOP, {g['shallow'] / g['stock']:.0%} of the stock step's FLOPs).", "",
                  "| interval | full steps | denoiser ms per image | speedup | counted (FLOPs) |", "|---:|---:|---:|---:|---:|"]
        for n, p in m["plans"].items():
            lines.append(f"| {n} | {p['full_steps']}/{report['steps']} | {p['image_denoise_p50_ms']:.1f} | "
                         f"{p['speedup']:.2f}x | {p['counted_speedup']:.2f}x |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=_model_spec, default=[_model_spec("config:pixart-alpha@1024")],
                        help="MODEL@SIZE, e.g. config:sd15@512")
    parser.add_argument("--batch", type=int, default=2, help="denoiser batch (2: classifier-free guidance)")
    parser.add_argument("--steps", type=int, default=20, help="denoiser steps per image")
    parser.add_argument("--intervals", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--mode", default="default", help="torch.compile mode")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="eager (CPU dry runs)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args()
    if any(n < 2 for n in args.intervals):
        parser.error("--intervals must be at least 2 (1, every step full, is always timed)")
    device = torch.device(args.device)
    host = _host(device)
    print(json.dumps(host), flush=True)
    for ref, size in args.models:
        report = {"benchmark": "gpu_cache_step", "device": str(device), "batch": args.batch, "steps": args.steps,
                  "compile_mode": args.mode if args.compile else "eager", "rounds": args.rounds,
                  "per_round": args.per_round, "host": host,
                  "command": "python -m tools.bench.gpu_cache_step " + " ".join(sys.argv[1:]),
                  "models": [bench_model(ref, size, args, device, Timer(device))]}
        write_result(args.out / f"gpu_cache_step_{ref.replace(':', '_')}_{size}", report, markdown(report))


if __name__ == "__main__":
    main()
