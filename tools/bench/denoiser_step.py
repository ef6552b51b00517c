"""Per-step denoiser latency of one model on every runnable CPU runtime next to PyTorch eager, side by side.

Engines are timed in alternating rounds (each round runs every engine ``--per-round`` times), so
machine noise hits all of them alike; reported are the medians over all runs and the median of the
per-round ratios to PyTorch eager fp32.

    python -m tools.bench.denoiser_step --model config:sd-turbo --size 256 --rounds 5 --per-round 3

Bundles are exported under ``--bundles`` (reused when present). Writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools.bench.results import write_result

TARGETS = ("x86-cpu", "intel-cpu", "arm64-cpu")


def _bundle(model_ref: str, target: str, size: int, root: Path) -> Path:
    from edgediff.api import export_bundle
    from edgediff.bundle import open_bundle

    out = root / target  # a full bundle from 'edgediff export' there is reused as is
    if (out / "manifest.json").is_file():
        bundle = open_bundle(out, verify=False)
        found = (bundle.manifest["provenance"]["source"], bundle.pipeline["height"], bundle.pipeline["width"])
        if found != (model_ref, size, size):
            raise SystemExit(f"{out} holds {found}, not ({model_ref!r}, {size}, {size}); use another --bundles folder")
        return out
    print(f"exporting {model_ref} for {target} -> {out}", flush=True)
    export_bundle(model_ref, target, out, height=size, width=size, components=("denoiser",), force=True,
                  progress=lambda m: print("  ", m, flush=True))
    open_bundle(out)
    return out


def _torch_engine(model_ref: str, size: int, batch: int) -> tuple[Any, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from edgediff.models import load_model

    module = load_model(model_ref).build_component("denoiser")
    inputs = module.example_inputs(size, size, batch)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)

    def run() -> None:
        with torch.no_grad():
            module(*inputs)

    return run, float(counter.get_total_flops())


def _runtime_engine(bundle_dir: Path) -> Any:
    from edgediff.bundle import open_bundle
    from edgediff.profile.profiler import synthetic_feeds
    from edgediff.runtimes.base import SessionOptions, open_session

    bundle = open_bundle(bundle_dir)
    component = bundle.components["denoiser"]
    # engines take turns: a session whose threads spin after its run would slow the next one
    session = open_session(bundle.runtime, bundle.entry("denoiser"),
                           SessionOptions(precision=bundle.precision, spin="within-run"))
    feeds = synthetic_feeds(component["inputs"])
    return lambda: session.run(feeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="config:sd-turbo")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1, help="denoiser batch (1: no CFG, as SD-Turbo runs)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--bundles", type=Path, default=Path("out/bench-bundles"),
                        help="folder of per-target bundles (TARGET/ subfolders), exported when missing")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args()

    engines: dict[str, Any] = {}
    torch_run, flops = _torch_engine(args.model, args.size, args.batch)
    engines["pytorch-eager-fp32"] = torch_run
    for target in TARGETS:
        engines[target] = _runtime_engine(_bundle(args.model, target, args.size, args.bundles))
    for fn in engines.values():  # warm-up: first calls allocate and pick kernels
        fn()

    samples: dict[str, list[float]] = {name: [] for name in engines}
    round_medians: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(args.rounds):
        for name, fn in engines.items():
            times = []
            for _ in range(args.per_round):
                started = time.perf_counter()
                fn()
                times.append((time.perf_counter() - started) * 1e3)
            samples[name] += times
            round_medians[name].append(float(np.median(times)))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {round_medians[n][-1]:.0f} ms" for n in engines), flush=True)

    from edgediff.profile.host import host_info

    base = "pytorch-eager-fp32"
    results = {
        name: {
            "p50_ms": float(np.median(samples[name])),
            "min_ms": float(np.min(samples[name])),
            "runs": len(samples[name]),
            "speedup_vs_pytorch_eager": float(np.median(np.array(round_medians[base]) / np.array(round_medians[name]))),
            "gflops_per_s": flops / 1e9 / (float(np.median(samples[name])) / 1e3),
        }
        for name in engines
    }
    report = {
        "benchmark": "denoiser_step",
        "model": args.model,
        "height": args.size,
        "width": args.size,
        "batch": args.batch,
        "precision": "fp32",
        "gflop_per_step": flops / 1e9,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "results": results,
        "host": host_info(),
        "command": "python -m tools.bench.denoiser_step " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("bundles", "out")),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"denoiser_step_{args.model.replace(':', '_')}_{args.size}"
    lines = [
        f"Denoiser step, `{args.model}` {args.size}x{args.size}, batch {args.batch}, fp32 "
        f"({report['gflop_per_step']:.1f} GFLOP/step), {report['host']['cpu']} x{report['host']['cpu_count']}",
        "",
        "| engine | p50 ms | speedup vs PyTorch eager | GFLOP/s |",
        "|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['p50_ms']:.1f} | {r['speedup_vs_pytorch_eager']:.2f}x | {r['gflops_per_s']:.1f} |")
    lines += ["", f"Command: `{report['command']}`"]
    write_result(args.out / stem, report, "\n".join(lines))


if __name__ == "__main__":
    main()
