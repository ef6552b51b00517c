"""Where an OpenVINO denoiser step spends its time, per (layer type, kernel), for two or more bundles.

OpenVINO's CPU plugin reports per-node times and the kernel it chose (``PERF_COUNT``); summed by
layer type and kernel, two bundles of one model (fp32 and int8, say) show which kernels make one
faster or slower than the other on this host. Each bundle's step is run ``--runs`` times after a
warm-up, bundles alternating; the per-kernel times are medians over runs.

    python -m tools.bench.ov_profile BUNDLE_FP32 BUNDLE_INT8 --out docs/benchmarks/ov_profile_sd-turbo_256

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tools.bench.results import write_result


def _open(bundle: Path, threads: int) -> tuple[Any, dict[int, np.ndarray]]:
    import openvino as ov

    from edgediff.runtimes.openvino import compile_for_bundle

    manifest = json.loads((bundle / "manifest.json").read_text())
    component = next(c for c in manifest["components"] if c["name"] == "denoiser")
    core = ov.Core()
    model = core.read_model(str(bundle / component["entry"]))
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads), "PERF_COUNT": True}
    request = compile_for_bundle(model, manifest["precision"], config).create_infer_request()  # as the runtime does
    with np.load(bundle / component["parity"]["samples"]) as samples:
        feeds = {i: samples[f"input.{spec['name']}"] for i, spec in enumerate(component["inputs"])}
    return request, feeds


def profile(bundles: list[Path], runs: int, threads: int) -> dict[str, Any]:
    opened = {str(b): _open(b, threads) for b in bundles}
    for request, feeds in opened.values():
        request.infer(feeds)  # warm-up: kernels are picked and memory planned on the first call
    step_ms: dict[str, list[float]] = defaultdict(list)
    kernel_ms: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in opened}
    kernel_count: dict[str, dict[str, int]] = {}
    for _ in range(runs):
        for name, (request, feeds) in opened.items():
            started = time.perf_counter()
            request.infer(feeds)
            step_ms[name].append((time.perf_counter() - started) * 1e3)
            totals: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            for info in request.get_profiling_info():
                key = f"{info.node_type} / {info.exec_type}"
                totals[key] += info.real_time.total_seconds() * 1e3
                counts[key] += 1
            for key, ms in totals.items():
                kernel_ms[name][key].append(ms)
            kernel_count[name] = dict(counts)
    return {name: {"step_ms": statistics.median(step_ms[name]),
                   "kernels": {k: {"ms": statistics.median(v), "nodes": kernel_count[name][k]}
                               for k, v in sorted(kernel_ms[name].items(), key=lambda kv: -statistics.median(kv[1]))}}
            for name in opened}


def markdown(result: dict[str, Any], top: int = 12) -> str:
    lines = [f"# OpenVINO per-kernel time of one denoiser step ({result['threads']} threads, median of "
             f"{result['runs']} alternating runs)", ""]
    for name, data in result["bundles"].items():
        lines += [f"## `{Path(name).name}`: {data['step_ms']:.0f} ms per step", "",
                  "| layer type / kernel | nodes | ms | share |", "|---|---:|---:|---:|"]
        total = sum(k["ms"] for k in data["kernels"].values())
        for key, k in list(data["kernels"].items())[:top]:
            lines.append(f"| {key} | {k['nodes']} | {k['ms']:.1f} | {k['ms'] / total:.1%} |")
        lines.append("")
    lines += [f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.ov_profile", description=__doc__.splitlines()[0])
    parser.add_argument("bundles", type=Path, nargs="+", help="OpenVINO (intel-cpu) bundles")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="path stem for the .json and .md written")
    args = parser.parse_args(argv)
    result = {"benchmark": "ov_profile", "command": "python -m tools.bench.ov_profile " + " ".join(sys.argv[1:]),
              "runs": args.runs, "threads": args.threads, "bundles": profile(args.bundles, args.runs, args.threads)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
