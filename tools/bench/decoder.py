"""A distilled VAE decoder, measured: the evaluator's scores of its images against the source decoder's.

For each zoo model and step count, one PyTorch run makes the final latents of ``--prompts`` held-out
prompts (seeds from ``--seed``); both decoders decode the same latents, so every difference is the
decoder's. Reported per cell: adherence and FD of both, PSNR/SSIM of the distilled decoder's images
against the source's, and each decoder's GFLOP per image. Decoder latency on a target is in the
end-to-end columns of ``python -m tools.bench compare --tiny-decoder``.

    python -m tools.bench.decoder --models zoo:shapes-unet zoo:shapes-dit --steps 4 30 --prompts 128

Writes ``decoder_zoo.{json,md}`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tools.bench.results import write_result


def _decode_uint8(decode: Any, latents: Any) -> np.ndarray:
    import torch

    with torch.no_grad():
        images = decode(latents).clamp(0, 1)
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def measure(model: str, steps: int, prompts: list[str], seed: int, decoder: str) -> dict[str, Any]:
    import torch

    from edgediff.distill.decoder_swap import decoder_folder
    from edgediff.distill.tiny_decoder import decoder_gflop, load_tiny_decoder
    from edgediff.eval import evaluate_images
    from edgediff.eval.metrics import psnr, ssim
    from edgediff.models import load_model
    from edgediff.zoo.sampler import ZooSampler

    sampler = ZooSampler.from_folder(model)
    folder = decoder_folder(load_model(model), decoder)
    tiny = load_tiny_decoder(folder)
    scale = sampler.vae.config.scaling_factor

    def source(latents: torch.Tensor) -> torch.Tensor:
        return sampler.vae.decode(latents / scale).sample / 2 + 0.5

    latents = torch.cat([sampler.sample_latents(prompts[i:i + 32], list(range(seed + i, seed + i + len(prompts[i:i + 32]))),
                                                steps, float(sampler.defaults["default_guidance_scale"]))
                         for i in range(0, len(prompts), 32)])
    reference, distilled = _decode_uint8(source, latents), _decode_uint8(tiny, latents)
    scores = {name: evaluate_images(images, prompts, seed) for name, images in
              (("source", reference), ("distilled", distilled))}
    one = latents[:1]
    return {
        "model": model, "steps": steps, "prompts": len(prompts), "seed": seed, "decoder": str(folder),
        "gflop": {"source": decoder_gflop(source, one), "distilled": decoder_gflop(tiny, one)},
        "psnr_vs_source": float(psnr(distilled, reference).mean()),
        "ssim_vs_source": float(ssim(distilled, reference).mean()),
        **{f"{k}_{name}": scores[name][k] for name in scores for k in ("adherence", "fd")},
        "adherence_drop": scores["source"]["adherence"] - scores["distilled"]["adherence"],
        "fd_floor": scores["source"]["fd_floor"],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Distilled VAE decoder (`--decoder {result['decoder']}`) against each zoo model's own decoder, on the "
             f"same latents; {result['prompts']} held-out prompts of set v1 from prompt {result['offset']}, "
             f"seeds {result['seed']}.., guidance 5.", "",
             "| model | steps | GFLOP source / distilled | PSNR vs source | SSIM | adherence source | adherence distilled "
             "| drop (pts) | FD source | FD distilled | FD floor |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["cells"]:
        lines.append(f"| {c['model']} | {c['steps']} | {c['gflop']['source']:.2f} / {c['gflop']['distilled']:.2f} "
                     f"| {c['psnr_vs_source']:.1f} dB | {c['ssim_vs_source']:.3f} | {c['adherence_source']:.3f} "
                     f"| {c['adherence_distilled']:.3f} | {c['adherence_drop'] * 100:+.1f} | {c['fd_source']:.1f} "
                     f"| {c['fd_distilled']:.1f} | {c['fd_floor']:.1f} |")
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.decoder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["zoo:shapes-unet", "zoo:shapes-dit"])
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 30])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--offset", type=int, default=64, help="first prompt of set v1 (0-63 tune quality searches)")
    parser.add_argument("--seed", type=int, default=64)
    parser.add_argument("--decoder", default="tiny")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    from edgediff.eval import load_prompt_set

    prompts = list(load_prompt_set("v1", args.offset + args.prompts))[args.offset:]
    cells = []
    for model in args.models:
        for steps in args.steps:
            cell = measure(model, steps, prompts, args.seed, args.decoder)
            print(json.dumps(cell), flush=True)
            cells.append(cell)
    result = {"decoder": args.decoder, "prompts": args.prompts, "offset": args.offset, "seed": args.seed, "cells": cells,
              "host": {"machine": platform.machine(), "python": platform.python_version()},
              "command": "python -m tools.bench.decoder " + " ".join(sys.argv[1:] if argv is None else argv)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "decoder_zoo", result, markdown(result))


if __name__ == "__main__":
    main()
