"""Blockwise int4 convolution weights: the shared math, and each backend's file computing with it.

Both backends must dequantize to exactly ``Int4Blocks.dequantize()``: the ONNX model on ONNX Runtime
and the OpenVINO IR on its CPU plugin (f32) are checked against a torch convolution with those weights.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edgediff.quantize.int4_blocks import conv_group, pack_nibbles, quantize_int4_blocks
from edgediff.quantize.schemes import Int4Weight, scheme_from_json


def test_groups_halve_until_they_divide_the_flattened_input() -> None:
    assert conv_group(32 * 9, 64) == 32  # a 3x3 conv over 32 channels: 288 = 9 * 32
    assert conv_group(64 * 9, 64) == 64
    assert conv_group(4 * 9, 64) is None  # conv_in over 4 latent channels keeps int8
    assert conv_group(4 * 2 * 2, 16) is None  # so does a DiT's 2x2 patch embedding
    assert conv_group(128, 16) == 16
    assert conv_group(64 * 9 + 8, 64) is None  # no power-of-two group >= 16 divides 584


@pytest.mark.parametrize("symmetric", [True, False])
def test_blocks_round_each_weight_to_within_a_step(symmetric: bool) -> None:
    """Rounding costs half a step; clipping costs up to one more. Symmetric groups put the peak at -8,
    so an entry of the opposite sign and equal size clips at 7."""
    weight = np.random.default_rng(0).standard_normal((8, 4, 3, 3)).astype(np.float32) + (0 if symmetric else 0.5)
    blocks = quantize_int4_blocks(weight, 12, symmetric)
    assert blocks.values.shape == (8, 3, 12) and blocks.scale.shape == (8, 3)
    low, high = (-8, 7) if symmetric else (0, 15)
    assert blocks.values.min() >= low and blocks.values.max() <= high
    error = np.abs(blocks.dequantize() - weight.reshape(8, -1)).reshape(8, 3, 12)
    assert np.all(error <= np.abs(blocks.scale)[..., None] + 1e-6)
    assert np.median(error / np.abs(blocks.scale)[..., None]) < 0.3  # most entries: rounding only
    if symmetric:  # the largest-magnitude entry of each group lands on -8 exactly
        rows = weight.reshape(8, 3, 12)
        peak = np.take_along_axis(rows, np.abs(rows).argmax(-1)[..., None], -1)[..., 0]
        np.testing.assert_allclose(blocks.scale * -8, peak, rtol=1e-6)


def test_nibbles_pack_low_first() -> None:
    assert pack_nibbles(np.array([1, 2, -1, 7, 5], np.int8)) == bytes([0x21, 0x7F, 0x05])


def test_version_1_int4w_records_read_back_with_8_bit_convolutions() -> None:
    assert scheme_from_json({"name": "int4w", "version": 1, "group_size": 64, "symmetric": True}) == Int4Weight(conv_bits=8)
    assert Int4Weight().conv_bits == 4 and Int4Weight().to_dict()["version"] == 2


class _Convs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(4, 32, 3, padding=1)  # K = 36: no group, stays float here
        self.second = torch.nn.Conv2d(32, 64, 3, padding=1)  # K = 288: groups of 32
        self.third = torch.nn.Conv2d(64, 16, 1)  # K = 64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.third(torch.relu(self.second(torch.relu(self.first(x)))))


@pytest.fixture(scope="module")
def convs() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return _Convs().eval(), torch.randn(1, 4, 8, 8)


def _dequantized_reference(module: torch.nn.Module, x: torch.Tensor, symmetric: bool, scale_dtype=np.float32) -> np.ndarray:
    """The module's output with the int4 weights, dequantized with scales stored as ``scale_dtype``."""
    copy = _Convs().eval()
    copy.load_state_dict(module.state_dict())
    with torch.no_grad():
        for conv in (copy.second, copy.third):
            weight = conv.weight.numpy()
            group = conv_group(int(np.prod(weight.shape[1:])), 64)
            blocks = quantize_int4_blocks(weight, group, symmetric)
            blocks = dataclasses.replace(blocks, scale=blocks.scale.astype(scale_dtype).astype(np.float32))
            conv.weight.copy_(torch.from_numpy(blocks.dequantize().reshape(weight.shape)))
        return copy(x).numpy()


@pytest.mark.parametrize("symmetric", [True, False])
def test_onnx_convolutions_compute_with_the_dequantized_weights(convs, tmp_path, symmetric: bool) -> None:
    import onnx
    import onnxruntime as ort

    from edgediff.quantize.onnx_weights import INT4_OPSET, quantize_conv_weights_int4

    module, x = convs
    path = tmp_path / "convs.onnx"
    torch.onnx.export(module, (x,), dynamo=True, opset_version=18, input_names=["x"], output_names=["y"]).save(str(path))
    model = onnx.load(str(path))
    assert quantize_conv_weights_int4(model, 64, symmetric) == 2
    assert model.opset_import[0].version == INT4_OPSET
    kinds = {i.name: i.data_type for i in model.graph.initializer}
    assert sorted(k for k, v in kinds.items() if v in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4)) == (
        ["second.weight_int4", "third.weight_int4"] if symmetric
        else ["second.weight_int4", "second.weight_zero", "third.weight_int4", "third.weight_zero"])
    assert kinds["first.weight"] == onnx.TensorProto.FLOAT
    out = tmp_path / "q.onnx"
    onnx.save(model, str(out))
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, _dequantized_reference(module, x, symmetric), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("symmetric", [True, False])
def test_openvino_convolutions_compute_with_the_dequantized_weights(convs, tmp_path, symmetric: bool) -> None:
    import openvino as ov

    from edgediff.quantize.openvino_conv_int4 import compress_convolutions_int4, int4_convolutions

    module, x = convs
    with torch.no_grad():
        model = ov.convert_model(module, example_input=(x,))
    names = int4_convolutions(model, 64)
    assert len(names) == 2 and not any("first" in n for n in names)
    assert compress_convolutions_int4(model, set(names), 64, symmetric) == 2
    ov.save_model(model, str(tmp_path / "q.xml"), compress_to_fp16=False)
    packed = {op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"}
    assert ("i4" if symmetric else "u4") in packed
    compiled = ov.Core().compile_model(str(tmp_path / "q.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(x.numpy())[0]
    # f16 scales, as NNCF stores its own
    np.testing.assert_allclose(got, _dequantized_reference(module, x, symmetric, np.float16), rtol=1e-4, atol=1e-5)
