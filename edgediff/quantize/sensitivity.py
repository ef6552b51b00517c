"""Mixed precision: choose which layers to keep in float so that a quantized model meets a quality target.

Measuring each layer's effect by quantizing it alone costs one full quantization per layer -- hundreds
for a UNet. Instead layers are ranked by a cheap weight-only proxy (``sensitivity_from_weights``) and
the search quantizes with the top of that ranking in float, growing the float set by doubling, so a
model with L candidates needs at most 1 + ceil(log2(L)) quantizations.

Names: sensitivities are keyed by torch module FQN, while each backend names layers its own way (OV
op friendly names, ONNX node names, torch FQNs for PT2E). The caller maps one to the other
(``nncf_openvino.openvino_layers`` and ``ort_qdq.onnx_layers`` give FQN -> backend names) and passes
candidates and sensitivities under the backend's names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgediff.errors import EdgeDiffError

if TYPE_CHECKING:
    import torch

    from edgediff.quantize.schemes import Scheme


@dataclass(frozen=True)
class FallbackResult:
    """The layers to keep in float, each evaluation made on the way, and whether the target was met."""

    ignored: tuple[str, ...]
    trace: tuple[tuple[int, float], ...]  # (number of layers kept in float, quality), in evaluation order
    met: bool


def fallback_sizes(count: int, max_fallback: int) -> list[int]:
    """0, 1, 2, 4, ... up to ``min(count, max_fallback)``, which is always the last size tried."""
    limit = min(count, max_fallback)
    sizes, k = [0], 1
    while k < limit:
        sizes.append(k)
        k *= 2
    if limit > 0:
        sizes.append(limit)
    return sizes


def search_fallback_layers(
    candidates: Sequence[str],
    quality_of: Callable[[Sequence[str]], float],
    target: float,
    sensitivities: Mapping[str, float],
    max_fallback: int,
) -> FallbackResult:
    """Keep the most sensitive candidates in float, in doubling batches, until ``quality_of`` reaches ``target``.

    ``quality_of(ignored)`` quantizes with ``ignored`` in float and returns a higher-is-better score
    (e.g. cosine against fp32 on held-out feeds). The search stops at the first batch that meets the
    target; when none does, it returns the best batch seen (the smaller on ties) with ``met=False``.
    Candidates missing from ``sensitivities`` rank last, in their given order.
    """
    if max_fallback < 0:
        raise EdgeDiffError(f"max_fallback must be >= 0, got {max_fallback}")
    order = {name: i for i, name in enumerate(candidates)}
    ranked = sorted(candidates, key=lambda c: (-sensitivities.get(c, float("-inf")), order[c]))
    trace: list[tuple[int, float]] = []
    best: tuple[float, int] | None = None
    for size in fallback_sizes(len(ranked), max_fallback):
        quality = float(quality_of(tuple(ranked[:size])))
        trace.append((size, quality))
        if quality >= target:
            return FallbackResult(tuple(ranked[:size]), tuple(trace), met=True)
        if best is None or quality > best[0]:
            best = (quality, size)
    size = best[1] if best else 0
    return FallbackResult(tuple(ranked[:size]), tuple(trace), met=False)


def sensitivity_from_weights(module: torch.nn.Module, bits: int, group_size: int | None = None) -> dict[str, float]:
    """Per Conv/Linear module FQN: the weight error of symmetric ``bits``-bit quantization.

    The score is NNCF's data-free mixed-precision criterion (``get_integer_quantization_error`` with
    ``reduction="max_mean"``, used by ``DataFreeCriterion``): the largest, over output channels, mean
    squared error between the weights and their quantized-dequantized copy. Per output channel, or for
    Linear layers per group of ``group_size`` input features where it divides them (backends give
    groups to MatMuls only; convolutions stay per-channel). Pass the bits the layers will get.

    The maximum over channels is what makes an outlier visible: one large weight stretches its
    channel's scale and rounds that channel's other weights to zero. In a 64x64 N(0, 0.05) layer an
    80-sigma weight raises this score over 100x, while the Frobenius-relative error only rises 2.3x,
    because the outlier inflates the norm it is divided by.
    """
    import torch

    if bits < 2:
        raise EdgeDiffError(f"bits must be at least 2, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    scores: dict[str, float] = {}
    for fqn, layer in module.named_modules():
        if not isinstance(layer, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d):
            continue
        weight = layer.weight.detach().float().reshape(layer.weight.shape[0], -1)  # (out, in * kernel)
        inputs = weight.shape[1]
        grouped = isinstance(layer, torch.nn.Linear) and group_size is not None
        if grouped and inputs % group_size == 0 and inputs > group_size:
            weight = weight.reshape(weight.shape[0], inputs // group_size, group_size)  # (out, groups, gs)
        scale = weight.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny) / qmax
        fake = (weight / scale).round().clamp(-qmax - 1, qmax) * scale
        per_channel = (fake - weight).pow(2).reshape(weight.shape[0], -1).mean(dim=1)  # (out,)
        scores[fqn] = float(per_channel.max())
    return scores


_WEIGHTED = ("Linear", "Conv1d", "Conv2d", "Conv3d")


def _fake_quant_weight(weight: torch.Tensor, bits: int, group_size: int | None) -> torch.Tensor:
    """Symmetric per-output-channel (or per-group, for 2-D weights) quantize-dequantize."""
    import torch

    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().float().reshape(weight.shape[0], -1)  # (out, in * kernel)
    grouped = group_size is not None and weight.dim() == 2 and w.shape[1] % group_size == 0 and w.shape[1] > group_size
    shaped = w.reshape(w.shape[0], -1, group_size) if grouped else w  # (out, groups, gs) or (out, in)
    scale = shaped.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny) / qmax
    fake = (shaped / scale).round().clamp(-qmax - 1, qmax) * scale
    return fake.reshape(weight.shape).to(weight.dtype)


def _fake_quant_activation(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Per-tensor asymmetric uint8 quantize-dequantize over a calibrated [low, high] range (0 included)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-12) / 255.0
    zero = round(-low / scale)
    return ((x / scale).round() + zero).clamp(0, 255).sub(zero).mul(scale)


def _weight_bits(layer: torch.nn.Module, scheme: Scheme) -> tuple[int, int | None]:
    from edgediff.quantize.schemes import Int4Weight

    if isinstance(scheme, Int4Weight) and type(layer).__name__ == "Linear":
        return 4, scheme.group_size
    return 8, None  # int8 schemes, and int4w's convolutions, which backends keep at 8 bits


def sensitivity_from_outputs(
    module: torch.nn.Module, inputs: Sequence[tuple[torch.Tensor, ...]], scheme: Scheme
) -> dict[str, float]:
    """Per Conv/Linear FQN: the module's output error when only that layer is quantized.

    The error is the relative L2 distance of the whole module's output from float, averaged over
    ``inputs`` (calibration feeds spread over the timesteps), with the layer fake-quantized the way
    ``scheme`` quantizes it: its weights always, and for static int8 its input activation too, per
    tensor over the range the feeds showed (``hybrid`` keeps Linear activations float, as backends do).
    This is the measure LD-Pruner / Q-Diffusion-style analyses use, at one forward per layer and
    input; on CPU it is cheap for small denoisers and minutes for an SD-scale UNet.
    """
    import torch

    from edgediff.quantize.schemes import Int8Static

    layers = {n: m for n, m in module.named_modules() if type(m).__name__ in _WEIGHTED and n}
    static = isinstance(scheme, Int8Static)
    ranges: dict[str, list[float]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            lo, hi = float(args[0].min()), float(args[0].max())
            seen = ranges.setdefault(name, [lo, hi])
            seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)

        return hook

    with torch.no_grad():
        handles = [layer.register_forward_pre_hook(record(n)) for n, layer in layers.items()] if static else []
        references = [module(*x) for x in inputs]
        for handle in handles:
            handle.remove()
        scores: dict[str, float] = {}
        for name, layer in layers.items():
            bits, group = _weight_bits(layer, scheme)
            original = layer.weight.data
            layer.weight.data = _fake_quant_weight(original, bits, group)
            handle = None
            if static and not (scheme.hybrid and type(layer).__name__ == "Linear") and name in ranges:
                low, high = ranges[name]
                handle = layer.register_forward_pre_hook(
                    lambda _m, args, low=low, high=high: (_fake_quant_activation(args[0], low, high), *args[1:])
                )
            try:
                errors = [
                    float((module(*x) - ref).norm() / ref.norm().clamp_min(1e-12))
                    for x, ref in zip(inputs, references, strict=True)
                ]
            finally:
                layer.weight.data = original
                if handle is not None:
                    handle.remove()
            scores[name] = sum(errors) / len(errors)
    return scores
