"""Per-step denoiser latency on one GPU: bf16 against fp8 and int8 W8A8, all under torch.compile.

For each model the bf16 denoiser and its fp8 and int8 copies (``edgediff.quantize.torch_gpu``: linear
layers swapped, attention and convolutions left bf16) are compiled, then timed in alternating rounds
with CUDA events, so clock and thermal drift hit every variant alike. Reported: medians, the median of
per-round ratios to bf16, achieved TFLOP/s (the bf16 model's FLOPs per step over the time) against the
dense peaks measured in the same run (8192³ products: bf16 matmul, rowwise-scaled fp8 ``_scaled_mm``,
int8 ``_int_mm``), and each variant's output error against bf16 and against an fp32 eager reference.

Variants: ``fp8`` / ``int8`` quantize activations per row at each call (dynamic); ``fp8-static`` /
``int8-static`` use one per-tensor activation scale per layer, calibrated on ``--calibration-timesteps``
forward passes spread over the schedule (the bench's random latents and text states).

    python -m tools.bench.gpu_quant_step --out docs/benchmarks

CPU dry run (quantized variants run through their CPU emulation, no peaks):

    python -m tools.bench.gpu_quant_step --device cpu --models config:tiny-sd@32 --no-compile --out /tmp/q

Writes ``gpu_quant_step.json`` and ``gpu_quant_step.md`` under ``--out`` (rewritten after each model).
Runs split by model (one per device call, to fit its time limit) are joined into one report with
``--merge A.json B.json --out DIR``; ratios stay within each run, where they were measured side by side.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from edgediff.quantize.torch_gpu import plan_linear_layers, quantize_linear_layers, record_input_amax
from tools.bench.results import write_result

DEFAULT_MODELS = ("config:sd15@512", "config:pixart-alpha@1024")
VARIANTS = ("fp8", "int8", "fp8-static", "int8-static")
# Each variant's own dense peak among those _peaks measures (the others are named as their peak).
_OWN_PEAK = {"fp8": "fp8_rowwise", "fp8-static": "fp8_tensorwise", "int8-static": "int8"}

# FlopCounterMode op names -> the kind of work, to show how much of a step the quantized layers can speed up.
_OP_KINDS = {"mm": "linear", "addmm": "linear", "bmm": "attention/bmm", "convolution": "conv"}


def _kind(op: Any) -> str:
    name = str(op).split(".")[-1] if "." in str(op) else str(op)
    if "attention" in name:
        return "attention/bmm"
    return _OP_KINDS.get(name, name)


class Timer:
    """Times one call: CUDA events on the GPU (no host sync inside a round), a host clock on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def run(self, fn: Callable[[], Any], repeats: int) -> list[float]:
        if not self.cuda:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                fn()
                times.append((time.perf_counter() - started) * 1e3)
            return times
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in events]


def _peaks(device: torch.device, timer: Timer, n: int = 8192) -> dict[str, float]:
    """Dense TFLOP/s (TOP/s for int8) of one n³ product in each precision the variants use, on random data."""
    if device.type != "cuda":
        return {}
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=gen, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, generator=gen, dtype=torch.bfloat16)
    a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn)
    ai, bi = (a * 40).round().clamp(-127, 127).to(torch.int8), (b * 40).round().clamp(-127, 127).to(torch.int8)
    sa = torch.ones(n, 1, device=device)
    sb = torch.ones(1, n, device=device)
    one = torch.ones((), device=device)
    products = {
        "bf16": lambda: a @ b,
        "fp8_rowwise": lambda: torch._scaled_mm(a8, b8.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16,
                                                use_fast_accum=True),
        "fp8_tensorwise": lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                                   use_fast_accum=True),
        "int8": lambda: torch._int_mm(ai, bi.t()),
    }
    peaks = {}
    for name, fn in products.items():
        timer.run(fn, 5)  # warm-up: handles, heuristics, clocks
        ms = statistics.median(timer.run(fn, 30))
        peaks[name] = 2 * n**3 / (ms / 1e3) / 1e12
        print(f"peak {name}: {peaks[name]:.0f} TFLOP/s ({ms:.3f} ms for {n}³)", flush=True)
    return peaks


def _flops(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[float, dict[str, float], dict[str, float]]:
    """FLOPs of one step: total, by kind of op, and by module name (to credit the swapped layers)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    by_kind: Counter[str] = Counter()
    for op, count in counter.get_flop_counts().get("Global", {}).items():
        by_kind[_kind(op)] += count
    by_module = {name: float(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}
    return float(counter.get_total_flops()), {k: float(v) for k, v in by_kind.items()}, by_module


def _swapped_flops(by_module: dict[str, float], swapped: list[str]) -> float:
    # FlopCounterMode names modules by a path from the root's class name, e.g. "UNetDenoiser.model.conv_in".
    total = 0.0
    for name in swapped:
        total += sum(v for key, v in by_module.items() if key.endswith("." + name))
    return total


def _reason_kind(reason: str) -> str:
    """A plan's reason without its numbers, so the report counts kept layers by rule."""
    for kind in ("not multiples of", "narrower than", "rows per call", "not called", "skip pattern"):
        if kind in reason:
            return kind
    return reason


def _errors(actual: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    a, r = actual.detach().double().flatten(), reference.detach().double().flatten()
    return {
        "cosine": float(torch.nn.functional.cosine_similarity(a, r, dim=0)),
        "rel_l2": float((a - r).norm() / r.norm()),
    }


def _weight_mb(module: torch.nn.Module) -> float:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _inputs(module: Any, size: int, batch: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    # The timestep stays float32: in bf16, 499 would round to 500 (8 mantissa bits).
    names = [spec.name for spec in module.input_specs(size, size, batch)]
    tensors = module.example_inputs(size, size, batch)
    return tuple(
        t.to(device) if name == "timestep" or not t.is_floating_point() else t.to(device, dtype)
        for name, t in zip(names, tensors, strict=True)
    )


def bench_model(ref: str, size: int, args: argparse.Namespace, device: torch.device, timer: Timer,
                peaks: dict[str, float]) -> dict[str, Any]:
    from edgediff.models import load_model

    started = time.perf_counter()
    module = load_model(ref).build_component("denoiser").eval().to(device)
    print(f"\n== {ref} {size}x{size} batch {args.batch}: built in {time.perf_counter() - started:.0f} s", flush=True)

    # fp32 eager reference (TF32 off), to put bf16's own error beside the quantized variants'.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        reference = module(*_inputs(module, size, args.batch, device, torch.float32)).float()

    module = module.to(torch.bfloat16)
    inputs = _inputs(module, size, args.batch, device, torch.bfloat16)
    flops, by_kind, by_module = _flops(module, inputs)
    print(f"{flops / 1e12:.2f} TFLOP/step: " + ", ".join(f"{k} {v / flops:.0%}" for k, v in sorted(by_kind.items())),
          flush=True)

    variants: dict[str, torch.nn.Module] = {"bf16": module}
    layers: dict[str, Any] = {}
    input_amax = None
    if any(v.endswith("-static") for v in args.schemes):
        input_amax = record_input_amax(module, _calibration(inputs, module, size, args.calibration_timesteps))
    for scheme in args.schemes:
        base, _, kind = scheme.partition("-")
        quantized = copy.deepcopy(module)
        plan = plan_linear_layers(quantized, example_inputs=inputs, min_features=args.min_features)
        swapped = quantize_linear_layers(
            quantized, base, example_inputs=inputs, min_features=args.min_features,
            input_amax=input_amax if kind == "static" else None,
        )
        kept = Counter(_reason_kind(reason) for reason in plan.values() if reason)
        layers[scheme] = {
            "swapped": len(swapped),
            "kept": dict(kept),
            "swapped_flop_share": _swapped_flops(by_module, swapped) / flops,
            "kept_names": sorted(name for name, reason in plan.items() if reason),
        }
        print(f"{scheme}: {len(swapped)} linear layers swapped "
              f"({layers[scheme]['swapped_flop_share']:.0%} of FLOPs), kept: {dict(kept)}", flush=True)
        variants[scheme] = quantized

    runs: dict[str, Callable[[], torch.Tensor]] = {}
    outputs: dict[str, torch.Tensor] = {}
    compile_s: dict[str, float] = {}
    graph_breaks: dict[str, int] = {}
    failed: dict[str, str] = {}
    for name, variant in variants.items():
        fn = torch.compile(variant, mode=args.mode) if args.compile else variant
        torch._dynamo.utils.counters.clear()
        started = time.perf_counter()
        try:
            with torch.no_grad():
                outputs[name] = fn(*inputs).float()
                fn(*inputs)  # a second call: any recompilation happens here, not in the timed rounds
            if device.type == "cuda":
                torch.cuda.synchronize()
        except Exception as exc:  # one variant failing to compile must not lose the others' numbers
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            print(f"{name}: FAILED {failed[name]}", flush=True)
            continue
        compile_s[name] = time.perf_counter() - started
        graph_breaks[name] = sum(torch._dynamo.utils.counters["graph_break"].values())
        print(f"{name}: compiled and ran in {compile_s[name]:.0f} s, {graph_breaks[name]} graph breaks", flush=True)

        def run(fn: Callable[..., torch.Tensor] = fn) -> torch.Tensor:
            with torch.no_grad():
                return fn(*inputs)

        runs[name] = run

    for run in runs.values():  # warm-up after every compile, so no variant times a cold cache
        timer.run(run, 3)
    samples: dict[str, list[float]] = {n: [] for n in runs}
    round_medians: dict[str, list[float]] = {n: [] for n in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            times = timer.run(run, args.per_round)
            samples[name] += times
            round_medians[name].append(statistics.median(times))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {round_medians[n][-1]:.2f} ms" for n in runs),
              flush=True)

    results: dict[str, Any] = {}
    for name in runs:
        p50 = statistics.median(samples[name])
        tflops = flops / (p50 / 1e3) / 1e12
        own_peak = peaks.get(_OWN_PEAK.get(name, name))
        results[name] = {
            "p50_ms": p50,
            "min_ms": min(samples[name]),
            "runs": len(samples[name]),
            "speedup_vs_bf16": statistics.median(
                b / v for b, v in zip(round_medians["bf16"], round_medians[name], strict=True)
            ) if "bf16" in runs else None,
            "tflops": tflops,
            "share_of_bf16_peak": tflops / peaks["bf16"] if "bf16" in peaks else None,
            "share_of_own_peak": tflops / own_peak if own_peak else None,
            "compile_s": compile_s[name],
            "graph_breaks": graph_breaks[name],
            "weights_mb": _weight_mb(variants[name]),
            "error_vs_fp32": _errors(outputs[name], reference),
            "error_vs_bf16": _errors(outputs[name], outputs["bf16"]) if "bf16" in outputs else None,
        }
        e = results[name]
        print(f"{name}: p50 {p50:.2f} ms, {e['speedup_vs_bf16'] or 0:.2f}x vs bf16, {tflops:.0f} TFLOP/s, "
              f"cos vs bf16 {(e['error_vs_bf16'] or {}).get('cosine', float('nan')):.5f}, "
              f"rel L2 vs fp32 {e['error_vs_fp32']['rel_l2']:.4f}", flush=True)

    del variants, runs, outputs
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "model": ref, "height": size, "width": size, "batch": args.batch,
        "tflop_per_step": flops / 1e12,
        "flop_share_by_kind": {k: v / flops for k, v in by_kind.items()},
        "layers": layers, "results": results, "failed": failed,
    }


def _calibration(inputs: tuple[torch.Tensor, ...], module: Any, size: int, count: int) -> list[tuple[torch.Tensor, ...]]:
    """The bench inputs at ``count`` timesteps spread evenly over [0, 999] (static scales see the whole schedule)."""
    names = [spec.name for spec in module.input_specs(size, size, inputs[0].shape[0])]
    where = names.index("timestep")
    passes = []
    for t in torch.linspace(0, 999, count).round().tolist():
        timestep = torch.full_like(inputs[where], t)
        passes.append(inputs[:where] + (timestep,) + inputs[where + 1:])
    return passes


def _host(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, sm_count=props.multi_processor_count, cuda=torch.version.cuda)
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        pass
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    return info


def _markdown(report: dict[str, Any]) -> str:
    peaks = report["peaks_tflops"]
    lines = [
        f"Denoiser step, bf16 vs fp8 / int8 W8A8 (linear layers; dynamic per-row or static per-tensor "
        f"activation scales), batch {report['batch']}, "
        f"torch.compile mode `{report['compile_mode']}`, on {report['host'].get('gpu', report['device'])}",
        "",
        "Dense peaks measured in the same run (8192³): " + (", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
                                                            + " TFLOP/s" if peaks else "none (no GPU)")
        + (f" (first of {len(report['runs'])} runs, one per model; each model's shares use its own run's peaks)"
           if len(report.get("runs", [])) > 1 else ""),
        "",
        "| model | variant | p50 ms | speedup vs bf16 | TFLOP/s | share of bf16 peak | share of own peak "
        "| cos vs bf16 | rel L2 vs bf16 | rel L2 vs fp32 | weights MiB | compile s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    for m in report["models"]:
        label = f"`{m['model']}` {m['height']}² ({m['tflop_per_step']:.2f} TFLOP)"
        for name, r in m["results"].items():
            vb = r["error_vs_bf16"] or {}
            lines.append(
                f"| {label} | {name} | {r['p50_ms']:.2f} | {r['speedup_vs_bf16'] or 0:.2f}x | {r['tflops']:.1f} "
                f"| {pct(r['share_of_bf16_peak'])} | {pct(r['share_of_own_peak'])} "
                f"| {vb.get('cosine', float('nan')):.5f} | {vb.get('rel_l2', float('nan')):.4f} "
                f"| {r['error_vs_fp32']['rel_l2']:.4f} | {r['weights_mb']:.0f} | {r['compile_s']:.0f} |"
            )
        for name, why in m["failed"].items():
            lines.append(f"| {label} | {name} | failed: {why} | | | | | | | | | |")
    lines.append("")
    for m in report["models"]:
        kinds = ", ".join(f"{k} {v:.0%}" for k, v in sorted(m["flop_share_by_kind"].items()))
        lines.append(f"- `{m['model']}`: FLOPs by op: {kinds}.")
        for scheme, info in m["layers"].items():
            lines.append(f"  {scheme}: {info['swapped']} linear layers quantized "
                         f"({info['swapped_flop_share']:.0%} of FLOPs); kept in bf16: {info['kept'] or 'none'}.")
    lines += ["", "Random-weight models (`config:`): errors are indicative only; trained weights have activation "
              "outliers that random ones lack.", "", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def _model_spec(text: str) -> tuple[str, int]:
    ref, _, size = text.rpartition("@")
    if not ref or not size.isdigit():
        raise argparse.ArgumentTypeError(f"expected MODEL@SIZE (e.g. config:sd15@512), got {text!r}")
    return ref, int(size)


def merge_reports(paths: list[Path]) -> dict[str, Any]:
    """One report of several runs' models: the first run's header, each run's peaks kept beside its models."""
    reports = [json.loads(path.read_text()) for path in paths]
    merged = dict(reports[0])
    merged["models"] = [m | {"peaks_tflops": r["peaks_tflops"]} for r in reports for m in r["models"]]
    merged["runs"] = [{"command": r["command"], "peaks_tflops": r["peaks_tflops"], "host": r["host"]} for r in reports]
    merged["command"] = " ; ".join(r["command"] for r in reports)
    return merged


def _write(report: dict[str, Any], out: Path) -> None:
    write_result(out / "gpu_quant_step", report, _markdown(report), echo=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=_model_spec, default=[_model_spec(m) for m in DEFAULT_MODELS],
                        help="MODEL@SIZE, e.g. config:sd15@512")
    parser.add_argument("--batch", type=int, default=2, help="denoiser batch (2: classifier-free guidance)")
    parser.add_argument("--schemes", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--calibration-timesteps", type=int, default=8,
                        help="forward passes that calibrate the -static variants' activation scales")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--mode", default="default", help="torch.compile mode")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="eager (CPU dry runs)")
    parser.add_argument("--min-features", type=int, default=64, help="narrower linear layers stay bf16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--merge", nargs="+", type=Path, help="join these runs' JSON reports into --out, run nothing")
    args = parser.parse_args()
    if args.merge:
        if missing := [str(path) for path in args.merge if not path.is_file()]:
            parser.error(f"no such report: {', '.join(missing)}; pass the gpu_quant_step.json files of earlier runs")
        try:
            report = merge_reports(args.merge)
        except (json.JSONDecodeError, KeyError) as exc:
            parser.error(f"not a gpu_quant_step report ({type(exc).__name__}: {exc}); pass gpu_quant_step.json files")
        _write(report, args.out)
        print(_markdown(report))
        return

    device = torch.device(args.device)
    timer = Timer(device)
    host = _host(device)
    print(json.dumps(host), flush=True)
    report: dict[str, Any] = {
        "benchmark": "gpu_quant_step",
        "device": str(device),
        "batch": args.batch,
        "compile_mode": args.mode if args.compile else "eager",
        "rounds": args.rounds,
        "per_round": args.per_round,
        "host": host,
        "command": "python -m tools.bench.gpu_quant_step " + " ".join(sys.argv[1:]),
        "peaks_tflops": _peaks(device, timer),
        "models": [],
    }
    for ref, size in args.models:
        report["models"].append(bench_model(ref, size, args, device, timer, report["peaks_tflops"]))
        _write(report, args.out)
    print("\n" + _markdown(report), flush=True)


if __name__ == "__main__":
    main()
