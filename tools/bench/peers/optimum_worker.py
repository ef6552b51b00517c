"""A peer engine for the benchmark: a diffusers pipeline exported and run by Optimum, over JSON lines.

Run with a peer venv's python (tools/bench/peers/venvs.py), never edgediff's: it imports only
that venv's packages and the standard library.

    python tools/bench/peers/optimum_worker.py --backend openvino --model-dir DIR --cache-dir DIR \
        --precision fp32 --height 256 --width 256 --guidance-scale 0 --threads 2

The export is cached under --cache-dir, keyed by backend, precision, model folder and size. Model
folders saved by transformers 5 (the zoo's) need edgediff's ``prepare_peer_folder`` first: the
peers' transformers 4 would otherwise load their text encoder with random weights.

When ready the worker prints one JSON line on stdout:

    {"ready": true, "engine": "optimum-openvino-fp32", "load_s": 12.3, "export_s": 0.0,
     "step_inputs": {"arg0": [1, 4, 32, 32], ...}, "versions": {...}, "settings": "<in words>",
     "export_dir": "..."}
    {"ready": false, "error": "<one line>"}         (then it exits: unsupported model, failed export)

``export_s`` is 0 when the cache held the export; ``load_s`` covers loading, compiling and one
warm-up generation of 1 step. Then it answers one JSON line per command read from stdin:

    {"op": "step"}                 -> {"ms": one denoiser forward, replaying the pipeline's own call}
    {"op": "generate", "prompt": "...", "steps": 4, "seed": 0, "save": "x.png" | null}
                                   -> {"ms": the whole pipeline call: text encoder, steps, VAE}
    {"op": "quit"}                 -> exits
    anything that fails            -> {"error": "<type>: <message>"}, and the worker reads on

Every engine starts ``generate`` from the same initial noise: ``initial_latents(seed)``, numpy's
``default_rng(seed)`` standard normal in the latent shape, which is how edgediff bundles draw it.
Same noise, same prompt: fp32 engines make the same image, so a quality gap between engines is the
engine's and not two samples of the noise.

Everything else (library logs, progress bars, stray prints) goes to stderr: the worker keeps the
real stdout for the protocol and points file descriptor 1 at stderr before importing anything.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

PRECISIONS = ("fp32", "bf16", "int8", "int8-hybrid")
# Calibration prompts for OpenVINO's hybrid int8 (what optimum-intel's docs do with a caption set,
# given inline because the benchmark machine has no hub access).
CALIBRATION_PROMPTS = (
    "a photograph of an astronaut riding a horse",
    "a red circle above a blue square on a white background",
    "a cozy cabin in a snowy forest at dusk, warm light in the windows",
    "portrait of an old fisherman, dramatic lighting, 85mm",
    "a bowl of ramen with a soft-boiled egg, top view",
    "a futuristic city skyline at night with neon signs",
    "watercolor painting of a fox in a meadow",
    "a green triangle next to a yellow star",
)
HYBRID_SAMPLES = 32  # denoiser calls NNCF calibrates on; optimum-intel's default (200) takes hours at real scale


class PeerUnsupported(Exception):
    """The peer cannot run this model or precision; reported as ``{"ready": false}``, not a traceback."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, choices=("openvino", "onnxruntime"))
    parser.add_argument("--model-dir", required=True, type=Path, help="a diffusers pipeline folder")
    parser.add_argument("--cache-dir", required=True, type=Path, help="exports are kept here between runs")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="bf16: OpenVINO only, the fp32 export computed in bf16; "
                             "int8: OpenVINO weight-only int8 / ONNX Runtime dynamic int8 UNet; "
                             "int8-hybrid: OpenVINO only, int8 weights + calibrated int8 UNet activations")
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--guidance-scale", type=float, required=True,
                        help="above 1 the pipeline runs classifier-free guidance: denoiser batch 2")
    parser.add_argument("--threads", type=int, required=True)
    return parser.parse_args(argv)


def latent_shape(model_dir: Path, height: int, width: int) -> tuple[int, int, int, int]:
    """(1, C, H/f, W/f) from the folder's denoiser and VAE configs, for UNet and transformer pipelines alike."""
    denoiser = next(model_dir / d / "config.json" for d in ("unet", "transformer")
                    if (model_dir / d / "config.json").is_file())
    channels = int(json.loads(denoiser.read_text())["in_channels"])
    vae = json.loads((model_dir / "vae" / "config.json").read_text())
    factor = 2 ** (len(vae["block_out_channels"]) - 1)
    return (1, channels, height // factor, width // factor)


def initial_latents(seed: int, shape: tuple[int, ...]) -> Any:
    """The unit-Gaussian starting noise every engine uses for ``seed`` (a float32 torch tensor)."""
    import numpy as np
    import torch

    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


class Protocol:
    """The JSON-lines channel: the process's original stdout, kept while fd 1 is pointed at stderr."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


def _set_threads(threads: int) -> None:
    # Before torch is imported: OpenMP reads these once.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def cache_key(args: argparse.Namespace) -> str:
    """Backend, precision, size and the model folder's contents (paths, sizes, mtimes) as one folder name."""
    digest = hashlib.sha256(str(args.model_dir.resolve()).encode())
    for path in sorted(args.model_dir.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(args.model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    exported = "fp32" if args.precision == "bf16" else args.precision  # bf16 is a run setting of the fp32 export
    return f"{args.backend}-{exported}-{args.height}x{args.width}-{args.model_dir.name}-{digest.hexdigest()[:12]}"


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished export into the cache in one rename, so an interrupted export is never reused."""
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


# --- OpenVINO (optimum-intel) --------------------------------------------------------------------------------


def _openvino(args: argparse.Namespace, export_dir: Path) -> tuple[Any, float, str]:
    from optimum.intel import OVWeightQuantizationConfig
    from optimum.intel.openvino.modeling_diffusion import _get_ov_class

    class_name = json.loads((args.model_dir / "model_index.json").read_text())["_class_name"]
    pipeline_cls = _get_ov_class(class_name, throw_error_if_not_exist=False)
    if pipeline_cls is None:
        raise PeerUnsupported(f"optimum-intel {_versions(('optimum-intel',)).get('optimum-intel')} has no OpenVINO "
                              f"pipeline for {class_name}")
    ov_config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(args.threads)}
    if args.precision == "fp32":
        ov_config["INFERENCE_PRECISION_HINT"] = "f32"
        quant, words = None, "fp32 weights (load_in_8bit=False), INFERENCE_PRECISION_HINT=f32"
    elif args.precision == "bf16":
        import openvino as ov

        if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise PeerUnsupported("this CPU has no bf16 units (AVX512-BF16 or AMX): OpenVINO would compute f32")
        ov_config["INFERENCE_PRECISION_HINT"] = "bf16"
        quant, words = None, ("fp32 weights (load_in_8bit=False), INFERENCE_PRECISION_HINT=bf16: OpenVINO's "
                              "own default on CPUs with bf16 units")
    elif args.precision == "int8":
        quant = OVWeightQuantizationConfig(bits=8)
        words = ("optimum-intel OVWeightQuantizationConfig(bits=8): NNCF int8 weight-only compression "
                 "(int8_asym per-channel, all components), activations in OpenVINO's default float precision "
                 "(bf16 on CPUs with bf16 units, else f32)")
    else:
        quant = OVWeightQuantizationConfig(bits=8, quant_method="hybrid", dataset=list(CALIBRATION_PROMPTS),
                                           num_samples=HYBRID_SAMPLES)
        words = (f"optimum-intel OVWeightQuantizationConfig(bits=8, quant_method='hybrid'): int8 weights everywhere, "
                 f"UNet activations int8 too, calibrated on {HYBRID_SAMPLES} denoiser calls from "
                 f"{len(CALIBRATION_PROMPTS)} built-in prompts")

    export_s = 0.0
    if not (export_dir / "model_index.json").is_file():
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=export_dir.parent))
        pipe = pipeline_cls.from_pretrained(str(args.model_dir), export=True, compile=False,
                                                   load_in_8bit=False, quantization_config=quant, ov_config=ov_config)
        pipe.save_pretrained(str(tmp))
        del pipe
        _publish(tmp, export_dir)
        export_s = time.perf_counter() - start

    pipe = pipeline_cls.from_pretrained(str(export_dir), compile=False, ov_config=ov_config)
    # Static shapes, as optimum-intel's docs advise for CPU. Its reshape() sizes the denoiser for
    # CFG (batch 2); without guidance the pipeline calls it with batch 1, so that input is resized.
    pipe.reshape(batch_size=1, height=args.height, width=args.width, num_images_per_prompt=1)
    shape_words = f"static shapes {args.height}x{args.width}"
    if args.guidance_scale <= 1:
        denoiser = pipe.unet if pipe.unet is not None else pipe.transformer
        denoiser.model.reshape({port: [1, *port.get_partial_shape().to_shape()[1:]] for port in denoiser.model.inputs})
        shape_words += " (denoiser batch 1: no CFG)"
    pipe.compile()
    return pipe, export_s, f"{words}; PERFORMANCE_HINT=LATENCY, {args.threads} threads, {shape_words}"


# --- ONNX Runtime (optimum-onnx) -----------------------------------------------------------------------------


def _quantize_unet(onnx_dir: Path) -> None:
    """Dynamic int8 of the exported UNet, as ORTQuantizer does for one model (AVX2 preset, per-tensor)."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    # Weights past 2 GB (sd-turbo's fp32 UNet) sit beside model.onnx; the int8 copy keeps that layout.
    external = any(p.name != "model.onnx" for p in onnx_dir.glob("model.onnx*"))
    out = onnx_dir.parent / f".{onnx_dir.name}-int8"
    quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name="model.onnx")
    config = AutoQuantizationConfig.avx2(is_static=False, per_channel=False)
    quantizer.quantize(config, save_dir=out, file_suffix=None, use_external_data_format=external)
    for old in onnx_dir.glob("model.onnx*"):
        old.unlink()
    for new in out.iterdir():
        if new.name.startswith("model.onnx"):
            new.rename(onnx_dir / new.name)
    shutil.rmtree(out)


def _onnxruntime(args: argparse.Namespace, export_dir: Path) -> tuple[Any, float, str]:
    import onnxruntime as ort
    from optimum.onnxruntime.modeling_diffusion import _get_ort_class

    if args.precision in ("int8-hybrid", "bf16"):
        raise PeerUnsupported(f"{args.precision} is an OpenVINO setting; ONNX Runtime takes fp32 or int8")
    class_name = json.loads((args.model_dir / "model_index.json").read_text())["_class_name"]
    pipeline_cls = _get_ort_class(class_name, throw_error_if_not_exist=False)
    if pipeline_cls is None:
        raise PeerUnsupported(f"optimum-onnx {_versions(('optimum-onnx',)).get('optimum-onnx')} has no ONNX Runtime "
                              f"pipeline for {class_name}")
    words = "fp32 ONNX export"
    if args.precision == "int8":
        words = ("UNet quantized by optimum ORTQuantizer, AutoQuantizationConfig.avx2(is_static=False, "
                 "per_channel=False): dynamic int8 (uint8 weights and activations, MatMul/Conv/etc.); "
                 "text encoder and VAE fp32")

    export_s = 0.0
    if not (export_dir / "model_index.json").is_file():
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=export_dir.parent))
        # The task-specific class: ORTDiffusionPipeline cannot infer the task of a local folder.
        pipe = pipeline_cls.from_pretrained(str(args.model_dir), export=True)
        pipe.save_pretrained(str(tmp))
        del pipe
        if args.precision == "int8":
            denoiser = "unet" if (tmp / "unet").is_dir() else "transformer"
            _quantize_unet(tmp / denoiser)
        _publish(tmp, export_dir)
        export_s = time.perf_counter() - start

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    pipe = pipeline_cls.from_pretrained(str(export_dir), export=False, session_options=options)
    return pipe, export_s, f"{words}; CPUExecutionProvider, intra_op_num_threads={args.threads}, dynamic shapes"


ENGINES = {
    "openvino": (_openvino, ("optimum-intel", "optimum", "openvino", "nncf", "diffusers", "transformers", "torch")),
    "onnxruntime": (_onnxruntime, ("optimum-onnx", "optimum", "onnxruntime", "onnx", "diffusers", "transformers",
                                   "torch")),
}


# --- the session ---------------------------------------------------------------------------------------------


def same_work_arguments(pipe: Any) -> dict[str, Any]:
    """Call arguments that make a pipeline do the work an edgediff bundle does, where its defaults differ.

    PixArt pipelines snap height and width to the nearest of their aspect-ratio bins by default, and
    have bins only for transformers of sample size 32, 64 or 128 (any other, such as the zoo DiT's 8,
    raises "Invalid sample size"): binning is off, so every engine denoises the same latent shape.
    They also tokenize to 120 tokens whatever the text encoder holds (the zoo DiT's CLIP-style encoder
    has 24 positions): the length is the folder tokenizer's ``model_max_length``, the one bundles use.
    """
    parameters = inspect.signature(pipe.__call__).parameters
    arguments: dict[str, Any] = {}
    if "use_resolution_binning" in parameters:
        arguments["use_resolution_binning"] = False
    max_length = getattr(getattr(pipe, "tokenizer", None), "model_max_length", None)
    if "max_sequence_length" in parameters and isinstance(max_length, int):
        arguments["max_sequence_length"] = max_length
    return arguments


class Session:
    """A loaded pipeline, its denoiser, and the exact arguments the pipeline gives the denoiser."""

    def __init__(self, pipe: Any, args: argparse.Namespace) -> None:
        self.pipe = pipe
        self.args = args
        self.denoiser = pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer
        self.latent_shape = latent_shape(args.model_dir, args.height, args.width)
        self.same_work = same_work_arguments(pipe)
        self.step_inputs = self._capture_step_inputs()

    def _run(self, prompt: str, steps: int, seed: int) -> Any:
        return self.pipe(prompt=prompt, num_inference_steps=steps, guidance_scale=self.args.guidance_scale,
                         height=self.args.height, width=self.args.width,
                         latents=initial_latents(seed, self.latent_shape), **self.same_work).images[0]

    def _capture_step_inputs(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """One 1-step generation (it warms the engine too), recording the denoiser's first call.

        Replaying that call times the denoiser the way the pipeline drives it (batch 2 under CFG,
        the scheduler's timestep dtype, the text encoder's real output shape), for UNets and DiTs alike.
        """
        captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        forward = self.denoiser.forward

        def recording(*a: Any, **kw: Any) -> Any:
            if not captured:
                captured.append((_clone(a), _clone(kw)))
            return forward(*a, **kw)

        self.denoiser.forward = recording
        try:
            self._run("a red circle", 1, 0)
        finally:
            del self.denoiser.forward  # back to the class's method
        return captured[0]

    def step_shapes(self) -> dict[str, list[int]]:
        """Shapes of the replayed denoiser call (batch 2 means CFG), for the ready line."""
        a, kw = self.step_inputs
        named = {**{f"arg{i}": v for i, v in enumerate(a)}, **kw}
        return {k: list(v.shape) for k, v in named.items() if hasattr(v, "shape")}

    def step_ms(self) -> float:
        a, kw = self.step_inputs
        start = time.perf_counter()
        self.denoiser(*a, **kw)
        return (time.perf_counter() - start) * 1000

    def generate_ms(self, prompt: str, steps: int, seed: int, save: str | None) -> float:
        self.pipe.set_progress_bar_config(disable=True)
        start = time.perf_counter()
        image = self._run(prompt, steps, seed)
        ms = (time.perf_counter() - start) * 1000
        if save:
            Path(save).parent.mkdir(parents=True, exist_ok=True)
            image.save(save)
        return ms


def _clone(value: Any) -> Any:
    if hasattr(value, "clone"):
        return value.clone()
    if hasattr(value, "copy") and not isinstance(value, dict | list | tuple):
        return value.copy()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value


def serve(session: Session, proto: Protocol, commands: TextIO) -> None:
    for line in commands:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "quit":
                return
            if op == "step":
                proto.send({"ms": session.step_ms()})
            elif op == "generate":
                ms = session.generate_ms(str(cmd["prompt"]), int(cmd["steps"]), int(cmd.get("seed", 0)), cmd.get("save"))
                proto.send({"ms": ms})
            else:
                proto.send({"error": f"unknown op {op!r}; expected step, generate or quit"})
        except Exception as exc:  # one bad command must not end the session; report it and go on
            traceback.print_exc()
            proto.send({"error": f"{type(exc).__name__}: {exc}"})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proto = Protocol()
    _set_threads(args.threads)
    load, packages = ENGINES[args.backend]
    try:
        import torch

        torch.set_num_threads(args.threads)
        if not (args.model_dir / "model_index.json").is_file():
            raise PeerUnsupported(f"{args.model_dir} is not a diffusers pipeline folder (no model_index.json)")
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        export_dir = args.cache_dir / cache_key(args)
        start = time.perf_counter()
        pipe, export_s, settings = load(args, export_dir)
        pipe.set_progress_bar_config(disable=True)
        session = Session(pipe, args)
        load_s = time.perf_counter() - start - export_s
    except PeerUnsupported as exc:
        proto.send({"ready": False, "error": str(exc)})
        return 2
    except Exception as exc:  # the orchestrator needs one line, whatever broke; the traceback goes to stderr
        traceback.print_exc()
        proto.send({"ready": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1
    proto.send({"ready": True, "engine": f"optimum-{args.backend}-{args.precision}", "load_s": round(load_s, 3),
                "export_s": round(export_s, 3), "step_inputs": session.step_shapes(), "versions": _versions(packages), "settings": settings,
                "export_dir": str(export_dir)})
    serve(session, proto, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
