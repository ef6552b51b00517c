"""4-bit convolution weights in an OpenVINO IR, which NNCF's weight compression does not give.

NNCF keeps convolutions at 8 bits (its backup mode), because OpenVINO's CPU plugin has no 4-bit
convolution kernel. Each weight here is written in NNCF's own decompression form: i4 (symmetric)
or u4 values of shape (O, K // group, group), then Convert to f16, an optional zero-point
Subtract, a Multiply by f16 scales, a Reshape to (O, C, kH, kW) and a Convert to f32. The plugin
folds that chain into a float weight when it compiles the model. So the IR on disk is 4-bit, and the
convolution computes exactly as an int8w one does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from edgediff.quantize.int4_blocks import conv_group, pack_nibbles, quantize_int4_blocks

if TYPE_CHECKING:
    import openvino


def int4_convolutions(model: openvino.Model, group_size: int, ignored: Collection[str] = ()) -> list[str]:
    """Friendly names of the Convolutions whose f32 constant weight can take ``group_size`` groups."""
    names = []
    for op in model.get_ops():
        if op.get_type_name() != "Convolution" or op.get_friendly_name() in ignored:
            continue
        weight = op.input_value(1).get_node()
        if weight.get_type_name() != "Constant" or weight.get_element_type().get_type_name() != "f32":
            continue
        shape = list(weight.get_output_shape(0))
        if conv_group(int(np.prod(shape[1:])), group_size) is not None:
            names.append(op.get_friendly_name())
    return names


def compress_convolutions_int4(model: openvino.Model, names: Collection[str], group_size: int, symmetric: bool) -> int:
    """Replace the weights of the Convolutions ``names`` (from ``int4_convolutions``) in place."""
    import openvino as ov
    import openvino.opset13 as ops

    count = 0
    for op in model.get_ops():
        if op.get_friendly_name() not in names:
            continue
        weight_node = op.input_value(1).get_node()
        weight = weight_node.get_data().astype(np.float32)
        group = conv_group(int(np.prod(weight.shape[1:])), group_size)
        assert group is not None, "int4_convolutions picks only weights with a group"
        blocks = quantize_int4_blocks(weight, group, symmetric)
        kind = ov.Type.i4 if symmetric else ov.Type.u4
        decompressed: Any = ops.convert(_packed_constant(kind, blocks.values), ov.Type.f16)
        if blocks.zero_point is not None:
            zero = _packed_constant(kind, blocks.zero_point[..., None])
            decompressed = ops.subtract(decompressed, ops.convert(zero, ov.Type.f16))
        scaled = ops.multiply(decompressed, ops.constant(blocks.scale[..., None].astype(np.float16)))
        shaped = ops.reshape(scaled, ops.constant(np.array(weight.shape, np.int64)), special_zero=False)
        restored = ops.convert(shaped, ov.Type.f32)
        restored.set_friendly_name(weight_node.get_friendly_name() + "/int4")
        op.input(1).replace_source_output(restored.output(0))
        count += 1
    return count


def _packed_constant(kind: Any, values: np.ndarray) -> Any:
    """An i4/u4 Constant of ``values``' shape. OpenVINO packs two per byte, low nibble first, as
    ``pack_nibbles`` does: the bytes go in whole, where a Python list per value would not scale."""
    import openvino as ov

    tensor = ov.Tensor(kind, ov.Shape(list(values.shape)))
    tensor.data[:] = np.frombuffer(pack_nibbles(values), np.uint8)
    return ov.op.Constant(tensor)
