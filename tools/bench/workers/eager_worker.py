"""The PyTorch eager fp32 baseline: the stock diffusers pipeline from a folder, over the peers' JSON lines.

    python -m tools.bench.workers.eager_worker --model-dir DIR --height 64 --width 64 --guidance-scale 5 --threads 2

What a user runs before any exporter: ``DiffusionPipeline.from_pretrained(folder)`` in fp32 on the CPU,
torch limited to ``--threads``. The session is the Optimum worker's (``Session``): ``step`` replays
the denoiser call recorded during a 1-step warm-up generation, so eager and peers time the same
call (batch 2 under CFG), here under ``torch.inference_mode`` as the pipeline itself runs it.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from tools.bench.peers.optimum_worker import Protocol, Session, _set_threads, _versions, serve

PACKAGES = ("torch", "diffusers", "transformers")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, type=Path, help="a diffusers pipeline folder")
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--guidance-scale", type=float, required=True,
                        help="above 1 the pipeline runs classifier-free guidance: denoiser batch 2")
    parser.add_argument("--threads", type=int, required=True)
    return parser.parse_args(argv)


class EagerSession(Session):
    def step_ms(self) -> float:
        import torch

        a, kw = self.step_inputs
        with torch.inference_mode():
            start = time.perf_counter()
            self.denoiser(*a, **kw)
            return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proto = Protocol()
    _set_threads(args.threads)
    try:
        import torch
        from diffusers import DiffusionPipeline

        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        pipe = DiffusionPipeline.from_pretrained(str(args.model_dir), torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        session = EagerSession(pipe, args)  # includes the 1-step warm-up generation
        load_s = time.perf_counter() - start
    except Exception as exc:  # one line for the orchestrator; the traceback goes to stderr
        traceback.print_exc()
        proto.send({"ready": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1
    proto.send({"ready": True, "engine": "pytorch-eager-fp32", "load_s": round(load_s, 3), "export_s": 0.0,
                "step_inputs": session.step_shapes(), "versions": _versions(PACKAGES),
                "settings": f"diffusers {type(pipe).__name__}.from_pretrained, fp32, torch eager, "
                            f"torch.set_num_threads({args.threads})",
                "export_dir": str(args.model_dir)})
    serve(session, proto, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
