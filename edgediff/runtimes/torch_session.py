"""PyTorch as a runtime: an export wrapper behind the same ``Session`` interface as the engines.

This is the reference every bundle is measured against (the evaluator's "diffusers model in PyTorch")
and the hook calibration capture uses to record what each component receives. ``device`` lets a GPU
target's build run its fp32 references on the GPU it builds on: a 1024x1024 PixArt step with its T5-XXL
takes seconds there and minutes on the build host's CPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


class TorchSession:
    def __init__(self, module: torch.nn.Module, input_names: tuple[str, ...], output_names: tuple[str, ...],
                 device: str = "cpu") -> None:
        module.eval()  # not chained: an exported graph's patched eval() returns None
        self.device = torch.device(device)
        self.module = module if self.device.type == "cpu" else module.to(self.device)
        self.input_names = input_names
        self.output_names = output_names

    @torch.no_grad()
    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])).to(self.device) for name in self.input_names]
        out = self.module(*args)
        outputs = out if isinstance(out, tuple) else (out,)  # a cached bundle's full denoiser returns two
        return {name: t.float().cpu().numpy() for name, t in zip(self.output_names, outputs, strict=True)}
