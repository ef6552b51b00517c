"""Caching, measured: quality and speed of each cache interval on one cached bundle.

A cached bundle's graphs do not depend on the interval (the full denoiser with its features, and the
shallow one: DeepCache for UNets, Δ-cache for PixArt), so one bundle serves every interval: for each, the evaluator scores ``--prompts``
images against the same bundle with every step full (same prompts and noise; that graph matches
PyTorch to ~1e-6), and the time per image at ``--timed-steps`` steps is measured for every interval
in alternating rounds, the ratio to every-step-full taken per round.

    python -m tools.bench.cache --model zoo:shapes-unet --target intel-cpu --intervals 2 3 4 5 8
    python -m tools.bench.cache --model zoo:shapes-dit --target intel-cpu --intervals 2 3 4 --quality-steps 4

Writes ``cache_<model>_<target>[_<N>steps].{json,md}`` under ``--out`` (``--quality-steps N`` scores the
images at N steps instead of the bundle's default).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.results import write_result


def _bundle(model: str, target: str, root: Path) -> Path:
    from edgediff.api import export_bundle

    out = root / f"{model.replace(':', '_')}-{target}-cached"
    if not (out / "manifest.json").is_file():
        export_bundle(model, target, out, force=True, precision="fp32",
                      options={"cache_interval": 2, "quality_report": False})
    return out


class _Plan:
    """The bundle's pipeline under one interval (1: every step full) and step count, as the quality probe calls it."""

    def __init__(self, pipe: Any, interval: int, steps: int) -> None:
        self.pipe, self.interval, self.steps, self.pipeline = pipe, interval, steps, pipe.pipeline

    def __call__(self, prompt: str = "", **kwargs: Any) -> Any:
        return self.pipe(prompt, cache_interval=self.interval, steps=self.steps, **kwargs)


def _timed(pipe: Any, intervals: list[int], steps: list[int], rounds: int, prompt: str) -> dict[str, Any]:
    """ms per image for every (steps, interval), calls alternating within each round."""
    times: dict[tuple[int, int], list[float]] = {(s, n): [] for s in steps for n in [1, *intervals]}
    for round_index in range(rounds + 1):
        for key in times:
            started = time.perf_counter()
            pipe(prompt, seed=round_index, steps=key[0], cache_interval=key[1])
            if round_index:  # round 0 warms every plan up
                times[key].append((time.perf_counter() - started) * 1e3)
    result: dict[str, Any] = {}
    for s in steps:
        base = times[(s, 1)]
        result[str(s)] = {str(n): {"p50_ms": statistics.median(times[(s, n)]),
                                   "speedup": statistics.median(b / t for b, t in zip(base, times[(s, n)], strict=True))}
                          for n in [1, *intervals]}
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from edgediff.profile.host import host_info
    from edgediff.quantize.quality import QualityProbe
    from edgediff.runtimes.pipeline import BundlePipeline

    bundle = _bundle(args.model, args.target, args.bundles)
    pipe = BundlePipeline(bundle, threads=args.threads)
    steps = pipe.pipeline["steps"]
    quality_steps = args.quality_steps or steps
    probe = QualityProbe(_Plan(pipe, 1, quality_steps), args.prompts, args.seed)
    quality: dict[str, Any] = {}
    for interval in args.intervals:
        measured = probe.measure_pipeline(_Plan(pipe, interval, quality_steps))
        full = sum(i % interval == 0 for i in range(quality_steps))
        quality[str(interval)] = {"full_steps": full, **measured}
        print(f"interval {interval}: {full}/{quality_steps} full steps, PSNR {measured['psnr']:.1f} dB"
              + (f", adherence drop {measured['adherence_drop'] * 100:+.1f} pts" if "adherence_drop" in measured
                 else ""), file=sys.stderr, flush=True)
    prompt = probe.prompts[0] if pipe.pipeline["conditioning"] == "text" else ""
    speed = _timed(pipe, args.intervals, sorted({steps, *args.timed_steps}), args.rounds, prompt)
    return {
        "benchmark": "cache", "command": "python -m tools.bench.cache " + " ".join(sys.argv[1:]),
        "model": args.model, "target": args.target, "threads": args.threads, "steps": steps,
        "quality_steps": quality_steps,
        "prompts": args.prompts, "seed": args.seed, "rounds": args.rounds,
        "against": "the same bundle with every step on the full denoiser, same prompts and noise",
        "teacher": {k: v for k, v in probe.teacher_scores.items() if isinstance(v, float | int)},
        "quality": quality, "speed": speed, "host": host_info(), "python": platform.python_version(),
    }


def markdown(result: dict[str, Any]) -> str:
    steps, quality_steps = result["steps"], result.get("quality_steps", result["steps"])
    timed = [s for s in result["speed"] if s != str(steps)]
    lines = [f"# Cache intervals: `{result['model']}` on `{result['target']}`", "",
             f"Quality: {result['prompts']} prompts at {quality_steps} steps (the bundle's default: {steps}), "
             f"against {result['against']}. "
             f"Speed: ms per image (text encoder, steps, VAE), medians of {result['rounds']} alternating rounds; "
             "speedup = median of per-round ratios to every step full.", "",
             "| interval | full steps | PSNR dB | SSIM | adherence drop (pts) | FD | "
             f"ms/image @{steps} | speedup @{steps} | " + " | ".join(f"ms/image @{s} | speedup @{s}" for s in timed) + " |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(timed)]
    for interval, q in result["quality"].items():
        cells = [interval, f"{q['full_steps']}/{quality_steps}", f"{q['psnr']:.1f}", f"{q['ssim']:.3f}",
                 f"{q['adherence_drop'] * 100:+.1f}" if "adherence_drop" in q else "-",
                 f"{q['fd']:.0f} (full: {q['teacher_fd']:.0f})" if "fd" in q else "-"]
        for s in [str(steps), *timed]:
            cell = result["speed"][s][interval]
            cells += [f"{cell['p50_ms']:.0f}", f"{cell['speedup']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    full = [f"{result['speed'][s]['1']['p50_ms']:.0f} ms at {s} steps" for s in [str(steps), *timed]]
    lines += ["", f"Every step full: {', '.join(full)}.", "", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.cache", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:shapes-unet")
    parser.add_argument("--target", default="intel-cpu")
    parser.add_argument("--intervals", type=int, nargs="+", default=[2, 3, 4, 5, 8])
    parser.add_argument("--prompts", type=int, default=32, help="images per interval for quality")
    parser.add_argument("--seed", type=int, default=64, help="first seed and prompt index (past the search prompts)")
    parser.add_argument("--quality-steps", type=int, help="steps of the quality images [the bundle's default]")
    parser.add_argument("--timed-steps", type=int, nargs="*", default=[4], help="step counts timed besides the bundle's")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundles", type=Path, default=Path("~/.cache/edgediff-bench/cache-bundles"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args(argv)
    args.bundles = args.bundles.expanduser()
    if any(n < 2 for n in args.intervals):
        parser.error("--intervals must be at least 2 (1, every step full, is the reference)")
    result = run(args)
    stem = args.out / (f"cache_{args.model.replace(':', '_')}_{args.target}"
                       + (f"_{args.quality_steps}steps" if args.quality_steps else ""))
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_result(stem, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
