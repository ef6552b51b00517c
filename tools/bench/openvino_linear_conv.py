"""OpenVINO's int8 kernels for one stack of Linear layers, as matmuls and as 1x1 convolutions.

Why ``Int8Static.linears_as_convolutions`` exists, on whichever CPU this runs: ``--layers`` Linear
layers of ``--channels`` features (GELU between) on ``--tokens`` tokens, traced four ways (Linear
or ``LinearAs1x1Conv``; fp32 or NNCF int8 through edgediff's own OpenVINO backend), compiled as a
bundle is, and timed in alternating rounds; ratios are per round, against the fp32 Linear.

    python -m tools.bench.openvino_linear_conv --out docs/benchmarks

A host without NNCF (a lent machine with only the OpenVINO runtime) times int8 IRs quantized
elsewhere: ``--save-int8 DIR`` writes them after quantizing, ``--int8-from DIR`` reads them instead.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools.bench.results import host_line, write_result

FORMS = ("linear-fp32", "linear-int8", "conv1x1-fp32", "conv1x1-int8")
INT8_FORMS = tuple(f for f in FORMS if f.endswith("int8"))


def _stack(layers: int, channels: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(channels, channels), nn.GELU())]).eval()


def _models(args: argparse.Namespace) -> dict[str, Any]:
    """Form name -> OpenVINO model (float, or NNCF int8 on calibration feeds of the same shape)."""
    import openvino as ov
    import torch

    from edgediff.quantize.nncf_openvino import quantize_openvino
    from edgediff.quantize.openvino_linear_conv import linears_as_1x1_convolutions
    from edgediff.quantize.schemes import Int8Static

    module = _stack(args.layers, args.channels)
    carried = _read_int8(args.int8_from) if args.int8_from else {}
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((1, args.tokens, args.channels)).astype(np.float32)} for _ in range(4)]
    models: dict[str, Any] = {}
    for form in ("linear", "conv1x1"):
        swap = linears_as_1x1_convolutions(module) if form == "conv1x1" else contextlib.nullcontext()
        with torch.no_grad(), swap:
            model = ov.convert_model(module, example_input=torch.from_numpy(feeds[0]["x"]))
        model.inputs[0].get_tensor().set_names({"x"})
        models[f"{form}-fp32"] = model
        int8 = carried.get(f"{form}-int8")
        if int8 is None:
            int8 = quantize_openvino(model, Int8Static(calibration_samples=len(feeds)), feeds)
        models[f"{form}-int8"] = int8
    if args.save_int8:
        _save_int8(models, args.save_int8)
    return models


def _read_int8(folder: Path) -> dict[str, Any]:
    import openvino as ov

    missing = [f for f in INT8_FORMS if not (folder / f"{f}.xml").is_file()]
    if missing:
        raise SystemExit(f"error: {folder} has no {missing[0]}.xml; write the IRs with --save-int8 {folder} first")
    core = ov.Core()
    return {f: core.read_model(folder / f"{f}.xml") for f in INT8_FORMS}


def _save_int8(models: dict[str, Any], folder: Path) -> None:
    """Both IRs written beside ``folder`` and moved into place together, so a failed save leaves none."""
    import shutil
    import tempfile

    import openvino as ov

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for form in INT8_FORMS:
            ov.save_model(models[form], staging / f"{form}.xml", compress_to_fp16=False)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from edgediff.profile.host import host_info
    from edgediff.runtimes.openvino import compile_for_bundle

    models = _models(args)
    x = np.random.default_rng(2).standard_normal((1, args.tokens, args.channels)).astype(np.float32)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(args.threads)}
    requests = {form: compile_for_bundle(m, form.split("-")[1], config).create_infer_request()
                for form, m in models.items()}
    times: dict[str, list[float]] = {form: [] for form in FORMS}
    ratios: dict[str, list[float]] = {form: [] for form in FORMS}
    for request in requests.values():
        request.infer([x])  # warm-up
    for r in range(args.rounds):
        this_round: dict[str, float] = {}
        for form in FORMS[r % len(FORMS):] + FORMS[: r % len(FORMS)]:  # each form leads once in four rounds
            samples = []
            for _ in range(args.per_round):
                started = time.perf_counter()
                requests[form].infer([x])
                samples.append((time.perf_counter() - started) * 1e3)
            this_round[form] = statistics.median(samples)
            times[form] += samples
        for form in FORMS:
            ratios[form].append(this_round["linear-fp32"] / this_round[form])
        print(f"round {r + 1}: " + ", ".join(f"{f} {this_round[f]:.1f} ms" for f in FORMS), flush=True)
    flop = 2 * args.tokens * args.channels * args.channels * args.layers
    rows = [{"form": form, "p50_ms": statistics.median(times[form]),
             "speedup_vs_linear_fp32": statistics.median(ratios[form]),
             "gops_per_s": flop / 1e9 / (statistics.median(times[form]) / 1e3)} for form in FORMS]
    return {"tokens": args.tokens, "channels": args.channels, "layers": args.layers, "threads": args.threads,
            "rounds": args.rounds, "per_round": args.per_round, "rows": rows, "host": host_info()}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['layers']} Linear layers {result['channels']}x{result['channels']} on {result['tokens']} "
             f"tokens, OpenVINO CPU plugin, {result['threads']} threads, {result['rounds']} alternating rounds x "
             f"{result['per_round']}; speedup = median over rounds of linear-fp32's time / the form's.", "",
             "| form | p50 ms | speedup vs linear-fp32 | G(FL)OP/s |", "|---|---:|---:|---:|"]
    lines += [f"| {r['form']} | {r['p50_ms']:.1f} | {r['speedup_vs_linear_fp32']:.2f}x | {r['gops_per_s']:.0f} |"
              for r in result["rows"]]
    return "\n".join([*lines, "", host_line(result["host"])]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--label", help="suffix of the result files, so another host keeps its own table")
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--channels", type=int, default=1280)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-int8", type=Path, help="also write the int8 IRs here (for a host without NNCF)")
    parser.add_argument("--int8-from", type=Path, help="read the int8 IRs from here instead of quantizing")
    args = parser.parse_args()
    result = run(args)
    result["command"] = "python -m tools.bench.openvino_linear_conv " + " ".join(__import__("sys").argv[1:])
    stem = args.out / ("openvino_linear_conv" + (f"_{args.label}" if args.label else ""))
    write_result(stem, result, f"Command: `{result['command']}`\n\n{markdown(result)}")


if __name__ == "__main__":
    main()
