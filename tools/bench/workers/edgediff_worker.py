"""An edgediff bundle as a benchmark engine, over the same JSON lines as the Optimum peers.

    python -m tools.bench.workers.edgediff_worker --bundle DIR --threads 2

The protocol is ``tools/bench/peers/optimum_worker.py``'s (its ``Protocol`` and ``serve`` are reused),
so the orchestrator drives every engine alike:

    {"op": "step"}      -> {"ms": one denoiser session run on the bundle's parity sample feeds}
    {"op": "generate", "prompt": "...", "steps": 4, "seed": 0, "save": "x.png" | null}
                        -> {"ms": the whole BundlePipeline call: tokenize, encode, steps, decode}

The parity feeds are the inputs the build recorded from the fp32 pipeline (batch 2 under CFG, as the
pipeline calls the denoiser), so ``step`` times the same call a peer's ``step`` replays. Only numpy and
the bundle's engine are imported: no torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.peers.optimum_worker import Protocol, serve

RUNTIME_PACKAGES = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino",), "executorch": ("executorch",)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, type=Path, help="a bundle folder (manifest.json)")
    parser.add_argument("--threads", type=int, required=True)
    return parser.parse_args(argv)


def _set_threads(threads: int) -> None:
    # Before any engine is imported: OpenMP and XNNPACK's pools read these once.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


class BundleSession:
    """A bundle's pipeline and its denoiser session with the recorded feeds; the ``serve`` interface."""

    def __init__(self, bundle_dir: Path, threads: int) -> None:
        import numpy as np

        from edgediff.runtimes.pipeline import BundlePipeline

        self.pipe = BundlePipeline(bundle_dir, threads=threads, cache_prompts=False)  # the peers encode every call
        bundle = self.pipe.bundle
        component = bundle.components["denoiser"]
        samples = np.load(bundle.path / component["parity"]["samples"])
        self.feeds = {k.removeprefix("input."): samples[k] for k in samples.files if k.startswith("input.")}
        self.denoiser = self.pipe.sessions["denoiser"]
        self.class_label = 0 if bundle.pipeline["conditioning"] == "class" else None

    def step_shapes(self) -> dict[str, list[int]]:
        return {k: list(v.shape) for k, v in self.feeds.items()}

    def step_ms(self) -> float:
        start = time.perf_counter()
        self.denoiser.run(self.feeds)
        return (time.perf_counter() - start) * 1000

    def generate_ms(self, prompt: str, steps: int, seed: int, save: str | None) -> float:
        start = time.perf_counter()
        generation = self.pipe(prompt, class_label=self.class_label, seed=seed, steps=steps)
        ms = (time.perf_counter() - start) * 1000
        if save:
            from PIL import Image

            Path(save).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(generation.to_uint8()).save(save)
        return ms

    def settings(self, threads: int) -> str:
        b = self.pipe.bundle
        return (f"edgediff bundle: target {b.manifest['target']['name']}, {b.runtime} runtime, precision {b.precision}, "
                f"{threads} threads, static shapes {b.pipeline['height']}x{b.pipeline['width']}, "
                f"denoiser batch {b.pipeline['denoiser_batch']}" + _cache_note(b.pipeline.get("cache"))
                + _decoder_note(b.manifest["provenance"]["recipe"]["options"].get("decoder")))


def _cache_note(cache: dict | None) -> str:
    if not cache:
        return ""
    return (f", {cache['method']} every {cache['interval']} steps (full denoiser on step 0, {cache['interval']}, ...; "
            f"{cache['component']} between; step = the full denoiser)")


def _decoder_note(decoder: str | None) -> str:
    return "" if not decoder else f", VAE decoder replaced by the distilled one ({decoder})"


def _versions(runtime: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in ("edgediff", *RUNTIME_PACKAGES.get(runtime, ())):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proto = Protocol()
    _set_threads(args.threads)
    try:
        start = time.perf_counter()
        session = BundleSession(args.bundle, args.threads)
        session.step_ms()  # warm-up: first runs allocate and pick kernels, as the peers' warm-up generation does
        session.generate_ms("a red circle", 1, 0, None)
        load_s = time.perf_counter() - start
    except Exception as exc:  # the orchestrator needs one line, whatever broke; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        proto.send({"ready": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1
    bundle = session.pipe.bundle
    message: dict[str, Any] = {
        "ready": True, "engine": f"edgediff-{bundle.manifest['target']['name']}-{bundle.precision}",
        "load_s": round(load_s, 3), "export_s": 0.0, "step_inputs": session.step_shapes(),
        "versions": _versions(bundle.runtime), "settings": session.settings(args.threads), "export_dir": str(args.bundle),
    }
    proto.send(message)
    serve(session, proto, sys.stdin)  # type: ignore[arg-type]  # duck-typed: step_ms / generate_ms
    return 0


if __name__ == "__main__":
    sys.exit(main())
