"""ONNX: torch.onnx's dynamo exporter, opset 18, external data past the 2 GB protobuf limit, optional fp16.

Opset 18 is the floor because scaled-dot-product attention and GroupNorm only lower cleanly from 17/18
on, and every ONNX Runtime of the last two years runs it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from edgediff.errors import ExportError
from edgediff.export.base import EXPORTERS, ExportRequest
from edgediff.export.passes.noop_squeeze import remove_noop_squeezes
from edgediff.export.passes.strip_metadata import strip_node_metadata

OPSET = 18
PROTOBUF_LIMIT_BYTES = 2 * 1024**3
# Keep a margin under the hard limit: graph structure and constants folded during export add bytes.
EXTERNAL_DATA_THRESHOLD = int(PROTOBUF_LIMIT_BYTES * 0.9)
MODEL_FILE = "model.onnx"


def parameter_bytes(module) -> int:  # type: ignore[no-untyped-def]
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _quiet_exporter_logs() -> None:
    # The exporter logs every skipped torchvision op at WARNING; they are not ours to fix.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)


@EXPORTERS.register("onnx")
class OnnxExporter:
    format = "onnx"
    runtime = "onnxruntime"

    def export(self, request: ExportRequest) -> Path:
        import torch

        _quiet_exporter_logs()
        path = request.out_dir / MODEL_FILE
        try:
            with torch.no_grad():
                exported = torch.export.export(request.module, request.example_inputs)
                remove_noop_squeezes(exported)
                program = torch.onnx.export(
                    exported,
                    request.example_inputs,
                    dynamo=True,
                    opset_version=OPSET,
                    input_names=list(request.input_names),
                    output_names=list(request.output_names),
                    verbose=False,
                )
        except Exception as exc:  # the exporter raises several internal types; all are user-actionable here
            raise ExportError(
                f"ONNX export of {request.component} failed: {_first_line(exc)}; "
                "an operator without an ONNX lowering needs a custom translation or another target"
            ) from exc
        program.optimize()
        large = parameter_bytes(request.module) > EXTERNAL_DATA_THRESHOLD
        if request.precision == "fp16":
            _save_fp16(program.model_proto, path, large)
        elif request.quantization is not None:
            _save_quantized(program, path, large, request)
        else:
            program.save(str(path), external_data=large)
        strip_node_metadata(path)
        return path


def _save_quantized(program, path: Path, external: bool, request: ExportRequest) -> None:  # type: ignore[no-untyped-def]
    """Save the float graph beside the target, quantize it into ``path``, drop the float copy."""
    from edgediff.quantize.layer_names import backend_names
    from edgediff.quantize.ort_qdq import onnx_layers, quantize_onnx

    float_dir = request.out_dir / "float"
    float_dir.mkdir()
    float_path = float_dir / MODEL_FILE
    program.save(str(float_path), external_data=external)
    q = request.quantization
    assert q is not None
    ignored = backend_names(q.ignored, onnx_layers(float_path), "ONNX") if q.ignored else []
    quantize_onnx(float_path, path, q.scheme, q.calibration, ignored)
    shutil.rmtree(float_dir)


def _save_fp16(model_proto, path: Path, external: bool) -> None:  # type: ignore[no-untyped-def]
    """Weights and compute in fp16, inputs and outputs kept fp32 so callers feed the same arrays."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(model_proto, keep_io_types=True, disable_shape_infer=external)
    onnx.save_model(half, str(path), save_as_external_data=external, location=path.name + ".data")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    summary = [line for line in text if "Exception summary" not in line and line.strip()]
    return summary[-1][:300] if summary else type(exc).__name__
