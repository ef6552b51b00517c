"""AOTInductor packages for NVIDIA GPUs: ``torch.export`` -> ``torch._inductor.aoti_compile_and_package``.

A package (``model.pt2``) holds the weights and the kernels Inductor generated and compiled for the
GPU it was built on (Triton and cuBLAS calls); ``edgediff.runtimes.aoti`` loads it without the
model's Python code. Build it on the GPU the bundle will run on: its kernels are tuned to that
device and its fp8 products need compute capability 8.9+.

Precisions, all with fp32 inputs and outputs so the runtime feeds every bundle the same arrays:

- ``fp32``: the module as it is (the quality search's reference);
- ``bf16``: weights and activations in bf16 (``Bf16Compute``);
- ``fp8`` / ``int8``: bf16, with the linear layers that ``quantize_linear_layers`` selects swapped for
  static W8A8 ones: E4M3 through ``torch._scaled_mm``, or int8 through ``torch._int_mm``. Each layer's
  activation scale is calibrated on the captured pipeline inputs, which span the timesteps
  (``record_input_amax``). Static fp8 is the variant measured faster than bf16 on an H100 (1.12x on
  PixArt-alpha at 1024², ``docs/quantization.md``); the dynamic ones were slower, so none is built.
  Convolutions and attention stay bf16.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch  # this module is imported only when an AOTInductor export runs

from edgediff.errors import EdgeDiffError, ExportError
from edgediff.export.base import EXPORTERS, ExportRequest
from edgediff.quantize.schemes import Fp8, Int8Static
from edgediff.runtimes.aoti import IO_FILE

MODEL_FILE = "model.pt2"
SCHEMES = {Fp8: "fp8", Int8Static: "int8"}  # edgediff scheme -> torch_gpu's scheme name


def cast_inputs(args: Sequence[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor]:
    """Activations (floating tensors of 2+ dimensions) to ``dtype``; token ids and timesteps as given.

    A timestep stays fp32 because bf16 keeps 8 significant bits: 999 would become 1000.
    """
    return [a.to(dtype) if a.is_floating_point() and a.dim() >= 2 else a for a in args]


class Bf16Compute(torch.nn.Module):
    """Runs ``inner`` in bf16 with fp32 inputs and outputs."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner.to(torch.bfloat16)

    def forward(self, *args: torch.Tensor) -> Any:
        out = self.inner(*cast_inputs(args, torch.bfloat16))
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


def check_cpp_compiler(compiler: str | None = None) -> None:
    """Refuse a C++ compiler that would link libstdc++ statically into the package.

    Inductor compiles the package's wrapper with ``$CXX`` (else ``g++``). A compiler that finds only
    ``libstdc++.a`` (a toolchain installed beside the system's, seen on a GPU host whose ``CXX``
    pointed at one) builds a package that carries its own copy of the C++ library; the package then
    crashes the process on load, when it exchanges strings with libtorch's copy. Asking the compiler
    where ``libstdc++.so`` is costs one process, and a bare name back means it has none.
    """
    import subprocess

    from torch._inductor.cpp_builder import get_cpp_compiler

    compiler = compiler or get_cpp_compiler()
    try:
        found = subprocess.run([compiler, "-print-file-name=libstdc++.so"], capture_output=True, text=True,
                               timeout=60, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise ExportError(f"the C++ compiler {compiler!r} that AOTInductor would use does not run ({exc}); "
                          "install g++ or point CXX at a working one") from exc
    if not Path(found).is_absolute():
        raise ExportError(f"the C++ compiler {compiler!r} (CXX={os.environ.get('CXX', 'unset')}) has no "
                          "libstdc++.so, so the package would carry its own C++ library and crash on load; "
                          "unset CXX or point it at the system g++")


@EXPORTERS.register("aoti")
class AotiExporter:
    format = "aoti"
    runtime = "aoti"
    calibrated_schemes = frozenset({"int8", "fp8"})  # static activation scales (record_input_amax)

    def __init__(self, device: str = "cuda") -> None:
        self.device = device  # tests build CPU packages through the same path

    def export(self, request: ExportRequest) -> Path:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ExportError("the aoti format compiles for this host's GPU and torch sees none; "
                              "build the bundle on the machine with the target GPU")
        check_cpp_compiler()
        module, example = self.module_to_compile(request)
        path = request.out_dir / MODEL_FILE
        try:
            with torch.no_grad():
                exported = torch.export.export(module, example)
                torch._inductor.aoti_compile_and_package(exported, package_path=str(path))
        except Exception as exc:  # torch.export and Inductor raise many types; the message names the op
            raise ExportError(
                f"AOTInductor compile of {request.component} failed: {str(exc).strip().splitlines()[0][:300]}; "
                "an operator Inductor cannot compile needs another target"
            ) from exc
        names = {"inputs": list(request.input_names), "outputs": list(request.output_names), "device": self.device}
        (request.out_dir / IO_FILE).write_text(json.dumps(names))
        return path

    def module_to_compile(self, request: ExportRequest) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        """The module at the request's precision on this exporter's device, and its example inputs there.

        A copy: casting and swapping layers happen in place, and the build reuses the request's module.
        """
        if request.precision not in ("fp32", "bf16", *SCHEMES.values()):
            raise EdgeDiffError(f"the aoti format builds fp32, bf16, fp8 and int8, not {request.precision!r}")
        module = copy.deepcopy(request.module).eval().to(self.device)
        example = tuple(t.to(self.device) for t in request.example_inputs)
        if request.precision == "fp32" and request.quantization is None:
            return module, example
        wrapped = Bf16Compute(module)
        if request.quantization is not None:
            _quantize_linears(wrapped, request, example, self.device)
        return wrapped, example


def _quantize_linears(wrapped: Bf16Compute, request: ExportRequest, example: tuple[torch.Tensor, ...],
                      device: str) -> None:
    """Swap ``wrapped.inner``'s linear layers for static W8A8 ones calibrated on the request's feeds."""
    from edgediff.quantize.torch_gpu import check_options, quantize_linear_layers, record_input_amax

    quantization = request.quantization
    assert quantization is not None
    scheme = SCHEMES.get(type(quantization.scheme))
    if scheme is None:
        raise EdgeDiffError(f"the aoti format quantizes to fp8 or int8, not {quantization.scheme.name!r}")
    check_options(quantization.scheme)
    if not quantization.calibration:
        raise EdgeDiffError(f"{scheme} on the aoti format needs calibration feeds for its static activation "
                            "scales; set calibration_samples above 0")
    passes = [cast_inputs([torch.from_numpy(feed[n]).to(device) for n in request.input_names], torch.bfloat16)
              for feed in quantization.calibration]
    amax = record_input_amax(wrapped.inner, passes)
    ignored = [*quantization.ignored, *(f"{name}.*" for name in quantization.ignored)]
    quantize_linear_layers(wrapped.inner, scheme, example_inputs=cast_inputs(example, torch.bfloat16),
                           skip=ignored, input_amax=amax)
