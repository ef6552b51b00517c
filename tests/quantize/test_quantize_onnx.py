"""ONNX Runtime quantization of the tiny SD UNet: each scheme runs on the CPU provider close to fp32,
really quantizes the graph, and shrinks the weights.

Size ratios compare initializer bytes (the exporter's fp32 file also carries 1.2 MB of per-node
metadata, a third of this tiny model's file but negligible at real scale). Bounds were set from
measured values with margin (AVX2 host, 8 calibration feeds, 3 held-out feeds): int8 0.9985,
hybrid 0.9986, int8w 0.99994 worst cosine; weight ratios 3.73x (int8), 3.77x (hybrid), 3.83x (int8w).
int4w, measured on an AMX host: 0.9882 and 6.13x with 4-bit convolutions (the default; float32
scales: 0.5 bit per weight in groups of 64, as DequantizeLinear's output type sets them); 0.9996 and
4.18x with ``conv_bits=8`` (Conv and Gemm weights int8). These random weights are harsher on 4-bit
convolutions than a trained UNet's: the zoo table measures what they cost in images.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from edgediff.errors import EdgeDiffError
from edgediff.quantize.int4_blocks import conv_group
from edgediff.quantize.ort_qdq import SUPPORTED, onnx_layers, quantize_onnx
from edgediff.quantize.schemes import Fp8, Int4Weight, Int8Static, Int8Weight

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

INPUT_NAMES = ("sample", "timestep", "encoder_hidden_states")


@pytest.fixture(scope="module")
def onnx_unet(tiny_unet, unet_example_inputs, tmp_path_factory) -> Path:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    path = tmp_path_factory.mktemp("onnx") / "unet.onnx"
    with torch.no_grad():
        program = torch.onnx.export(
            tiny_unet,
            unet_example_inputs,
            dynamo=True,
            opset_version=18,
            input_names=list(INPUT_NAMES),
            output_names=["noise_pred"],
            verbose=False,
        )
    program.save(str(path))
    return path


def _run(path: Path, feeds) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, feed)[0] for feed in feeds]


def _weight_bytes(path: Path) -> int:
    model = onnx.load(str(path))
    # raw bytes where stored raw: numpy unpacks INT4/UINT4 to a byte per value
    return sum(len(init.raw_data) or onnx.numpy_helper.to_array(init).nbytes for init in model.graph.initializer)


def _ops(path: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


CASES = {
    "int8": (Int8Static(), 0.995, 3.5),
    "int8-hybrid": (Int8Static(hybrid=True), 0.995, 3.5),
    "int8w": (Int8Weight(), 0.999, 3.5),
    "int4w": (Int4Weight(), 0.98, 6.0),
    "int4w-conv8": (Int4Weight(conv_bits=8), 0.998, 4.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_scheme_runs_close_to_fp32_and_shrinks_the_weights(
    case, onnx_unet, calibration_feeds, eval_feeds, unet_reference, worst_cosine, tmp_path
) -> None:
    scheme, min_cosine, min_ratio = CASES[case]
    out = tmp_path / "q.onnx"
    quantize_onnx(onnx_unet, out, scheme, calibration_feeds)

    cosine = worst_cosine(unet_reference, _run(out, eval_feeds))
    ratio = _weight_bytes(onnx_unet) / _weight_bytes(out)
    before, after = _ops(onnx_unet), _ops(out)
    print(
        f"onnx {case}: cosine={cosine:.6f} weight_ratio={ratio:.2f} file_ratio="
        f"{onnx_unet.stat().st_size / out.stat().st_size:.2f} ops={dict(after)}"
    )
    assert cosine >= min_cosine
    assert ratio >= min_ratio

    convs, gemms = before["Conv"], before["Gemm"]
    if case == "int8":
        # every Conv, Gemm and weight MatMul has its weight and input behind Q/DQ; attention's
        # activation x activation MatMuls stay float
        assert after["QuantizeLinear"] > convs + gemms and after["DequantizeLinear"] > after["QuantizeLinear"]
        assert after["MatMulNBits"] == 0
    elif case == "int8-hybrid":
        assert after["MatMulNBits"] > 0 and 0 < after["QuantizeLinear"] < after["DequantizeLinear"]
    else:
        # weight-only: MatMul weights in MatMulNBits, one weight DequantizeLinear per Conv and Gemm
        assert after["MatMulNBits"] > 0 and after["QuantizeLinear"] == 0
        assert after["DequantizeLinear"] == convs + gemms
        bits = {
            a.i
            for n in onnx.load(str(out)).graph.node
            if n.op_type == "MatMulNBits"
            for a in n.attribute
            if a.name == "bits"
        }
        assert bits == {8 if case == "int8w" else 4}
        graph = onnx.load(str(out)).graph
        int4 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT4}
        four_bit_convs = sum(n.op_type == "Conv" and n.input[1].removesuffix("_w") + "_int4" in int4 for n in graph.node)
        # 4-bit convolutions by default: those with 64 or more inputs per output (not conv_in, whose
        # 4 * 3 * 3 read the latent, nor the narrow 1x1 shortcuts)
        source = {i.name: i for i in onnx.load(str(onnx_unet)).graph.initializer}
        eligible = sum(n.op_type == "Conv" and conv_group(int(np.prod(source[n.input[1]].dims[1:])), 64) is not None
                       for n in onnx.load(str(onnx_unet)).graph.node)
        assert 0 < eligible < convs
        assert four_bit_convs == (eligible if case == "int4w" else 0)


@pytest.mark.parametrize("hybrid", [False, True])
def test_a_layers_input_pair_feeds_that_layer_only(hybrid, onnx_unet, calibration_feeds, tmp_path) -> None:
    """ORT hands one Q/DQ pair's output to every consumer of the tensor; the float ones (a skip
    connection's ``Concat``, a residual add) must read the float tensor, or the float path is rounded
    to 8 bits as well."""
    out = tmp_path / "q.onnx"
    quantize_onnx(onnx_unet, out, Int8Static(hybrid=hybrid), calibration_feeds)
    graph = onnx.load(str(out), load_external_data=False).graph
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    quantize_source = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    layer_ops = {"Conv", "MatMul", "Gemm"}
    shared_sources = 0
    for dq in graph.node:
        source = quantize_source.get(dq.input[0]) if dq.op_type == "DequantizeLinear" else None
        if source is None or (source in producers and producers[source].op_type in layer_ops):
            continue  # a weight, or a layer's output pair (kept whole for ORT's integer fusion)
        assert {n.op_type for n in consumers.get(dq.output[0], [])} <= layer_ops, source
        shared_sources += any(n.op_type not in layer_ops | {"QuantizeLinear"} for n in consumers[source])
    assert shared_sources > 0  # the tiny UNet has such tensors: the test would catch a regression


def test_ignored_nodes_stay_float_and_names_map_from_torch_modules(onnx_unet, tmp_path) -> None:
    layers = onnx_layers(onnx_unet)
    assert (
        len(layers["model.conv_in"]) == 1
        and len(layers["model.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]) == 1
    )
    ignored = [*layers["model.conv_in"], *layers["model.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]]
    out = tmp_path / "q.onnx"

    quantize_onnx(onnx_unet, out, Int8Weight(), [], ignored=ignored)

    graph = onnx.load(str(out)).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    kept = {n.name: n for n in graph.node if n.name in ignored}
    assert {n.op_type for n in kept.values()} == {"Conv", "MatMul"}
    assert all(node.input[1] in floats for node in kept.values())
    assert _ops(out)["DequantizeLinear"] == _ops(onnx_unet)["Conv"] + _ops(onnx_unet)["Gemm"] - 1


def test_models_with_external_data_are_written_with_external_data(
    onnx_unet, eval_feeds, unet_reference, worst_cosine, tmp_path
) -> None:
    # The exporter switches to external data past 2 GB; the same path is exercised here at small scale.
    src = tmp_path / "external.onnx"
    onnx.save_model(onnx.load(str(onnx_unet)), str(src), save_as_external_data=True, location="external.onnx.data")
    out = tmp_path / "q.onnx"

    quantize_onnx(src, out, Int4Weight(), [])

    assert (tmp_path / "q.onnx.data").stat().st_size > 0
    assert worst_cosine(unet_reference, _run(out, eval_feeds)) >= CASES["int4w"][1]


def test_unsupported_requests_are_user_errors(onnx_unet, tmp_path) -> None:
    out = tmp_path / "q.onnx"
    with pytest.raises(EdgeDiffError, match="does not support scheme 'fp8'.*supported: int4w, int8, int8w"):
        quantize_onnx(onnx_unet, out, Fp8(), [])
    with pytest.raises(EdgeDiffError, match="not in the ONNX Runtime .QDQ. graph.*ONNX node names"):
        quantize_onnx(onnx_unet, out, Int8Weight(), [], ignored=["model.conv_in"])
    with pytest.raises(EdgeDiffError, match="SmoothQuant"):
        quantize_onnx(onnx_unet, out, Int8Static(smooth_quant_alpha=0.5), [{}])
    with pytest.raises(EdgeDiffError, match="feed 0 lacks input 'timestep'"):
        quantize_onnx(onnx_unet, out, Int8Static(), [{"sample": np.zeros((2, 4, 16, 16), np.float32)}])
    assert not out.exists()
    assert SUPPORTED == {"int8", "int8w", "int4w"}


@pytest.mark.parametrize(("count", "chunk"), [(1, None), (4, None), (5, 4), (8, 5), (32, 5), (60, 7), (63, 4)])
def test_calibration_chunks_never_divide_the_sample_count(count: int, chunk: int | None) -> None:
    from edgediff.quantize.ort_qdq import calibration_chunk

    assert calibration_chunk(count) == chunk
