"""Token-wise linear layers traced as 1x1 convolutions, for OpenVINO's int8 kernels on AVX2.

On a CPU without 8-bit dot-product instructions (AVX2, no VNNI) OpenVINO 2026.4 runs an int8
FullyConnected on oneDNN's ``jit_gemm_I8``, no faster than the fp32 one, while its int8 1x1
convolution (``jit_avx2_1x1_I8``) is about twice as fast as fp32. The denoisers' attention and
feed-forward layers are Linear layers on (B, tokens, C) activations, so written as a 1x1 convolution
on a (B, C, tokens, 1) view they reach that kernel:

    x: (B, N, C) -> transpose -> (B, C, N, 1) -> conv 1x1 (O, C, 1, 1) -> (B, O, N, 1) -> (B, N, O)

Measured on a 2-core AMD EPYC with AVX2 only (``python -m tools.bench.openvino_linear_conv``): four
1280x1280 layers on 1024 tokens, against the fp32 Linear, int8 as FullyConnected 0.95x, int8 as 1x1
convolution 1.80x, fp32 as 1x1 convolution 0.96x. On ``config:sd-turbo``'s 256x256 step the int8
denoiser went from 1.11-1.27x fp32 to 1.47-1.54x, though the transposes then take 14% of the step.

``Int8Static.linears_as_convolutions`` turns it on; it is off by default because a CPU with AMX
runs int8 matmuls fast already and pays only the transposes: on an AMX Xeon the convolution form of
the same stack was 2.9x slower than the int8 matmul (docs/quantization.md; VNNI without AMX is
unmeasured). Layers kept in float stay matmuls (a float 1x1 convolution on 320 channels measured 1.6x
slower than the float matmul).

Feed-forward blocks (diffusers ``FeedForward`` with a GELU or GEGLU projection) run channel-first
from their first layer to their last: one transpose in and one out, instead of one around each
Linear, and GEGLU splits its projection on the channel axis. Those transposes were the largest of
the step: the projection's output is 8x the block's width (GEGLU: two 4x halves).

The swap is a trace-time view, not a new model: the replacement reads the Linear's own weight, is
numerically the same layer, keeps the module's name (so ``keep_float`` names and the manifest's
fallback layers still name the torch module) and is undone when the conversion returns. Linear
layers on other ranks (the timestep embedding's (B, C)) are left as matmuls.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


class LinearAs1x1Conv(nn.Module):
    """``linear`` on (B, N, C) input as a 1x1 convolution on (B, C, N, 1); other ranks as the Linear."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            return self.linear(x)
        weight = self.linear.weight[:, :, None, None]  # (O, C, 1, 1)
        y = F.conv2d(x.transpose(1, 2).unsqueeze(-1), weight, self.linear.bias)  # (B, O, N, 1)
        return y.squeeze(-1).transpose(1, 2)  # (B, N, O)


class ChannelFirstLinear(nn.Module):
    """``linear`` as a 1x1 convolution on channel-first (B, C, N, 1) input, giving (B, O, N, 1)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.linear.weight[:, :, None, None], self.linear.bias)


class ChannelFirstGelu(nn.Module):
    """diffusers' ``GELU`` / ``GEGLU`` projection on channel-first input; GEGLU halves the channel axis."""

    def __init__(self, activation: nn.Module, gated: bool) -> None:
        super().__init__()
        self.proj = ChannelFirstLinear(activation.proj)
        self.approximate: str = getattr(activation, "approximate", "none")  # GEGLU's gelu is the exact one
        self.gated = gated

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        if not self.gated:
            return F.gelu(x, approximate=self.approximate)
        hidden, gate = x.chunk(2, dim=1)
        return hidden * F.gelu(gate, approximate=self.approximate)


class ChannelFirstFeedForward(nn.Module):
    """A diffusers ``FeedForward`` on (B, N, C) run channel-first inside: one transpose in, one out.

    Its layers keep their paths under the block (``net.0.proj``, ``net.2``), so keep-float names and the
    manifest's fallback layers still name the torch modules."""

    def __init__(self, net: nn.ModuleList) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"a channel-first feed-forward expects (B, N, C) input, got {tuple(x.shape)}")
        y = x.transpose(1, 2).unsqueeze(-1)  # (B, C, N, 1)
        for layer in self.net:
            y = layer(y)
        return y.squeeze(-1).transpose(1, 2)


@functools.cache
def _feed_forward_types() -> tuple[type, type, type] | None:
    """diffusers' ``FeedForward``, ``GELU`` and ``GEGLU``, looked up once; None without diffusers."""
    try:
        from diffusers.models.activations import GEGLU, GELU
        from diffusers.models.attention import FeedForward
    except ImportError:  # diffusers absent: no such blocks to rewrite
        return None
    return FeedForward, GELU, GEGLU


def _channel_first_layers(ff: nn.Module) -> nn.ModuleList | None:
    """``ff.net`` rebuilt channel-first, or None when ``ff`` is not a FeedForward of GELU/GEGLU, dropout
    and Linear layers (anything else might mix channels in a way a channel-first view would change)."""
    types = _feed_forward_types()
    if types is None or type(ff) is not types[0]:
        return None
    _, gelu, geglu = types
    layers: list[nn.Module] = []
    for layer in ff.net:
        if type(layer) in (gelu, geglu):
            layers.append(ChannelFirstGelu(layer, gated=type(layer) is geglu))
        elif type(layer) is nn.Linear:
            layers.append(ChannelFirstLinear(layer))
        elif type(layer) is nn.Dropout:
            layers.append(layer)
        else:
            return None
    return nn.ModuleList(layers)


def _is_kept(fqn: str, kept: tuple[str, ...]) -> bool:
    return any(fqn == k or fqn.startswith(k + ".") for k in kept)


@contextmanager
def linears_as_1x1_convolutions(module: nn.Module, keep: Collection[str] = ()) -> Iterator[int]:
    """Within the block, every token-wise ``nn.Linear`` of ``module`` runs as a 1x1 convolution: inside a
    feed-forward block that runs channel-first as a whole (``ChannelFirstFeedForward``), elsewhere as a
    ``LinearAs1x1Conv`` around it. Layers in the modules ``keep`` names stay matmuls (layers kept in float:
    a float 1x1 convolution is up to 1.6x slower than the float matmul at 320 channels), and a feed-forward
    with a kept layer is left to the per-layer swap. Yields how many Linear layers were swapped. The
    module is restored on exit, also when the block raises."""
    kept = tuple(keep)
    replaced: list[tuple[nn.Module, str, nn.Module, nn.Module]] = []  # parent, attribute, original, stand-in
    inside_ff: list[str] = []
    linears = 0
    for fqn, child in list(module.named_modules()):
        if any(fqn.startswith(f + ".") for f in inside_ff):
            continue
        parent_name, _, name = fqn.rpartition(".")
        channel_first = None if _is_kept(fqn, kept) else _channel_first_layers(child)
        if channel_first is not None and not any(_is_kept(f"{fqn}.{n}", kept) for n, _ in child.named_modules()):
            inside_ff.append(fqn)
            replaced.append((module.get_submodule(parent_name), name, child, ChannelFirstFeedForward(channel_first)))
            linears += sum(type(m) is nn.Linear for m in child.modules())
        elif type(child) is nn.Linear and not _is_kept(fqn, kept):
            replaced.append((module.get_submodule(parent_name), name, child, LinearAs1x1Conv(child)))
            linears += 1
    try:
        for parent, name, _, stand_in in replaced:
            setattr(parent, name, stand_in)
        yield linears
    finally:
        for parent, name, original, _ in replaced:
            setattr(parent, name, original)
