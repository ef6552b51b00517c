"""OpenVINO IR: ``openvino.convert_model`` on the torch module, saved as .xml/.bin.

``save_model`` compresses weights to fp16 by default; edgediff asks for it only when the precision
is fp16 or bf16 (half the size; bf16 compute converts them on load), so an fp32 bundle holds fp32
weights and its parity is exact.

``convert_model`` leaves batch and spatial dimensions dynamic. A bundle is built for one resolution
and one denoiser batch, so the IR is reshaped to the traced shapes: the CPU plugin then plans memory
and picks kernels once, which made the zoo UNet's step 1.3x faster (27.6 -> 21.3 ms, 2 threads).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from edgediff.errors import ExportError
from edgediff.export.base import EXPORTERS, ExportRequest

MODEL_FILE = "model.xml"
HALF_WEIGHT_PRECISIONS = ("fp16", "bf16")  # stored as fp16 weights


@EXPORTERS.register("openvino")
class OpenVinoExporter:
    format = "openvino"
    runtime = "openvino"

    def export(self, request: ExportRequest) -> Path:
        import openvino as ov
        import torch

        try:
            with torch.no_grad(), _traced_form(request):
                model = ov.convert_model(request.module, example_input=request.example_inputs)
        except Exception as exc:  # OpenVINO's frontend raises generic errors naming the failing op
            raise ExportError(
                f"OpenVINO conversion of {request.component} failed: {str(exc).strip().splitlines()[-1][:300]}; "
                "an operator OpenVINO cannot convert needs another target"
            ) from exc
        # Reshape first: it re-derives tensor names, which would shadow the ones set below.
        model.reshape({port: list(example.shape) for port, example in zip(model.inputs, request.example_inputs,
                                                                          strict=True)})
        for port, name in zip(model.inputs, request.input_names, strict=True):
            port.get_tensor().set_names({name})
        for port, name in zip(model.outputs, request.output_names, strict=True):
            port.get_tensor().set_names({name})
        if request.quantization is not None:
            from edgediff.quantize.layer_names import backend_names
            from edgediff.quantize.nncf_openvino import openvino_layers, quantize_openvino

            q = request.quantization
            ignored = backend_names(q.ignored, openvino_layers(model), "OpenVINO") if q.ignored else []
            model = quantize_openvino(model, q.scheme, q.calibration, ignored)
        path = request.out_dir / MODEL_FILE
        ov.save_model(model, str(path), compress_to_fp16=request.precision in HALF_WEIGHT_PRECISIONS)
        return path


def _traced_form(request: ExportRequest) -> AbstractContextManager[object]:
    """How the module is traced: static int8 with ``linears_as_convolutions`` traces token-wise Linear
    layers as 1x1 convolutions (OpenVINO's faster int8 kernel without VNNI), except those kept in
    float, which stay matmuls; as it is otherwise."""
    from edgediff.quantize.schemes import Int8Static

    q = request.quantization
    if q is not None and isinstance(q.scheme, Int8Static) and q.scheme.linears_as_convolutions:
        from edgediff.quantize.openvino_linear_conv import linears_as_1x1_convolutions

        return linears_as_1x1_convolutions(request.module, keep=q.ignored)
    return nullcontext()
