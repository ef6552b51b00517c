"""Fixtures for the quantization backends: the tiny SD UNet, a miniature UNet block, and their feeds.

Calibration and evaluation feeds are disjoint draws shaped like what the pipeline feeds a denoiser:
unit-variance latents, text states, and timesteps spread over the whole schedule (Q-Diffusion's point:
calibrate across all steps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgediff.export.parity import compare

SIZE = 32  # image height and width; the tiny UNet's latents are 16x16
BATCH = 2  # classifier-free guidance batches conditional and unconditional


class MiniUNetBlock(nn.Module):
    """A UNet block in miniature: conv, GroupNorm + SiLU, timestep embedding, cross-attention, linear.

    ExecuTorch lowering time grows with the graph (about a minute for the tiny SD UNet on 2 cores), so
    the ExecuTorch tests run this block by default and the whole UNet only with ``-m slow``.
    """

    def __init__(self, channels: int = 128, context: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(4, channels, 3, padding=1)
        self.time_proj = nn.Linear(channels, channels)
        self.norm = nn.GroupNorm(8, channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(context, channels)
        self.to_v = nn.Linear(context, channels)
        self.to_out = nn.Linear(channels, channels)
        self.ff = nn.Linear(channels, channels)
        self.conv_out = nn.Conv2d(channels, 4, 3, padding=1)
        self.heads = heads

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor
    ) -> torch.Tensor:
        h = self.conv_in(sample)  # (B, C, H, W)
        half = h.shape[1] // 2
        freqs = torch.exp(-torch.arange(half, dtype=torch.float32) / half * 9.21)  # 9.21 = ln(10000)
        angles = timestep[:, None] * freqs[None]  # (B, C/2)
        temb = torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, C)
        h = h + self.time_proj(temb)[:, :, None, None]
        h = self.conv(F.silu(self.norm(h)))
        x = h.flatten(2).transpose(1, 2)  # (B, HW, C)
        q = self.to_q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, heads, HW, C/heads)
        k = self.to_k(encoder_hidden_states).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, heads, T, C/heads)
        v = self.to_v(encoder_hidden_states).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        x = x + self.to_out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))
        x = x + self.ff(F.gelu(x))
        return self.conv_out(x.transpose(1, 2).reshape(h.shape))


def denoiser_feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    timesteps = np.linspace(999, 0, count) if count > 1 else np.array([499.0])
    return [
        {
            "sample": rng.standard_normal((BATCH, 4, 16, 16)).astype(np.float32),
            "timestep": np.full((BATCH,), t, dtype=np.float32),
            "encoder_hidden_states": rng.standard_normal((BATCH, 16, 32)).astype(np.float32),
        }
        for t in timesteps
    ]


INPUT_NAMES = ("sample", "timestep", "encoder_hidden_states")


def torch_outputs(module: nn.Module, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    with torch.no_grad():
        return [module(*[torch.from_numpy(f[n]) for n in INPUT_NAMES]).numpy() for f in feeds]


def worst_cosine(reference: list[np.ndarray], actual: list[np.ndarray]) -> float:
    return min(compare(r, a).cosine for r, a in zip(reference, actual, strict=True))


@pytest.fixture(scope="session", name="worst_cosine")
def worst_cosine_fixture():
    """``(reference outputs, actual outputs) -> the lowest cosine over the pairs``."""
    return worst_cosine


@pytest.fixture(scope="session", name="torch_outputs")
def torch_outputs_fixture():
    """``(module, feeds) -> the module's outputs as numpy``."""
    return torch_outputs


@pytest.fixture(scope="session")
def tiny_unet(tiny_model) -> nn.Module:
    return tiny_model.build_component("denoiser").eval()


@pytest.fixture(scope="session")
def unet_example_inputs(tiny_unet) -> tuple[torch.Tensor, ...]:
    names = tuple(spec.name for spec in tiny_unet.input_specs(SIZE, SIZE, BATCH))
    assert names == INPUT_NAMES
    return tiny_unet.example_inputs(SIZE, SIZE, BATCH)


@pytest.fixture(scope="session")
def calibration_feeds() -> list[dict[str, np.ndarray]]:
    return denoiser_feeds(8, seed=1)


@pytest.fixture(scope="session")
def eval_feeds() -> list[dict[str, np.ndarray]]:
    return denoiser_feeds(3, seed=99)


@pytest.fixture(scope="session")
def unet_reference(tiny_unet, eval_feeds) -> list[np.ndarray]:
    return torch_outputs(tiny_unet, eval_feeds)


@pytest.fixture(scope="session")
def mini_block() -> nn.Module:
    torch.manual_seed(0)
    return MiniUNetBlock().eval()
