"""Weight-only int8 for ONNX Conv and Gemm: store the weight as int8 + per-channel scale, dequantize in-graph.

ONNX Runtime's weight-only kernel (``MatMulNBits``) covers MatMul alone, but a UNet keeps much of its
weights in convolutions (73% in the tiny SD-shaped UNet of the tests). Rewriting ``W`` as
``DequantizeLinear(W_int8, scale, axis=out_channel)`` keeps the compute in float -- the same numerics as
NNCF's int8 weight compression -- while the file stores a quarter of the bytes. ``DequantizeLinear``
with a 1-D scale and ``axis`` is standard ONNX since opset 13.

The int4w scheme stores Conv weights in 4 bits instead (``quantize_conv_weights_int4``): blocked
``DequantizeLinear`` over the weight flattened to (M, C/group*kH*kW), then a ``Reshape`` back. Blocked
int4 ``DequantizeLinear`` is opset 21, so the model's default opset is raised to 21 first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from edgediff.quantize.int4_blocks import conv_group, pack_nibbles, quantize_int4_blocks

INT4_OPSET = 21  # blocked DequantizeLinear and the INT4/UINT4 types

_OP_AXIS = {"Conv": 0}  # Conv weight (M, C/group, kH, kW): output channels on axis 0


def _weight_axis(node: Any) -> int | None:
    if node.op_type in _OP_AXIS:
        return _OP_AXIS[node.op_type]
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1  # B is (N, K) when transposed, else (K, N); N = output features
    return None


def _weight_targets(model: Any, exclude: Collection[str], ops: Collection[str]) -> dict[str, tuple[int, list[Any]]]:
    """Float32 weight initializer -> (output axis, nodes of ``ops`` reading it), for weights no other
    node reads: a weight shared with a node that is not rewritten keeps its float initializer."""
    from onnx import TensorProto

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    targets: dict[str, tuple[int, list[Any]]] = {}
    for node in graph.node:
        axis = _weight_axis(node)
        if axis is None or node.op_type not in ops or node.name in exclude or len(node.input) < 2:
            continue
        init = initializers.get(node.input[1])
        if init is None or init.data_type != TensorProto.FLOAT or len(init.dims) < 2:
            continue
        targets.setdefault(init.name, (axis, []))[1].append(node)
    return {name: (axis, nodes) for name, (axis, nodes) in targets.items()
            if len(users[name]) == len(nodes) and all(_weight_axis(n) == axis for n in nodes)}


def quantize_weights_int8(model: Any, exclude: Collection[str] = ()) -> int:
    """Rewrite float32 Conv/Gemm weights of ``model`` (an ``onnx.ModelProto``) in place; returns the count.

    Symmetric, per output channel, levels -127..127 (the int8w scheme). Nodes in ``exclude`` and
    weights shared with a node that is not rewritten keep their float initializer.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    new_nodes = []
    for name, (axis, nodes) in _weight_targets(model, exclude, ("Conv", "Gemm")).items():
        weight = numpy_helper.to_array(initializers[name]).astype(np.float32)
        reduce = tuple(d for d in range(weight.ndim) if d != axis)
        scale = np.abs(weight).max(axis=reduce) / 127.0
        scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        shape = [1] * weight.ndim
        shape[axis] = -1
        q = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend(
            [numpy_helper.from_array(q, name + "_int8"), numpy_helper.from_array(scale, name + "_scale")]
        )
        new_nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [name + "_int8", name + "_scale"],
                [name + "_dq"],
                name=name + "_DequantizeLinear",
                axis=axis,
            )
        )
        for node in nodes:
            node.input[1] = name + "_dq"
    _prepend(graph, new_nodes)
    return len(new_nodes)


def quantize_conv_weights_int4(model: Any, group_size: int, symmetric: bool, exclude: Collection[str] = ()) -> int:
    """Rewrite float32 Conv weights of ``model`` to blocked int4 in place; returns the count.

    Each weight becomes INT4 (symmetric) or UINT4 + zero point values of shape (M, K), a float32
    scale per ``conv_group`` entries of K, ``DequantizeLinear(axis=1, block_size)`` and a ``Reshape``
    to (M, C/group, kH, kW). Weights whose K has no group of at least 16 are left for int8.
    """
    from onnx import TensorProto, helper, numpy_helper

    def groups() -> dict[str, tuple[int, list[Any]]]:
        initializers = {init.name: init for init in model.graph.initializer}
        found = {}
        for name, (_axis, nodes) in _weight_targets(model, exclude, ("Conv",)).items():
            group = conv_group(int(np.prod(initializers[name].dims[1:])), group_size)
            if group is not None:
                found[name] = (group, nodes)
        return found

    if not groups():
        return 0
    raise_default_opset(model, INT4_OPSET)  # replaces the model's messages: look them up after it
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    new_nodes = []
    for name, (group, nodes) in groups().items():
        weight = numpy_helper.to_array(initializers[name]).astype(np.float32)
        k = int(np.prod(weight.shape[1:]))
        blocks = quantize_int4_blocks(weight, group, symmetric)
        kind = TensorProto.INT4 if symmetric else TensorProto.UINT4
        tensors = [
            helper.make_tensor(name + "_int4", kind, [weight.shape[0], k], pack_nibbles(blocks.values), raw=True),
            numpy_helper.from_array(blocks.scale, name + "_scale"),
            numpy_helper.from_array(np.array(weight.shape, np.int64), name + "_shape"),
        ]
        inputs = [name + "_int4", name + "_scale"]
        if blocks.zero_point is not None:
            tensors.append(
                helper.make_tensor(name + "_zero", kind, list(blocks.zero_point.shape), pack_nibbles(blocks.zero_point), raw=True)
            )
            inputs.append(name + "_zero")
        graph.initializer.remove(initializers[name])
        graph.initializer.extend(tensors)
        new_nodes += [
            helper.make_node("DequantizeLinear", inputs, [name + "_dq"], name=name + "_DequantizeLinear",
                             axis=1, block_size=group),
            helper.make_node("Reshape", [name + "_dq", name + "_shape"], [name + "_w"], name=name + "_Reshape"),
        ]
        for node in nodes:
            node.input[1] = name + "_w"
    _prepend(graph, new_nodes)
    return len(new_nodes) // 2


def raise_default_opset(model: Any, version: int) -> None:
    """Convert ``model`` (in place) to at least ``version`` of the default ONNX domain.

    The converter serializes the model, which a real-scale UNet's 3.3 GB of fp32 weights would
    push past protobuf's 2 GB limit, so it sees each initializer as a dataless external reference
    of the same name, type and shape. Its adapters rewrite nodes, never weights, so the real
    initializers are put back unchanged.
    """
    from onnx import TensorProto, version_converter

    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if current >= version:
        return
    initializers = list(model.graph.initializer)
    placeholders = []
    for init in initializers:
        placeholder = TensorProto(name=init.name, data_type=init.data_type, dims=init.dims)
        placeholder.data_location = TensorProto.EXTERNAL
        placeholder.external_data.add(key="location", value="unread")
        placeholders.append(placeholder)
    del model.graph.initializer[:]
    model.graph.initializer.extend(placeholders)
    try:
        converted = version_converter.convert_version(model, version)
    finally:
        del model.graph.initializer[:]
        model.graph.initializer.extend(initializers)
    del converted.graph.initializer[:]
    converted.graph.initializer.extend(initializers)
    model.CopyFrom(converted)


def _prepend(graph: Any, nodes: list[Any]) -> None:
    # Nodes with only initializer inputs can go first and keep the graph topologically sorted.
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
