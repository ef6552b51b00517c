"""The h100 target's dynamic W8A8 layers: which layers get swapped, and that their math is right.

The CPU runs the same quantization with an emulated matmul, so layer selection and numerics are
checked everywhere; the tensor-core paths (``_scaled_mm``, ``_int_mm``) only where CUDA is present.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from edgediff.errors import EdgeDiffError
from edgediff.quantize.torch_gpu import (
    QuantizedLinear,
    int_mm_reference,
    plan_linear_layers,
    quantize_linear_layers,
    quantize_rows,
    quantize_static,
    record_input_amax,
)

BATCH = 2  # classifier-free guidance batch
SCHEMES = ("fp8", "int8")
# Relative L2 error of one W8A8 layer on Gaussian data: int8 keeps ~7 bits per value, E4M3 3 mantissa bits.
LAYER_REL_ERROR = {"int8": 0.02, "fp8": 0.06}


def rel_l2(actual: torch.Tensor, reference: torch.Tensor) -> float:
    actual, reference = actual.detach().double(), reference.detach().double()
    return float((actual - reference).norm() / reference.norm())


class Block(nn.Module):
    """Layers that exercise every selection rule: tokens, a per-image embedding, odd and narrow widths."""

    def __init__(self) -> None:
        super().__init__()
        self.time_emb = nn.Linear(64, 128)  # one row per image
        self.to_q = nn.Linear(128, 128)
        self.ff = nn.Linear(128, 256)
        self.odd = nn.Linear(256, 120)  # 120 % 16 != 0
        self.head = nn.Linear(120, 32)  # odd input, narrow output
        self.unused = nn.Linear(64, 64)
        self.conv = nn.Conv2d(4, 4, 1)  # convolutions are never touched

    def forward(self, tokens: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = self.to_q(tokens) + self.time_emb(temb)[:, None]  # (B, T, 128)
        return self.head(self.odd(self.ff(x)))


def block_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 24, 128, generator=gen), torch.randn(BATCH, 64, generator=gen)


def test_plan_keeps_odd_narrow_per_image_and_unused_layers() -> None:
    torch.manual_seed(0)
    plan = plan_linear_layers(Block(), example_inputs=block_inputs())
    assert {name for name, reason in plan.items() if reason is None} == {"to_q", "ff"}
    assert "not multiples of 16" in plan["odd"]
    assert "not multiples of 16" in plan["head"]
    assert "fewer than 17" in plan["time_emb"]
    assert "not called" in plan["unused"]
    assert "conv" not in plan


def test_plan_without_inputs_cannot_see_rows_but_honours_skip_patterns() -> None:
    plan = plan_linear_layers(Block(), skip=("to_*",))
    assert {name for name, reason in plan.items() if reason is None} == {"time_emb", "ff", "unused"}
    assert plan["to_q"] == "matches a skip pattern"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_swap_replaces_only_planned_layers_and_keeps_the_function(scheme: str) -> None:
    torch.manual_seed(0)
    block = Block().eval()
    inputs = block_inputs()
    with torch.no_grad():
        expected = block(*inputs)
    quantized = copy.deepcopy(block)
    swapped = quantize_linear_layers(quantized, scheme, example_inputs=inputs)
    assert swapped == ["to_q", "ff"]
    assert isinstance(quantized.ff, QuantizedLinear) and quantized.ff.scheme == scheme
    assert type(quantized.time_emb) is nn.Linear and type(quantized.odd) is nn.Linear
    with torch.no_grad():
        actual = quantized(*inputs)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert rel_l2(actual, expected) < LAYER_REL_ERROR[scheme]


def test_int_mm_reference_matches_torch_int_mm() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (32, 64), generator=gen, dtype=torch.int8)
    b = torch.randint(-127, 128, (64, 48), generator=gen, dtype=torch.int8)
    ref = int_mm_reference(a, b)
    assert ref.dtype == torch.int32
    assert torch.equal(ref, a.to(torch.int64).matmul(b.to(torch.int64)).to(torch.int32))
    try:
        native = torch._int_mm(a, b)
    except RuntimeError:  # builds without a CPU _int_mm
        return
    assert torch.equal(ref, native)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_quantize_rows_hits_the_format_limit_and_survives_zero_rows(scheme: str) -> None:
    x = torch.randn(5, 64)
    x[2] = 0.0
    q, scale = quantize_rows(x, scheme)
    qmax = 448.0 if scheme == "fp8" else 127.0
    assert scale.shape == (5, 1) and scale.dtype == torch.float32
    assert torch.all(q.float().abs().amax(dim=1)[[0, 1, 3, 4]] == qmax)
    assert torch.all(q[2].float() == 0) and torch.isfinite(scale).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_layer_equals_product_of_dequantized_operands(scheme: str) -> None:
    """The emulated layer is exactly (q_x·s_x)(q_w·s_w)ᵀ + b: the scales are applied on the right axes."""
    torch.manual_seed(0)
    linear = nn.Linear(96, 80)
    layer = QuantizedLinear.from_linear(linear, scheme)
    x = torch.randn(3, 20, 96)
    x_q, x_scale = quantize_rows(x.reshape(-1, 96), scheme)
    reference = (x_q.double() * x_scale.double()) @ layer.dequantized_weight(torch.float64).t() + linear.bias.double()
    actual = layer(x)
    assert actual.shape == (3, 20, 80)
    assert rel_l2(actual.reshape(-1, 80), reference) < 1e-6
    with torch.no_grad():
        assert rel_l2(actual, linear(x)) < LAYER_REL_ERROR[scheme]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_static_layer_uses_the_calibrated_scale_and_saturates_beyond_it(scheme: str) -> None:
    """A static layer is (q(x/s)·s)(q_w·s_w)ᵀ + b with s fixed by calibration; inputs past it clip."""
    torch.manual_seed(0)
    linear = nn.Linear(96, 80)
    x = torch.randn(3, 20, 96)
    amax = float(x.abs().amax())
    layer = QuantizedLinear.from_linear(linear, scheme, input_amax=amax)
    assert layer.static and layer.input_scale.shape == ()
    qmax = 448.0 if scheme == "fp8" else 127.0
    assert layer.input_scale.item() == pytest.approx(amax / qmax)
    x_q = quantize_static(x.reshape(-1, 96), layer.input_scale, scheme)
    reference = (x_q.double() * layer.input_scale.double()) @ layer.dequantized_weight(torch.float64).t()
    actual = layer(x)
    assert rel_l2(actual.reshape(-1, 80), reference + linear.bias.double()) < 1e-6
    with torch.no_grad():
        assert rel_l2(actual, linear(x)) < LAYER_REL_ERROR[scheme]
    # Ten times the calibrated range: the input saturates at the format's limit instead of overflowing.
    clipped = quantize_static(10 * x.reshape(-1, 96), layer.input_scale, scheme).float()
    assert clipped.abs().max() == qmax and torch.isfinite(layer(10 * x)).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_static_scales_calibrated_over_timesteps_keep_the_tiny_unet_close(scheme: str, tiny_unet, unet_case) -> None:
    inputs, expected = unet_case
    sample, _, *rest = inputs
    calibration = [(sample, torch.full((BATCH,), float(t)), *rest) for t in (0, 333, 666, 999)]
    amax = record_input_amax(tiny_unet, calibration)
    quantized = copy.deepcopy(tiny_unet)
    swapped = quantize_linear_layers(quantized, scheme, example_inputs=inputs, min_features=16, input_amax=amax)
    assert swapped and all(quantized.get_submodule(name).static for name in swapped)
    with torch.no_grad():
        actual = quantized(*inputs)
    cosine = torch.nn.functional.cosine_similarity(actual.flatten().double(), expected.flatten().double(), dim=0)
    assert cosine > 0.99


def test_static_swap_without_a_layer_s_scale_is_a_user_error() -> None:
    torch.manual_seed(0)
    with pytest.raises(EdgeDiffError, match="static activation scales are missing for 1 layer"):
        quantize_linear_layers(Block(), "fp8", example_inputs=block_inputs(), input_amax={"to_q": 1.0})


def test_unknown_scheme_is_a_user_error() -> None:
    with pytest.raises(EdgeDiffError, match="choose one of fp8, int8"):
        quantize_linear_layers(Block(), "int4")


@pytest.fixture(scope="module")
def unet_case(tiny_unet) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Small inputs (8x8 latents) for the tiny UNet and its float output: the test needs layers, not pixels."""
    inputs = tiny_unet.example_inputs(16, 16, BATCH)
    with torch.no_grad():
        return inputs, tiny_unet(*inputs)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tiny_unet_stays_close_after_quantization(scheme: str, tiny_unet, unet_case) -> None:
    inputs, expected = unet_case
    quantized = copy.deepcopy(tiny_unet)
    # The tiny UNet is 32-64 channels wide, so the width floor comes down to the 16 _scaled_mm needs.
    swapped = quantize_linear_layers(quantized, scheme, example_inputs=inputs, min_features=16)
    assert any(name.endswith("attn1.to_q") for name in swapped)
    assert not any("time_emb" in name for name in swapped)  # one row per image: kept
    with torch.no_grad():
        actual = quantized(*inputs)
    cosine = torch.nn.functional.cosine_similarity(actual.flatten().double(), expected.flatten().double(), dim=0)
    assert cosine > 0.995


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (fp8 needs compute capability 8.9+)")
@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_tensor_cores_agree_with_cpu_emulation(scheme: str, static: bool) -> None:
    if scheme == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 needs compute capability 8.9+")
    torch.manual_seed(0)
    linear = nn.Linear(256, 384)
    x = torch.randn(2, 64, 256)
    amax = float(x.abs().amax()) if static else None
    emulated = QuantizedLinear.from_linear(linear, scheme, amax)(x)
    gpu_layer = QuantizedLinear.from_linear(copy.deepcopy(linear).cuda().bfloat16(), scheme, amax)
    on_gpu = gpu_layer(x.cuda().bfloat16())
    assert on_gpu.dtype == torch.bfloat16
    # bf16 weights and inputs and a bf16 output make the only difference: a few bf16 ulps.
    assert rel_l2(on_gpu.float().cpu(), emulated) < 0.02
    compiled = torch.compile(gpu_layer)(x.cuda().bfloat16())
    assert rel_l2(compiled.float().cpu(), on_gpu.float().cpu()) < 0.01
