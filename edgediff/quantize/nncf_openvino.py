"""OpenVINO IR quantized with NNCF: ``nncf.quantize`` for W8A8, ``nncf.compress_weights`` for weight-only.

Layer names (``ignored``) are OpenVINO op friendly names, as ``openvino.convert_model`` writes them for
a torch module: ``__module.<torch FQN>/<aten op>/<OV op>``, e.g.
``__module.model.conv_in/aten::_convolution/Convolution``. ``openvino_layers`` maps torch module FQNs
to those names. The input model is left unchanged; NNCF's weight compression works in place, so the
backend quantizes a clone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgediff.quantize._checks import calibration_for, require_known_layers, require_supported
from edgediff.quantize.openvino_conv_int4 import compress_convolutions_int4, int4_convolutions
from edgediff.quantize.schemes import Int4Weight, Int8Static, Int8Weight, Scheme

if TYPE_CHECKING:
    import openvino

    from edgediff.quantize.calibration import Feeds

SUPPORTED: frozenset[str] = frozenset({"int8", "int8w", "int4w"})
BACKEND = "OpenVINO (NNCF)"
_WHY = "fp16 is applied when the IR is saved (compress_to_fp16); fp8 has no CPU kernels"
_WEIGHTED_OPS = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
_ATTENTION_OPS = ("ScaledDotProductAttention", "Softmax")


def quantize_openvino(
    model: openvino.Model, scheme: Scheme, calibration: Sequence[Feeds], ignored: Sequence[str] = ()
) -> openvino.Model:
    """A quantized copy of ``model``; ``ignored`` ops keep float weights and activations."""
    require_supported(BACKEND, SUPPORTED, scheme, _WHY)
    require_known_layers(
        BACKEND, ignored, {op.get_friendly_name() for op in model.get_ops()}, "OpenVINO op friendly names"
    )
    import nncf

    model = model.clone()
    if isinstance(scheme, Int8Static):
        names = [port.get_any_name() for port in model.inputs]
        feeds = calibration_for(scheme, calibration, names)
        if scheme.hybrid:
            return _hybrid(model, scheme, feeds, ignored)
        return _quantize(model, scheme, feeds, ignored, ())
    if isinstance(scheme, Int8Weight):
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM, ignored_scope=_scope(ignored))
    assert isinstance(scheme, Int4Weight)
    return _compress_int4(model, scheme, ignored)


def _scope(names: Sequence[str], **kw: Any) -> Any:
    import nncf

    return nncf.IgnoredScope(names=list(names), **kw)


def _quantize(
    model: Any, scheme: Int8Static, feeds: list[Feeds], ignored: Sequence[str], extra_ignored: Sequence[str]
) -> Any:
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )

    alpha = -1.0 if scheme.smooth_quant_alpha is None else scheme.smooth_quant_alpha  # -1 turns SmoothQuant off
    advanced = AdvancedQuantizationParameters(
        # Without VNNI, x86's u8 x s8 multiply-add (VPMADDUBSW) saturates its int16 pair sums; NNCF's fix
        # keeps weights in 7 bits. Its default fixes the first layer only; a bundle may run on any
        # x86 CPU, and on this AVX2 host the tiny SD UNet measured 0.970 (off), 0.980 (first layer),
        # 0.999 (all layers) cosine.
        overflow_fix=OverflowFix.ENABLE,
        smooth_quant_alphas=AdvancedSmoothQuantParameters(convolution=-1, matmul=alpha),
        disable_bias_correction=not scheme.bias_correction,
    )
    # TRANSFORMER keeps NNCF from quantizing attention's internals (softmax, the scale Multiply,
    # LayerNorm-adjacent ops); on the tiny SD UNet it lifts int8 cosine from 0.992 to 0.9986.
    has_attention = any(op.get_type_name() in _ATTENTION_OPS for op in model.get_ops())
    return nncf.quantize(
        model,
        nncf.Dataset(feeds),
        # MIXED: symmetric per-channel weights, asymmetric per-tensor activations; a UNet's SiLU and
        # GroupNorm outputs are far from zero-centred, so an asymmetric range wastes fewer levels.
        preset=nncf.QuantizationPreset.MIXED,
        model_type=nncf.ModelType.TRANSFORMER if has_attention else None,
        subset_size=len(feeds),
        fast_bias_correction=True,
        ignored_scope=_scope([*ignored, *extra_ignored]),
        advanced_parameters=advanced,
    )


def _hybrid(model: Any, scheme: Int8Static, feeds: list[Feeds], ignored: Sequence[str]) -> Any:
    """optimum-intel's hybrid mode for diffusion (``_hybrid_quantization`` in
    ``optimum/intel/openvino/quantization.py``): compress the weights of MatMuls to int8, then run
    full W8A8 on everything else (convolutions) with those MatMuls ignored."""
    import nncf

    matmuls = matmuls_with_weights(model)
    model = nncf.compress_weights(
        model, mode=nncf.CompressWeightsMode.INT8_SYM, ignored_scope=_scope(ignored, types=["Convolution"])
    )
    return _quantize(model, scheme, feeds, ignored, matmuls)


def _compress_int4(model: Any, scheme: Int4Weight, ignored: Sequence[str]) -> Any:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedCompressionParameters, GroupSizeFallbackMode

    mode = nncf.CompressWeightsMode.INT4_SYM if scheme.symmetric else nncf.CompressWeightsMode.INT4_ASYM
    int4_convs = int4_convolutions(model, scheme.group_size, set(ignored)) if scheme.conv_bits == 4 else []
    compressed = nncf.compress_weights(
        model,
        mode=mode,
        group_size=scheme.group_size,
        # NNCF's defaults are tuned for LLMs: ratio < 1 and all_layers=False keep the last MatMul (the
        # LM head) and embeddings in int8. A UNet has neither, so every MatMul goes to 4 bits and the
        # mixed-precision choice is left to edgediff's fallback search (``ignored``).
        ratio=1.0,
        all_layers=True,
        # Convolutions never get 4 bits in NNCF (no OpenVINO CPU kernel); they take this backup mode,
        # int8 symmetric per-channel, the same as the int8w scheme, unless conv_bits=4 gives them
        # edgediff's 4-bit form (``openvino_conv_int4``) after NNCF, which leaves them alone.
        backup_mode=nncf.BackupMode.INT8_SYM,
        ignored_scope=_scope([*ignored, *int4_convs]),
        # SD's attention widths (320, 640, 1280; 32 in tiny models) are not all multiples of 64:
        # ADJUST picks the largest power-of-two group (>= 32) that divides them instead of failing.
        advanced_parameters=AdvancedCompressionParameters(group_size_fallback_mode=GroupSizeFallbackMode.ADJUST),
    )
    compress_convolutions_int4(compressed, set(int4_convs), scheme.group_size, scheme.symmetric)
    return compressed


def _constant_behind(node: Any) -> Any:
    """The Constant feeding ``node`` through weight-decompression ops, or None (activation input)."""
    queue = deque([node])
    while queue:
        current = queue.popleft()
        kind = current.get_type_name()
        if kind == "Constant":
            return current
        if kind in ("Convert", "Reshape", "Transpose", "FakeQuantize", "Multiply", "Subtract"):
            queue.append(current.input_value(0).get_node())
    return None


def matmuls_with_weights(model: openvino.Model) -> list[str]:
    """Friendly names of MatMuls with a constant operand (linear layers, not attention's Q.K^T)."""
    names = []
    for op in model.get_ops():
        if op.get_type_name() == "MatMul" and any(_constant_behind(op.input_value(i).get_node()) for i in range(2)):
            names.append(op.get_friendly_name())
    return names


def openvino_layers(model: openvino.Model) -> dict[str, list[str]]:
    """Torch module FQN -> friendly names of its weighted ops (convolutions, MatMuls)."""
    layers: dict[str, list[str]] = {}
    for op in model.get_ops():
        name = op.get_friendly_name()
        if op.get_type_name() in _WEIGHTED_OPS and name.startswith("__module."):
            fqn = name.removeprefix("__module.").split("/", 1)[0]
            layers.setdefault(fqn, []).append(name)
    return layers
