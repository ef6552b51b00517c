"""OpenVINO runtime on the CPU plugin, latency-oriented.

The inference precision follows the bundle, never the host: on CPUs with bf16 units (AVX512-BF16,
AMX) OpenVINO's default computes every float op in bf16, so a bundle left to the default would pass
parity on one machine and fail it on the next. Every bundle but a bf16 one pins f32 for its float ops
(fp16: weights stored in fp16; int8/int8w/int4w: the ops left in float); a bf16 bundle asks for bf16
where the CPU has bf16 units and runs f32 elsewhere (right numbers, no speed-up). Quantized bundles
pin f32 because their quality target is measured against the fp32 teacher: on an AMX host, bf16 float
ops cost the zoo UNet's int8 bundle one of 16 prompts even with 33 layers kept in float. bf16 compute
also rounds the timestep before its sinusoidal embedding (999 -> 1000), which no hint from Python can
exempt (docs/quantization.md).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import openvino as ov

from edgediff.runtimes.base import RUNTIMES, SessionOptions

_CORE: ov.Core | None = None


def _core() -> ov.Core:
    global _CORE
    if _CORE is None:
        _CORE = ov.Core()
    return _CORE


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether the CPU plugin reports bf16 compute (AVX512-BF16 or AMX) on this host."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def inference_precision(bundle_precision: str) -> str:
    """The CPU plugin's INFERENCE_PRECISION_HINT for a bundle's precision: f32 unless the bundle is bf16."""
    if bundle_precision == "bf16":
        return "bf16" if cpu_has_bf16() else "f32"
    return "f32"


TRIG_OPS = ("Sin", "Cos")


def keep_trig_arguments_in_f32(model: ov.Model) -> int:
    """Add every Sin/Cos as an extra output, so bf16 compute leaves the path to them in f32.

    A sinusoidal timestep embedding computes sin(t * f) with arguments up to ~1000 rad. In bf16 the
    timestep 999 rounds to 1000 and the product's rounding error is whole radians. On config:sd-turbo
    the bf16 denoiser missed parity at t=999 (rel L2 5.5% vs f32).
    No Python API exempts a node from the bf16 hint. However, the CPU plugin keeps a graph's tail in
    f32: every node between an output and the nearest matmul or convolution (its source calls this
    skipping the graph's tail; measured here on OpenVINO 2026.4). Making each Sin/Cos an output puts
    its whole argument path, from the timestep input, in that tail.
    The cost is one small extra output each: no measurable latency, and rel L2 1.3% at every timestep.
    Returns how many outputs were added; callers read only the model's own outputs.
    """
    trig = [op.output(0) for op in model.get_ordered_ops() if op.get_type_name() in TRIG_OPS]
    if trig:
        model.add_outputs(trig)
    return len(trig)


def compile_for_bundle(model: ov.Model, bundle_precision: str, config: Mapping[str, object]) -> ov.CompiledModel:
    """Compile ``model`` with the precision hint its bundle asks for, and f32 trig arguments under bf16."""
    precision = inference_precision(bundle_precision)
    if precision == "bf16":
        keep_trig_arguments_in_f32(model)
    return _core().compile_model(model, "CPU", {**config, "INFERENCE_PRECISION_HINT": precision})


class OpenVinoSession:
    def __init__(self, model_file: Path, options: SessionOptions) -> None:
        config: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY"}
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = str(options.threads)
        model = _core().read_model(str(model_file))
        # Names come from the IR: a compiled static-shape model merges neighbouring tensors' names
        # into its ports, so the compiled ports' "any name" can be an internal one. Ports go by index.
        self.input_names = tuple(p.get_any_name() for p in model.inputs)
        self.output_names = tuple(p.get_any_name() for p in model.outputs)
        self._compiled = compile_for_bundle(model, options.precision, config)
        self._request = self._compiled.create_infer_request()

    @property
    def compute_precision(self) -> str:
        """The float precision the compiled model computes in (``f32`` or ``bf16``)."""
        return self._compiled.get_property("INFERENCE_PRECISION_HINT").to_string()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._request.infer({i: feeds[k] for i, k in enumerate(self.input_names)})
        own_outputs = self._compiled.outputs[: len(self.output_names)]  # trig outputs added for bf16 follow
        return {name: np.array(result[port]) for name, port in zip(self.output_names, own_outputs, strict=True)}


@RUNTIMES.register("openvino")
def open_openvino(model_file: Path, options: SessionOptions) -> OpenVinoSession:
    return OpenVinoSession(model_file, options)
