"""Quantization, measured: quality and size on the zoo models, per-step speed at real scale.

Two parts, both written to ``--out`` as JSON plus a markdown table:

1. ``zoo``: ``zoo:shapes-unet`` and ``zoo:shapes-dit`` built fp32, int8 and int4w for every CPU target,
   each bundle scored by the evaluator on ``--prompts`` prompts against the same target's fp32 bundle
   (same prompts and noise; it matches the PyTorch model to ~1e-5): adherence and its drop, FD, PSNR,
   denoiser size and ms per step. ``--max-quality-drop int8=0.01`` builds that precision with a
   quality target searched on ``--quality-prompts`` prompts; ``--eval-offset`` scores every bundle on
   prompts after those, so the reported quality is held out from the search.
2. ``speed``: ``config:sd-turbo`` at 256x256 (random weights, latency only), fp32 and int8 denoisers of
   each runtime timed side by side in alternating rounds; the ratio is taken per round.

    python -m tools.bench.quantize zoo --out docs/benchmarks --bundles /tmp/qbench
    python -m tools.bench.quantize speed --out docs/benchmarks --bundles /tmp/qbench

Bundles are built under ``--bundles`` and reused when present; a cell that fails is recorded with
its error rather than ending the run. ``zoo --update FILE.json`` reruns some cells of a published
table (say one target after a backend change) and writes them into it; the table keeps every command
that produced its rows, since each target is scored against its own fp32 bundle only.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.quantize.quality import QualityTarget
from tools.bench.results import host_line, write_result

TARGETS = ("x86-cpu", "intel-cpu", "arm64-cpu")
ZOO_MODELS = ("zoo:shapes-unet", "zoo:shapes-dit")
ZOO_PRECISIONS = ("fp32", "int8", "int4w")
# A precision word may name a scheme variant after a dash: ``int8-hybrid`` is int8 in optimum-intel's
# diffusion mode (weight-only int8 MatMuls, W8A8 convolutions), which ONNX and OpenVINO build;
# ``int8-conv`` traces OpenVINO's token-wise Linear layers as 1x1 convolutions (its AVX2 option).
SCHEME_VARIANTS = {"hybrid": {"hybrid": True}, "conv": {"linears_as_convolutions": True}}


def split_precision(word: str) -> tuple[str, dict[str, Any]]:
    """``int8-hybrid`` -> ("int8", {"hybrid": True}): the precision a build takes and its scheme options."""
    precision, _, variant = word.partition("-")
    if variant and variant not in SCHEME_VARIANTS:
        raise SystemExit(f"error: precision {word!r} names an unknown variant {variant!r}; known: "
                         f"{', '.join(SCHEME_VARIANTS)} (as in int8-hybrid)")
    return precision, dict(SCHEME_VARIANTS.get(variant, {}))


def builds_precision(target: Any, word: str) -> bool:
    """Whether ``target`` builds the precision word (``int8-hybrid``: int8 with that scheme variant)."""
    from edgediff.errors import EdgeDiffError
    from edgediff.quantize import check_scheme_options, get_scheme

    precision, scheme = split_precision(word)
    if precision not in target.precisions:
        return False
    if not scheme:
        return True
    try:
        check_scheme_options(target.format, get_scheme(precision, **scheme))
    except EdgeDiffError:
        return False
    return True


def _bundle(model: str, target: str, word: str, root: Path, **kw: Any) -> Path:
    """The bundle of one cell, built on first use; ``word`` is a precision, maybe with a scheme variant."""
    from edgediff.api import export_bundle

    precision, scheme = split_precision(word)
    options = kw.pop("options", {}) | ({"scheme": scheme} if scheme else {})
    default = QualityTarget.max_fallback_fraction
    drop, fraction = options.get("max_quality_drop"), options.get("max_fallback_fraction", default)
    target_words = "" if drop is None else f"-drop{drop}" + ("" if fraction == default else f"-float{fraction}")
    out = root / f"{model.replace(':', '_')}-{kw.get('height', 'native')}-{target}-{word}{target_words}"
    if not (out / "manifest.json").is_file():
        print(f"building {out.name}", flush=True)
        export_bundle(model, target, out, precision=precision, force=True, options=options,
                      progress=lambda m: print("   ", m, flush=True), **kw)
    return out


def _denoiser_bytes(bundle: Path) -> int:
    manifest = json.loads((bundle / "manifest.json").read_text())
    record = next(c for c in manifest["components"] if c["name"] == "denoiser")
    return int(sum(f["bytes"] for f in record["files"]))


def run_zoo(args: argparse.Namespace) -> dict[str, Any]:
    from edgediff.eval import evaluate_images, load_prompt_set, seeds_for
    from edgediff.eval_runner import bundle_facts, generator_for, pipeline_for
    from edgediff.runtimes.pipeline import BundlePipeline

    prompts = load_prompt_set("v1", args.eval_offset + args.prompts)[args.eval_offset:]
    seeds = seeds_for(len(prompts), args.eval_offset)
    rows: list[dict[str, Any]] = []
    teachers: list[dict[str, Any]] = []
    for model in args.models:
        for target in args.targets:
            teacher_images = None  # this target's fp32 bundle: the fp32 teacher as the target runs it
            for precision in ("fp32", *[p for p in args.precisions if p != "fp32"]):
                row: dict[str, Any] = {"model": model, "target": target, "precision": precision}
                try:
                    options = {"calibration_samples": args.calibration_samples,
                               "quality_prompts": args.quality_prompts, "quality_report": args.build_report}
                    if precision in args.max_quality_drop:
                        options["max_quality_drop"] = args.max_quality_drop[precision]
                        options["max_fallback_fraction"] = args.max_fallback_fraction
                    bundle = _bundle(model, target, precision, args.bundles, options=options)
                    pipe = BundlePipeline(bundle)
                    timings: list[dict[str, float]] = []
                    images = generator_for(pipe, timings=timings)(prompts, seeds)
                    if precision == "fp32":
                        teacher_images = images
                    result = evaluate_images(images, prompts, args.eval_offset, teacher_images)
                    facts = bundle_facts(pipe, timings, None)
                    assert facts is not None
                    quantization = pipe.bundle.components["denoiser"].get("quantization") or {}
                    if "kept_in_float" in quantization:
                        row["kept_in_float"] = quantization["kept_in_float"]
                    row |= {
                        "adherence": result["adherence"],
                        "fd": result["fd"],
                        "psnr_vs_fp32": result["psnr"],
                        "ssim_vs_fp32": result["ssim"],
                        "denoiser_bytes": facts["denoiser_bytes"],
                        "denoiser_step_ms": facts["denoiser_step_ms"],
                        "end_to_end_ms": facts["end_to_end_ms"],
                    }
                except Exception as exc:  # a failing cell is a result too
                    row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                print(json.dumps(row), flush=True)
                rows.append(row)
        if args.torch_teacher:  # the PyTorch fp32 model itself, for reference
            images = generator_for(pipeline_for(model))(prompts, seeds)
            teachers.append({"model": model} | evaluate_images(images, prompts, args.eval_offset))
    for row in rows:  # size and adherence against this target's fp32 bundle
        fp32 = next((r for r in rows if r["model"] == row["model"] and r["target"] == row["target"]
                     and r["precision"] == "fp32" and "denoiser_bytes" in r), None)
        if fp32 and "denoiser_bytes" in row:
            row["compression_vs_fp32"] = fp32["denoiser_bytes"] / row["denoiser_bytes"]
            row["adherence_drop_vs_fp32"] = fp32["adherence"] - row["adherence"]
    return {"part": "zoo", "prompts": len(prompts), "eval_offset": args.eval_offset,
            "quality_targets": {"max_quality_drop": args.max_quality_drop, "quality_prompts": args.quality_prompts,
                                "max_fallback_fraction": args.max_fallback_fraction},
            "teacher": "each target's fp32 bundle (same prompts and noise)",
            "torch_teacher": teachers, "rows": rows, "host": _host()}


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Each target's denoiser step at each precision, sessions open side by side and timed in alternating
    rounds; every precision's speedup is the median over rounds of the first precision's p50 over its own."""
    from edgediff.bundle import open_bundle
    from edgediff.runtimes.base import SessionOptions, open_session
    from edgediff.targets import get_target

    precisions = args.precisions
    reference = precisions[0]
    engines: dict[str, Any] = {}
    feeds: dict[str, dict[str, np.ndarray]] = {}
    builds: dict[str, Any] = {}
    for target in args.targets:
        for precision in precisions:
            key = f"{target}/{precision}"
            if not builds_precision(get_target(target), precision):
                continue  # an option of another runtime (int8-conv, int8-hybrid), not a failure
            try:
                bundle = open_bundle(_bundle(args.model, target, precision, args.bundles, height=args.size,
                                             width=args.size, components=("denoiser",),
                                             options={"calibration_samples": args.calibration_samples,
                                                      "quality_report": False}))
                component = bundle.components["denoiser"]
                samples = np.load(bundle.path / component["parity"]["samples"])
                feeds[key] = {k.removeprefix("input."): samples[k] for k in samples.files if k.startswith("input.")}
                # sessions take turns: one whose threads spin after its run would slow the next one
                engines[key] = open_session(bundle.runtime, bundle.entry("denoiser"), SessionOptions(
                    precision=bundle.precision, threads=args.threads, spin="within-run"))
                engines[key].run(feeds[key])  # warm-up
                builds[key] = {"denoiser_bytes": _denoiser_bytes(bundle.path), "parity": component["parity"],
                               "build_s": bundle.manifest["provenance"]["build_seconds"]}
            except Exception as exc:
                builds[key] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
                print(key, builds[key], flush=True)
    times: dict[str, list[float]] = {k: [] for k in engines}
    ratios: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for key, session in engines.items():
            for _ in range(args.per_round):
                started = time.perf_counter()
                session.run(feeds[key])
                times[key].append((time.perf_counter() - started) * 1e3)
        for key in engines:
            target = key.split("/")[0]
            base = times.get(f"{target}/{reference}")
            if base and key != f"{target}/{reference}":
                this_round = lambda t: float(np.median(t[-args.per_round:]))  # noqa: E731
                ratios.setdefault(key, []).append(this_round(base) / this_round(times[key]))
        print(f"round {r + 1}: " + ", ".join(f"{k} {np.median(v[-args.per_round:]):.1f} ms" for k, v in times.items()),
              flush=True)
    rows = []
    for target in args.targets:
        row: dict[str, Any] = {"target": target, "reference": reference}
        for precision in precisions:
            key = f"{target}/{precision}"
            row[precision] = builds.get(key, {}) | ({"p50_ms": float(np.median(times[key])), "runs": len(times[key])}
                                                  if times.get(key) else {})
            if key in ratios:
                row[precision]["speedup_median_of_rounds"] = float(np.median(ratios[key]))
        rows.append(row)
    return {"part": "speed", "model": args.model, "size": args.size, "precisions": list(precisions),
            "rounds": args.rounds, "per_round": args.per_round, "threads": args.threads, "rows": rows,
            "host": _host()}


def _host() -> dict[str, Any]:
    from edgediff.profile.host import host_info

    return host_info() | {"python": platform.python_version()}


def merge_zoo_rows(published: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """``published`` with each (model, target, precision) cell of ``rerun`` put in place of its own.

    Only runs scored alike may be merged: the same prompts from the same offset.
    """
    for key in ("prompts", "eval_offset"):
        if published.get(key) != rerun.get(key):
            raise SystemExit(f"--update: the published table has {key}={published.get(key)} and this run "
                             f"{rerun.get(key)}; rerun with the same --prompts and --eval-offset")
    cell = lambda row: (row["model"], row["target"], row["precision"])  # noqa: E731
    new = {cell(r): r for r in rerun["rows"]}
    rows = [new.pop(cell(r), r) for r in published["rows"]] + list(new.values())
    commands = [*published.get("commands", [published["command"]]), rerun["command"]]
    return published | {"rows": rows, "commands": commands, "command": commands[-1],
                        "hosts": [*published.get("hosts", [published.get("host")]), rerun.get("host")]}


def _zoo_markdown(result: dict[str, Any]) -> str:
    lines = [f"Zoo quantization, {result['prompts']} prompts from #{result.get('eval_offset', 0)} of set v1, against "
             f"{result['teacher']}. Quality targets: {result.get('quality_targets')}.",
             "", "| model | target | precision | adherence | drop vs fp32 (pts) | PSNR vs fp32 dB | FD | "
             "denoiser MiB | smaller | ms/step |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['target']} | {r['precision']} | failed: {r['error']} |||||||")
            continue
        drop = r.get("adherence_drop_vs_fp32")
        lines.append(
            f"| {r['model']} | {r['target']} | {r['precision']} | {r['adherence']:.3f} | "
            f"{'' if drop is None else f'{drop * 100:+.1f}'} | {r['psnr_vs_fp32']:.1f} | {r['fd']:.1f} | "
            f"{r['denoiser_bytes'] / 2**20:.2f} | {r.get('compression_vs_fp32', 1.0):.2f}x | {r['denoiser_step_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _speed_markdown(result: dict[str, Any]) -> str:
    precisions = result.get("precisions", ["fp32", "int8"])
    reference = precisions[0]
    lines = [f"{result['model']} {result['size']}x{result['size']} denoiser step, {result['threads']} threads, "
             f"{result['rounds']} alternating rounds x {result['per_round']}; speedup = median over rounds of "
             f"{reference}'s p50 / the precision's.", "",
             "| target | precision | p50 ms | speedup vs " + reference + " | denoiser MiB | parity rel L2 | |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        for precision in precisions:
            cell = r.get(precision, {})
            if not cell:
                continue  # not built for this target
            speedup = 1.0 if precision == reference else cell.get("speedup_median_of_rounds", float("nan"))
            lines.append(f"| {r['target']} | {precision} | {cell.get('p50_ms', float('nan')):.1f} | {speedup:.2f}x | "
                         f"{cell.get('denoiser_bytes', 0) / 2**20:.0f} | "
                         f"{cell.get('parity', {}).get('rel_l2_err', float('nan')):.4f} | {cell.get('error', '')} |")
    if result.get("host", {}).get("cpu_count"):  # CPU runs; a GPU run's host line names its GPU elsewhere
        lines += ["", host_line(result["host"])]
    return "\n".join(lines) + "\n"


def quality_targets(items: list[str]) -> dict[str, float]:
    """``--max-quality-drop`` words (``int8=0.01``) as {precision: drop}; a malformed word exits with one line."""
    targets: dict[str, float] = {}
    for item in items:
        precision, _, value = item.partition("=")
        try:
            if not precision:
                raise ValueError(item)
            targets[precision] = float(value)
        except ValueError:
            raise SystemExit(f"error: --max-quality-drop takes PRECISION=DROP (e.g. int8=0.01), got {item!r}") from None
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("zoo", "speed"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--bundles", type=Path, default=Path("/tmp/edgediff-qbench"))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--models", nargs="+", default=list(ZOO_MODELS))
    parser.add_argument("--precisions", nargs="+",
                        help=f"zoo: default {' '.join(ZOO_PRECISIONS)}; speed: default fp32 int8, the first is the "
                             "reference every speedup is against")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--eval-offset", type=int, default=0,
                        help="score prompts from this index on (past --quality-prompts: held out from the search)")
    parser.add_argument("--max-quality-drop", nargs="*", default=[], metavar="PRECISION=DROP",
                        help="build PRECISION with this adherence target, e.g. int8=0.01 int4w=0.03")
    parser.add_argument("--quality-prompts", type=int, default=16, help="prompts the quality search generates")
    parser.add_argument("--max-fallback-fraction", type=float, default=QualityTarget.max_fallback_fraction,
                        help="most of the denoiser's layers the quality search may keep in float")
    parser.add_argument("--calibration-samples", type=int, default=32)
    parser.add_argument("--update", type=Path, default=None,
                        help="zoo: write this run's cells into this published JSON (and its .md) instead of --out")
    parser.add_argument("--build-report", action="store_true", help="also write each bundle's build-time report")
    parser.add_argument("--torch-teacher", action="store_true", help="also score the PyTorch fp32 model")
    parser.add_argument("--model", default="config:sd-turbo")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--label", help="suffix of the result files, so a run on another host keeps its own table")
    args = parser.parse_args()
    args.max_quality_drop = quality_targets(args.max_quality_drop)
    args.precisions = args.precisions or list(ZOO_PRECISIONS if args.part == "zoo" else ("fp32", "int8"))
    for word in args.precisions:
        split_precision(word)  # an unknown variant fails here, before any build
    if args.update is not None and not (args.part == "zoo" and args.update.is_file()):
        parser.error(f"--update {args.update}: give the JSON of a published zoo table (it is not a file here)")
    args.bundles.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run_zoo(args) if args.part == "zoo" else run_speed(args)
    result["command"] = "python -m tools.bench.quantize " + " ".join(__import__("sys").argv[1:])
    name = ("quantize_zoo_" + "_".join(m.split(":")[-1] for m in args.models) if args.part == "zoo"
            else f"quantize_speed_{args.model.replace(':', '_')}_{args.size}"
            + ("" if tuple(args.targets) == TARGETS else "_" + "-".join(args.targets)))
    stem = args.out / (name + (f"_{args.label}" if args.label else ""))
    if args.part == "zoo" and args.update is not None:
        result = merge_zoo_rows(json.loads(args.update.read_text()), result)
        stem = args.update.with_suffix("")
    table = _zoo_markdown(result) if args.part == "zoo" else _speed_markdown(result)
    commands = "\n".join(f"- `{c}`" for c in result.get("commands", [result["command"]]))
    write_result(stem, result, f"Commands (later ones replace the rows they rerun):\n{commands}\n\n{table}"
                 if "commands" in result else f"Command: `{result['command']}`\n\n{table}", echo=False)
    print(table)


if __name__ == "__main__":
    main()
