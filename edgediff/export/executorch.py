"""ExecuTorch .pte lowered to XNNPACK: torch.export -> to_edge_transform_and_lower -> to_executorch.

For fp16 the module runs in half precision inside the graph while its inputs and outputs stay fp32,
so the runtime side feeds the same arrays for every precision.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch  # this module is imported only when an ExecuTorch export runs

from edgediff.errors import ExportError
from edgediff.export.base import EXPORTERS, ExportRequest

MODEL_FILE = "model.pte"


class HalfPrecision(torch.nn.Module):
    """Computes in fp16 with fp32 I/O (integer inputs such as token ids pass through)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner.half()

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        cast = [a.half() if a.is_floating_point() else a for a in args]
        return self.inner(*cast).float()


@EXPORTERS.register("executorch")
class ExecuTorchExporter:
    format = "executorch"
    runtime = "executorch"

    def export(self, request: ExportRequest) -> Path:
        import copy

        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        module = request.module
        if request.precision == "fp16":
            module = HalfPrecision(copy.deepcopy(module))
        elif request.quantization is not None:
            from edgediff.quantize.pt2e_xnnpack import quantize_for_xnnpack

            q = request.quantization
            module = quantize_for_xnnpack(
                module, request.example_inputs, q.scheme, q.calibration, q.ignored, input_names=request.input_names
            )
        try:
            with torch.no_grad():
                exported = torch.export.export(module, request.example_inputs)
                edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
                program = edge.to_executorch()
        except Exception as exc:  # torch.export and EXIR raise many types; the message names the op
            raise ExportError(
                f"ExecuTorch lowering of {request.component} failed: {str(exc).strip().splitlines()[0][:300]}; "
                "an operator without an ExecuTorch kernel needs another target"
            ) from exc
        path = request.out_dir / MODEL_FILE
        path.write_bytes(program.buffer)
        # A .pte method knows input positions, not names; the sidecar keeps the names beside it.
        names = {"inputs": list(request.input_names), "outputs": list(request.output_names)}
        path.with_suffix(".io.json").write_text(json.dumps(names))
        return path
