"""How a bundle's sessions wait between parallel regions, timed side by side: whole images per spin policy.

ONNX Runtime's workers spin-wait by default, also after a run returns; in a pipeline that steals the
cores of the component that runs next. Turning spinning off costs every operator a wake-up. This
bench opens the same bundle once per policy in one process (each pipeline has its own thread pools)
and times whole images in alternating rounds, so machine noise hits every policy alike.

    python -m tools.bench.session_spin --bundle BUNDLE_DIR --policies never within-run default \\
        --steps 4 --rounds 8 --per-round 5

Reports per policy the median image and denoiser-step latency, and the median of per-round ratios
to the first policy. Writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import get_args

import numpy as np

from tools.bench.compare import median_ratio, rotated
from tools.bench.results import host_line, write_result


def main(argv: list[str] | None = None) -> None:
    from edgediff.runtimes.base import SpinPolicy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle folder (edgediff export)")
    parser.add_argument("--policies", nargs="+", choices=get_args(SpinPolicy), default=["never", "within-run"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="threads per session (default: the engine's)")
    parser.add_argument("--prompt", default="a red circle")
    parser.add_argument("--label", default="", help="suffix of the result's file name")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args(argv)

    from edgediff.bundle import open_bundle
    from edgediff.errors import EdgeDiffError
    from edgediff.profile.host import host_info
    from edgediff.runtimes.pipeline import BundlePipeline

    try:
        bundle = open_bundle(args.bundle)
    except EdgeDiffError as exc:
        raise SystemExit(f"error: {exc}") from None
    pipes = {policy: BundlePipeline(bundle, threads=args.threads, spin=policy) for policy in args.policies}
    for pipe in pipes.values():  # warm-up: first runs allocate and pick kernels
        pipe(args.prompt, steps=args.steps)

    images: dict[str, list[float]] = {p: [] for p in pipes}
    steps: dict[str, list[float]] = {p: [] for p in pipes}
    round_images: dict[str, list[float]] = {p: [] for p in pipes}
    round_steps: dict[str, list[float]] = {p: [] for p in pipes}
    for r in range(args.rounds):
        for policy in rotated(list(pipes), r):  # each policy runs first equally often
            pipe = pipes[policy]
            image_ms, step_ms = [], []
            for _ in range(args.per_round):
                started = time.perf_counter()
                generation = pipe(args.prompt, steps=args.steps)
                image_ms.append((time.perf_counter() - started) * 1e3)
                step_ms.append(generation.timings_ms["denoise_ms"] / args.steps)
            images[policy] += image_ms
            steps[policy] += step_ms
            round_images[policy].append(float(np.median(image_ms)))
            round_steps[policy].append(float(np.median(step_ms)))
        print(f"round {r + 1}/{args.rounds}: "
              + ", ".join(f"{p} {round_images[p][-1]:.1f} ms" for p in pipes), flush=True)

    base = args.policies[0]
    results = {
        policy: {
            "image_p50_ms": float(np.median(images[policy])),
            "step_p50_ms": float(np.median(steps[policy])),
            "runs": len(images[policy]),
            f"image_speedup_vs_{base}": median_ratio(round_images[base], round_images[policy]),  # type: ignore[arg-type]
            f"step_speedup_vs_{base}": median_ratio(round_steps[base], round_steps[policy]),  # type: ignore[arg-type]
        }
        for policy in pipes
    }
    source = bundle.manifest["provenance"]["source"]
    target = bundle.manifest["target"]["name"]
    command = "python -m tools.bench.session_spin --bundle BUNDLE " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(shlex.quote, map(str, v))) if isinstance(v, list) else shlex.quote(str(v))}"
        for k, v in vars(args).items() if k not in ("bundle", "out", "label") and v not in (None, ""))
    report = {
        "benchmark": "session_spin",
        "source": source,
        "target": target,
        "runtime": bundle.runtime,
        "precision": bundle.precision,
        "height": bundle.pipeline["height"],
        "width": bundle.pipeline["width"],
        "steps": args.steps,
        "rounds": args.rounds,
        "per_round": args.per_round,
        "results": results,
        "host": host_info(),
        "command": command,
    }
    lines = [
        f"Spin policies of `{source}` {report['height']}x{report['width']}, {target} "
        f"({bundle.runtime}) {bundle.precision}, {args.steps} steps, {args.rounds} rounds x {args.per_round}.",
        host_line(report["host"]),
        "",
        f"| policy | image p50 ms | step p50 ms | image vs {base} | step vs {base} |",
        "|---|---:|---:|---:|---:|",
    ]
    for policy, r in results.items():
        lines.append(f"| {policy} | {r['image_p50_ms']:.1f} | {r['step_p50_ms']:.1f} | "
                     f"{r[f'image_speedup_vs_{base}']:.2f}x | {r[f'step_speedup_vs_{base}']:.2f}x |")
    lines += ["", f"Command: `{command}`"]
    stem = f"session_spin_{source.replace(':', '_')}_{target}" + (f"_{args.label}" if args.label else "")
    write_result(args.out / stem, report, "\n".join(lines))


if __name__ == "__main__":
    main()
