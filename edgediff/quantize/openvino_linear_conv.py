"""Token-wise linear layers traced as 1x1 convolutions, for OpenVINO's int8 kernels on AVX2.

On a CPU without 8-bit dot-product instructions (AVX2, no VNNI) OpenVINO 2026.4 runs an int8
FullyConnected on oneDNN's ``jit_gemm_I8``, no faster than the fp32 one on MLAS sgemm, while its
int8 1x1 convolution (``jit_avx2_1x1_I8``) multiplies the same weights 2.4x faster than fp32. The
denoisers' attention and feed-forward layers are Linear layers on (B, tokens, C) activations, so
written as a 1x1 convolution on a (B, C, tokens, 1) view they reach that kernel:

    x: (B, N, C) -> transpose -> (B, C, N, 1) -> conv 1x1 (O, C, 1, 1) -> (B, O, N, 1) -> (B, N, O)

The two transposes move int8 data once quantized (NNCF puts the activation quantizer before the
first). Measured on a 2-core AMD EPYC (AVX2 only), four 1280x1280 layers on 1024 tokens, int8 over
fp32 Linear: as FullyConnected 1.07x, as 1x1 convolution 1.83-1.86x; the float convolution runs at
fp32 Linear's speed (0.89-1.01x), so layers a quality search keeps in float lose little.
(``python -m tools.bench.openvino_linear_conv``.)

The swap is a trace-time view, not a new model: the replacement reads the Linear's own weight, is
numerically the same layer, keeps the module's name (so ``keep_float`` names and the manifest's
fallback layers still name the torch module) and is undone when the conversion returns. Linear
layers on other ranks (the timestep embedding's (B, C)) are left as matmuls.
"""

from __future__ import annotations

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


@contextmanager
def linears_as_1x1_convolutions(module: nn.Module, keep: Collection[str] = ()) -> Iterator[int]:
    """Within the block, every ``nn.Linear`` of ``module`` is a ``LinearAs1x1Conv`` around it, except in
    the modules ``keep`` names (layers kept in float: a float 1x1 convolution is up to 1.6x slower than
    the float matmul at 320 channels); yields how many were swapped. The module is restored on exit,
    also when the block raises."""
    kept = tuple(keep)
    swapped: list[tuple[nn.Module, str, nn.Linear]] = []
    for fqn, child in list(module.named_modules()):
        if type(child) is not nn.Linear or any(fqn == k or fqn.startswith(k + ".") for k in kept):
            continue
        parent_name, _, name = fqn.rpartition(".")
        swapped.append((module.get_submodule(parent_name), name, child))
    try:
        for parent, name, linear in swapped:
            setattr(parent, name, LinearAs1x1Conv(linear))
        yield len(swapped)
    finally:
        for parent, name, linear in swapped:
            setattr(parent, name, linear)
