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
