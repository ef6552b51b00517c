"""The device profiles edgediff knows. One entry per device; nothing else in the code names them."""

from __future__ import annotations

from edgediff.targets.target import Target

_ENTRIES = (
    Target(
        name="x86-cpu",
        format="onnx",
        runtime="onnxruntime",
        precisions=("fp32", "fp16", "int8", "int8w", "int4w"),
        default_precision="fp32",
        device="cpu",
        requires=("onnx", "onnxscript", "onnxruntime"),
        notes="any x86-64 CPU; ONNX graph run by ONNX Runtime's CPU execution provider; int8 as a QDQ graph; "
              "int4w stores convolution weights in 4 bits (opset 21), dequantized to float when loaded",
    ),
    Target(
        name="intel-cpu",
        format="openvino",
        runtime="openvino",
        precisions=("fp32", "fp16", "bf16", "int8", "int8w", "int4w"),
        default_precision="fp32",
        device="cpu",
        requires=("openvino",),
        notes="Intel CPUs; OpenVINO IR (.xml/.bin) run by the OpenVINO runtime; NNCF quantization; "
              "bf16 computes on AVX512-BF16/AMX cores (f32 on others); int4w stores convolution weights "
              "in 4 bits, dequantized to float when compiled",
    ),
    Target(
        name="arm64-cpu",
        format="executorch",
        runtime="executorch",
        precisions=("fp32", "fp16", "int8", "int8w", "int4w"),
        default_precision="fp32",
        device="cpu",
        requires=("executorch",),
        notes="Android/Linux arm64 phones and boards; ExecuTorch .pte lowered to XNNPACK (also runs on x86); PT2E quantization; "
              "int4w: 4-bit linear layers, convolutions static W8A8 (XNNPACK has no weight-only convolution; calibrated)",
    ),
    Target(
        name="snapdragon-8-gen3",
        format="onnx-qdq",
        runtime="qnn",
        precisions=("int8", "int16"),
        default_precision="int8",
        device="npu",
        memory_budget_mb=4096,
        buildable=False,
        notes="Hexagon NPU through QNN; needs a QDQ-quantized ONNX graph and Qualcomm's runtime",
    ),
    Target(
        name="jetson-orin",
        format="tensorrt",
        runtime="tensorrt",
        precisions=("fp16", "int8"),
        default_precision="fp16",
        device="gpu",
        requires=("tensorrt",),
        buildable=False,
        notes="NVIDIA Jetson Orin; TensorRT engine built on the device",
    ),
    Target(
        name="apple-m-series",
        format="coreml",
        runtime="coreml",
        precisions=("fp16", "int8w"),
        default_precision="fp16",
        device="npu",
        requires=("coremltools",),
        buildable=False,
        notes="Apple Silicon; Core ML mlpackage for the Neural Engine (converts on Linux, runs on macOS only)",
    ),
    Target(
        name="android-litert",
        format="litert",
        runtime="litert",
        precisions=("fp32", "fp16", "int8"),
        default_precision="fp16",
        device="gpu",
        requires=("litert_torch", "ai_edge_litert"),
        buildable=False,
        notes="Android GPU/NPU delegates; LiteRT .tflite",
    ),
    Target(
        name="h100",
        format="aoti",
        runtime="aoti",
        precisions=("bf16", "fp32", "fp8", "int8"),
        default_precision="bf16",
        device="gpu",
        requires=("torch",),
        needs_nvidia_gpu=True,
        notes="NVIDIA H100 (any CUDA GPU; fp8 needs Ada or Hopper); AOTInductor package built on that GPU; "
              "static fp8/int8 linear layers; sd15 and pixart-alpha bundles built and timed on an H100",
    ),
)

TARGETS: dict[str, Target] = {t.name: t for t in _ENTRIES}
