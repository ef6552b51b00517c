"""ONNX quantized for ONNX Runtime: QDQ static int8, ``MatMulNBits`` weight-only int8/int4.

Layer names (``ignored``) are ONNX node names as torch's dynamo exporter writes them (``node_conv2d_13``,
``node_linear_4``); ``onnx_layers`` maps torch module FQNs to them through the exporter's
``pkg.torch.onnx.name_scopes`` metadata. Pre-processing keeps these names: it runs symbolic shape
inference only, since ORT's optimizer step renames fused nodes and, by its own help text, has
difficulty with models over 2 GB (ORT applies the same optimizations when a session loads the model).

Choices for int8, measured on the tiny SD UNet on a 2-core AVX2 host without VNNI (worst cosine
against fp32 over 3 held-out feeds, 8 calibration feeds):
- Activations uint8 asymmetric, weights int8 symmetric per-channel (U8S8): MLAS's native x86 path
  (VPMADDUBSW on AVX2, VPDPBUSD with VNNI). S8S8 measured 0.949 (0.998 with reduce_range).
- ``reduce_range`` (7-bit weights): without VNNI, VPMADDUBSW saturates its int16 pair sums, as ORT's
  quantization guide warns; U8S8 measured 0.968 without it and 0.9985 with it, level with U8U8
  (0.9988, no saturating path). A bundle may run on such CPUs, so it is on.
- MinMax calibration: Percentile (99.999) measured 0.9987, no real gain for longer calibration.
- Only Conv, MatMul and Gemm, and not attention's activation x activation MatMuls: quantizing every
  op (ORT's default) measured 0.989 and 2.5x the latency of this selection (480 Q/DQ pairs).
- A quantized layer's input pair feeds that layer only (``keep_float_consumers_float``). ORT puts
  one Q/DQ pair on a tensor with a single quantized consumer and hands its output to *every*
  consumer, so on a transformer the residual stream that feeds cross-attention's query was rounded
  to 8 bits for the residual add too; on the zoo DiT that one detour doubled the denoiser's error
  (relative L2 0.056 against 0.026, 24 held-out feeds).
"""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgediff.errors import EdgeDiffError
from edgediff.quantize._checks import calibration_for, require_known_layers, require_supported
from edgediff.quantize.onnx_weights import quantize_conv_weights_int4, quantize_weights_int8
from edgediff.quantize.schemes import Int4Weight, Int8Static, Int8Weight, Scheme

if TYPE_CHECKING:
    from edgediff.quantize.calibration import Feeds

SUPPORTED: frozenset[str] = frozenset({"int8", "int8w", "int4w"})
BACKEND = "ONNX Runtime (QDQ)"
_WHY = "fp16 is a cast the ONNX exporter applies; fp8 QDQ runs on GPU execution providers only"
_STATIC_OPS = ("Conv", "MatMul", "Gemm")
# MatMulNBits quantizes in blocks along K; 128 is ORT's default and, for int8, finer than per-channel
# at every K above 128 (more scales, same or lower error).
_INT8W_BLOCK = 128


def quantize_onnx(
    src: Path, dst: Path, scheme: Scheme, calibration: Sequence[Feeds], ignored: Sequence[str] = ()
) -> None:
    """Write a quantized copy of the ONNX model at ``src`` to ``dst`` (external data kept if ``src`` has it)."""
    require_supported(BACKEND, SUPPORTED, scheme, _WHY)
    check_options(scheme)
    import onnx

    src, dst = Path(src), Path(dst)
    header = onnx.load(str(src), load_external_data=False)
    require_known_layers(BACKEND, ignored, {n.name for n in header.graph.node}, "ONNX node names")
    external = _uses_external_data(header)
    if isinstance(scheme, Int8Static):
        initializers = {i.name for i in header.graph.initializer}
        names = [i.name for i in header.graph.input if i.name not in initializers]
        if scheme.smooth_quant_alpha is not None:
            raise EdgeDiffError(
                "SmoothQuant on ONNX needs Intel Neural Compressor, which edgediff does not use; "
                "set smooth_quant_alpha=None for the onnx format (NNCF applies it for openvino)"
            )
        feeds = calibration_for(scheme, calibration, names)
        if scheme.hybrid:
            _hybrid(src, dst, feeds, names, ignored, external)
        else:
            _static(src, dst, feeds, names, ignored, external, _STATIC_OPS)
        return
    if isinstance(scheme, Int8Weight):
        bits, block, symmetric, conv_bits = 8, _INT8W_BLOCK, True, 8
    else:
        assert isinstance(scheme, Int4Weight)
        bits, block, symmetric, conv_bits = 4, scheme.group_size, scheme.symmetric, scheme.conv_bits
    model = _weight_only(onnx.load(str(src)), bits, block, symmetric, ignored, conv_bits)
    _save(model, dst, external)


class _Feeds:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over edgediff's feed dicts."""

    def __init__(self, feeds: list[Feeds], names: Sequence[str]) -> None:
        self._items = iter([{n: feed[n] for n in names} for feed in feeds])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._items, None)


CALIBRATION_CHUNK = 4  # samples held at once by ORT's MinMax calibrator, for models stored as external data


def check_options(scheme: Scheme) -> None:
    """Refuse scheme options for another runtime; builds call it before capturing calibration."""
    if isinstance(scheme, Int8Static) and scheme.linears_as_convolutions:
        raise EdgeDiffError("linears_as_convolutions is an OpenVINO option; ONNX Runtime's int8 matmuls need no "
                            "rewrite: drop it for the onnx format")


def calibration_chunk(count: int) -> int | None:
    """Samples ORT's calibrator reduces at a time, or None for all at once.

    ORT 1.32 raises "No data is collected" when the last chunk flush leaves nothing behind, which
    happens when ``count`` is a multiple of the chunk, so the chunk steps past such divisors.
    """
    if count <= CALIBRATION_CHUNK:
        return None
    chunk = CALIBRATION_CHUNK
    while count % chunk == 0:
        chunk += 1
    return chunk


def _static(
    src: Path,
    dst: Path,
    feeds: list[Feeds],
    names: Sequence[str],
    ignored: Sequence[str],
    external: bool,
    ops: Sequence[str],
) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(src), str(pre), skip_optimization=True, save_as_external_data=external)
        graph = onnx.load(str(pre), load_external_data=False).graph
        exclude = [*ignored, *activation_matmuls(graph)]
        quantized = {n.name for n in graph.node if n.op_type in ops} - set(exclude)
        quantize_static(
            str(pre),
            str(dst),
            _Feeds(feeds, names),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(ops),
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            use_external_data_format=external,
            calibrate_method=CalibrationMethod.MinMax,
            # MinMax keeps every intermediate output of every sample until it reduces them; at SD scale
            # that is ~0.5 GB per sample, so ranges are folded in every few samples instead
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False}
            # only where memory forces it: ranges folded chunk by chunk came out wider on the zoo UNet
            # (int8 PSNR 27 dB against 39 dB calibrated at once, 16 samples)
            | ({"CalibMaxIntermediateOutputs": chunk}
               if external and (chunk := calibration_chunk(len(feeds))) else {}),
        )
    # only the graph is rewritten: external weights stay where quantize_static wrote them
    model = onnx.load(str(dst), load_external_data=False)
    if keep_float_consumers_float(model.graph, quantized):
        onnx.save_model(model, str(dst))


def keep_float_consumers_float(graph: Any, quantized: set[str]) -> int:
    """Point the float consumers of an input Q/DQ pair back at the float tensor; the number rewired.

    Only pairs made for a quantized node's input are touched (the float tensor comes from a float
    node or a graph input). Pairs on a quantized node's output stay as they are: ORT fuses
    DQ -> MatMul -> Q into one integer kernel, and a float reader there would break the fusion.
    """
    producers = {out: node for node in graph.node for out in node.output}
    inputs = {i.name for i in graph.input}
    pair_source: dict[str, str] = {}  # DequantizeLinear output -> the float tensor its Q read
    quantize_out = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in quantize_out:
            continue
        source = quantize_out[node.input[0]]
        producer = producers.get(source)
        if (producer is None and source not in inputs) or (producer is not None and producer.name in quantized):
            continue
        pair_source[node.output[0]] = source
    rewired = 0
    for node in graph.node:
        if node.name in quantized or node.op_type == "QuantizeLinear":
            continue
        for k, name in enumerate(node.input):
            if name in pair_source:
                node.input[k] = pair_source[name]
                rewired += 1
    return rewired


def _hybrid(
    src: Path, dst: Path, feeds: list[Feeds], names: Sequence[str], ignored: Sequence[str], external: bool
) -> None:
    """optimum-intel's diffusion hybrid mode in ONNX: W8A8 QDQ on convolutions, weight-only int8 on
    MatMul (``MatMulNBits``) and Gemm (int8 ``DequantizeLinear``) weights."""
    import onnx

    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        convs = Path(tmp) / "convs.onnx"
        _static(src, convs, feeds, names, ignored, external, ("Conv",))
        model = _weight_only(onnx.load(str(convs)), 8, _INT8W_BLOCK, True, ignored)
        _save(model, dst, external)


def _weight_only(model: Any, bits: int, block: int, symmetric: bool, ignored: Sequence[str], conv_bits: int = 8) -> Any:
    """MatMul weights to ``MatMulNBits`` (bits, block, symmetric); Conv weights to blocked int4
    ``DequantizeLinear`` when ``conv_bits`` is 4; the Conv and Gemm weights left, which
    ``MatMulNBits`` does not cover, to int8 per-channel ``DequantizeLinear`` (as NNCF's backup mode)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    if conv_bits == 4:  # first: it raises the opset, which the converter cannot do past contrib ops
        quantize_conv_weights_int4(model, block, symmetric, exclude=set(ignored))
    groups = matmul_blocks(model.graph, block, set(ignored))
    everything = {name for names in groups.values() for name in names}
    for size, names in groups.items():  # one pass per block size: the quantizer takes a single one
        exclude = [*ignored, *(everything - set(names))]
        quantizer = MatMulNBitsQuantizer(
            model, bits=bits, block_size=size, is_symmetric=symmetric, nodes_to_exclude=exclude
        )
        quantizer.process()
        model = quantizer.model.model
    quantize_weights_int8(model, exclude=set(ignored))
    return model


def matmul_blocks(graph: Any, block: int, ignored: set[str]) -> dict[int, list[str]]:
    """Block size -> MatMuls with a 2-D weight of K rows that get it: ``block``, halved (down to 16,
    ``MatMulNBits``' minimum) while it exceeds or does not divide K. ``MatMulNBits`` pads K up to a
    whole block, so a 64 block on a K=32 weight would store 4-bit values in 8 bits' space."""
    weights = {i.name: i for i in graph.initializer}
    groups: dict[int, list[str]] = {}
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if weight is None or node.name in ignored or len(weight.dims) != 2:
            continue
        rows = weight.dims[0]
        size = block
        while size > 16 and (size > rows or rows % size):
            size //= 2
        groups.setdefault(size, []).append(node.name)
    return groups


def _save(model: Any, dst: Path, external: bool) -> None:
    import onnx

    onnx.save_model(model, str(dst), save_as_external_data=external, location=dst.name + ".data")


def _uses_external_data(model: Any) -> bool:
    from onnx import TensorProto

    return any(init.data_location == TensorProto.EXTERNAL for init in model.graph.initializer)


def activation_matmuls(graph: Any) -> list[str]:
    """MatMul nodes with no constant operand (attention's Q.K^T and scores.V)."""
    constants = {i.name for i in graph.initializer}
    constants.update(out for node in graph.node if node.op_type == "Constant" for out in node.output)
    return [n.name for n in graph.node if n.op_type == "MatMul" and not any(i in constants for i in n.input)]


def onnx_layers(path: Path) -> dict[str, list[str]]:
    """Torch module FQN -> names of its Conv/MatMul/Gemm nodes, from the dynamo exporter's metadata."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {i.name for i in graph.initializer}
    layers: dict[str, list[str]] = {}
    for node in graph.node:
        if node.op_type not in _STATIC_OPS or not any(i in constants for i in node.input[1:]):
            continue
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        if not scopes:
            continue
        # ['', 'model', 'model.conv_in', 'conv2d']: module scopes, then the traced op's own name.
        path_list = ast.literal_eval(scopes)
        if len(path_list) >= 2 and path_list[-2]:
            layers.setdefault(path_list[-2], []).append(node.name)
    return layers
