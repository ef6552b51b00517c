"""The attribute classifier as a torch module, for training; inference ships in numpy (classifier.py).

Parameter names match the safetensors keys the numpy side reads (``conv{i}.*``, ``fc{i}.*``).
"""

from __future__ import annotations

import torch
from torch import nn

from edgediff.eval.classifier import CONVS, DENSE, GRID


class AttributeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout, stride) in enumerate(CONVS):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, stride=stride, padding=1))
        for i, (fin, fout) in enumerate(DENSE):
            setattr(self, f"fc{i}", nn.Linear(fin, fout))
        self.pool = nn.AdaptiveAvgPool2d(GRID)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, 3, 64, 64) in [-1, 1] -> logits (N, 156), features (N, 128)."""
        for i in range(len(CONVS)):
            x = torch.relu(getattr(self, f"conv{i}")(x))
        x = self.pool(x).flatten(1)  # (N, C*3*3)
        feats = x
        for i in range(len(DENSE)):
            x = getattr(self, f"fc{i}")(x)
            if i < len(DENSE) - 1:
                x = torch.relu(x)
            if i == len(DENSE) - 2:
                feats = x
        return x, feats


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> float (N, 3, 64, 64) in [-1, 1], as ``classifier.to_input``."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
