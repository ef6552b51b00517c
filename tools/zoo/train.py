"""Train the shapes zoo: ``python3 -m tools.zoo.train STAGE [options]`` from the repository root.

Stages (each seeded, each writing a JSON log with its loss curves next to its checkpoint):
  data        render a slice of the procedural stream to disk (parallel, deterministic)
  vae         AutoencoderKL on renders -> vae.safetensors (+ scaling_factor in its metadata)
  classifier  the evaluator's attribute classifier -> classifier.safetensors
  diffusion   text encoder + UNet + DiT -> text_encoder/unet/transformer.safetensors
  tiny-decoder  a TinyDecoder distilled from the shipped VAE decoder -> NAME/{config.json,model.safetensors}
  guidance    a one-pass student distilled from a shipped denoiser's guided prediction -> unet_guided/ or transformer_guided/
The exact command lines used for the shipped models are in tools/zoo/README.md; ``tools.zoo.pack``
turns the checkpoints into the diffusers folders under edgediff/zoo/models/.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m tools.zoo.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="stage", required=True)
    data = sub.add_parser("data")
    data.add_argument("--out", type=Path, required=True)
    data.add_argument("--seed", type=int, required=True)
    data.add_argument("--count", type=int, required=True)
    data.add_argument("--start", type=int, default=0)
    data.add_argument("--workers", type=int, default=None)
    from tools.zoo import train_classifier, train_diffusion, train_guidance, train_tiny_decoder, train_vae

    train_vae.add_arguments(sub.add_parser("vae"))
    train_classifier.add_arguments(sub.add_parser("classifier"))
    train_diffusion.add_arguments(sub.add_parser("diffusion"))
    train_tiny_decoder.add_arguments(sub.add_parser("tiny-decoder"))
    train_guidance.add_arguments(sub.add_parser("guidance"))
    args = parser.parse_args()
    if args.stage == "data":
        from tools.zoo.data import render_to

        render_to(args.out, args.seed, args.count, start=args.start, workers=args.workers)
    else:
        stages = {"vae": train_vae, "classifier": train_classifier, "diffusion": train_diffusion,
                  "tiny-decoder": train_tiny_decoder, "guidance": train_guidance}
        stages[args.stage].run(args)


if __name__ == "__main__":
    main()
