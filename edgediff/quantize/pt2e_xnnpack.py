"""A torch module quantized for ExecuTorch's XNNPACK delegate, ready for ``torch.export.export`` and
``to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])``.

- int8: PT2E static quantization (``prepare_pt2e`` -> calibrate -> ``convert_pt2e``) with
  ``XNNPACKQuantizer``: per-channel symmetric int8 weights, per-tensor int8 activations whose ranges
  come from a histogram observer.
- int8w: the same flow with XNNPACK's dynamic config, i.e. W8A8-*dynamic*: int8 per-channel weights and
  activations quantized per call from their own range (XNNPACK's qd8-f32-qc8w kernels; XNNPACK has no
  weight-only int8 kernel). Linear layers only: dynamically quantized convolutions fail in ExecuTorch
  1.5 inside a UNet block (lowering stops in ``ChannelsLastTaggedReshapePass``; with the conv fed by a
  reshape excluded, the delegate then fails to propagate shapes at run time), so convolutions stay fp32.
- int4w: torchao's ``Int8DynamicActivationIntxWeightConfig`` for linear layers (int4 symmetric
  groups, int8 dynamic activations), which XNNPACK lowers to its blockwise 4-bit kernels
  (qd8-f32-qb4w); asymmetric int4 is refused because XNNPACK's 4-bit kernels have no zero point
  (measured: the lowered program's cosine dropped to 0.983 while the torch module kept 0.999).
  Convolutions then take the int8 flow's static W8A8 (PT2E on the torchao-quantized graph), since
  XNNPACK has no weight-only convolution: on a UNet block the program went from 1.33x to 4.0x
  smaller than fp32 weights, at cosine 0.9984 against 0.9983 with float convolutions.

Layer names (``ignored``) are torch module FQNs of ``module`` (``model.down_blocks.0.resnets.0.conv1``);
every op traced inside an ignored module stays float.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgediff.errors import EdgeDiffError
from edgediff.quantize._checks import calibration_for, require_known_layers, require_supported
from edgediff.quantize.schemes import Int4Weight, Int8Static, Int8Weight, Scheme

if TYPE_CHECKING:
    import torch

    from edgediff.quantize.calibration import Feeds

SUPPORTED: frozenset[str] = frozenset({"int8", "int8w", "int4w"})
BACKEND = "ExecuTorch XNNPACK (PT2E)"
_WHY = "fp16 is a cast the ExecuTorch exporter applies; XNNPACK has no fp8 kernels"
_MIN_GROUP = 32  # the smallest group the int4 fallback adjusts to, as NNCF's ADJUST mode


def quantize_for_xnnpack(
    module: torch.nn.Module,
    example_inputs: tuple[Any, ...],
    scheme: Scheme,
    calibration: Sequence[Feeds],
    ignored: Sequence[str] = (),
    *,
    input_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """A quantized module (``module`` itself is left unchanged).

    ``calibration`` feeds are keyed by input name; ``input_names`` gives the module's positional
    order (default: the first feed's key order).
    """
    require_supported(BACKEND, SUPPORTED, scheme, _WHY)
    check_options(scheme)
    require_known_layers(BACKEND, ignored, {n for n, _ in module.named_modules() if n}, "torch module FQNs")
    names = list(input_names) if input_names is not None else list(calibration[0]) if calibration else []
    if isinstance(scheme, Int4Weight):
        feeds = calibration_for(scheme, calibration, names)
        linears_in_int4 = _int4(module, scheme.group_size, set(ignored))
        return _pt2e(linears_in_int4, example_inputs, dynamic=False, feeds=feeds, names=names, ignored=set(ignored),
                     ops=("conv2d",))
    if isinstance(scheme, Int8Static):
        feeds = calibration_for(scheme, calibration, names)
        return _pt2e(module, example_inputs, dynamic=False, feeds=feeds, names=names, ignored=set(ignored))
    assert isinstance(scheme, Int8Weight)
    return _pt2e(module, example_inputs, dynamic=True, feeds=[], names=[], ignored=set(ignored))


def check_options(scheme: Scheme) -> None:
    """Refuse scheme options XNNPACK has no kernel for; builds call it before capturing calibration."""
    if isinstance(scheme, Int8Static) and scheme.hybrid:
        raise EdgeDiffError(
            "hybrid int8 (weight-only MatMuls) is not available on XNNPACK, which has no weight-only int8 kernel; "
            "use hybrid=False, or int8w for dynamic int8"
        )
    if isinstance(scheme, Int8Static) and scheme.linears_as_convolutions:
        raise EdgeDiffError("linears_as_convolutions is an OpenVINO option; XNNPACK's int8 matmuls need no "
                            "rewrite: drop it for the executorch format")
    if isinstance(scheme, Int8Static) and scheme.smooth_quant_alpha is not None:
        raise EdgeDiffError(
            "XNNPACKQuantizer has no SmoothQuant; set smooth_quant_alpha=None for the executorch format"
        )
    if isinstance(scheme, Int4Weight) and not scheme.symmetric:
        raise EdgeDiffError("XNNPACK's 4-bit kernels are symmetric only; use int4w with symmetric=True")


def _in_ignored(node: Any, ignored: set[str]) -> bool:
    # nn_module_stack lists every enclosing module as (FQN, type), outermost first.
    stack = node.meta.get("nn_module_stack") or {}
    return any(path in ignored for path, _ in stack.values())


def _pt2e(
    module: torch.nn.Module,
    example_inputs: tuple[Any, ...],
    *,
    dynamic: bool,
    feeds: list[Feeds],
    names: Sequence[str],
    ignored: set[str],
    ops: Sequence[str] = ("conv2d", "linear"),
) -> torch.nn.Module:
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    quantizer = XNNPACKQuantizer()
    # Convolutions and linears only, not XNNPACKQuantizer's global set (add, mul, cat, ...): a
    # per-tensor int8 range on the timestep embedding's t * freqs (t up to 999) turns its sin/cos into
    # noise; quantizing every supported op measured 0.33 cosine on a UNet block, conv + linear 0.9995.
    for op in ("linear",) if dynamic else ops:
        quantizer.set_operator_type(getattr(torch.ops.aten, op).default, config)
    if ignored:
        quantizer.set_filter_function(lambda node: not _in_ignored(node, ignored))
    with torch.no_grad():
        graph = torch.export.export(module, tuple(example_inputs)).module()
        prepared = prepare_pt2e(graph, quantizer)
        if not feeds:  # dynamic: one call lets the weight observers see the weights
            prepared(*example_inputs)
        for feed in feeds:
            prepared(*[torch.from_numpy(feed[n]) for n in names])
        converted = convert_pt2e(prepared)
    if dynamic:
        _own_quant_chain_per_linear(converted)
    return converted


def _own_quant_chain_per_linear(graph_module: torch.fx.GraphModule) -> None:
    """Give each dynamically quantized linear its own choose_qparams/quantize/dequantize chain.

    convert_pt2e leaves one chain per activation, shared by every linear reading it: a UNet's
    cross-attention K and V projections of every block read the same text embedding. XNNPACK's
    partitioner must keep a chain with its linear, so shared chains glue distant layers into groups
    that interleave, and lowering failed with "Invalid partition, found dependency cycles" (zoo UNet,
    ExecuTorch 1.5). Duplicated chains cost one quantization per linear instead of one per activation.
    """
    from executorch.backends.transforms.duplicate_dynamic_quant_chain import DuplicateDynamicQuantChainPass

    DuplicateDynamicQuantChainPass()(graph_module)


def _int4(module: torch.nn.Module, group_size: int, ignored: set[str]) -> torch.nn.Module:
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, MappingType, PerGroup, quantize_

    quantized = copy.deepcopy(module)
    groups: dict[int, set[str]] = {}
    for fqn, layer in quantized.named_modules():
        if isinstance(layer, torch.nn.Linear) and not any(fqn == i or fqn.startswith(i + ".") for i in ignored):
            group = adjusted_group_size(layer.in_features, group_size)
            if group is not None:
                groups.setdefault(group, set()).add(fqn)
    for group, fqns in groups.items():
        config = Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int4, weight_granularity=PerGroup(group), weight_mapping_type=MappingType.SYMMETRIC
        )
        quantize_(quantized, config, filter_fn=lambda _m, fqn, chosen=fqns: fqn in chosen)
    return quantized


def adjusted_group_size(in_features: int, group_size: int) -> int | None:
    """``group_size`` if it divides ``in_features``, else the largest power of two below it (>= 32)
    that does, else None (the layer stays float). NNCF's ``GroupSizeFallbackMode.ADJUST`` rule."""
    group = group_size
    while group >= _MIN_GROUP:
        if in_features % group == 0:
            return group
        group //= 2
    return None
