"""Dynamic W8A8 ``nn.Linear`` layers for the ``h100`` target: fp8 through ``torch._scaled_mm``, int8
through ``torch._int_mm``.

Both schemes quantize weights once, symmetrically per output channel, and activations at every call,
symmetrically per row (per token), from the row's own absolute maximum:

- ``fp8``: E4M3 weights and activations (Micikevicius et al. 2022), multiplied by ``torch._scaled_mm``
  with rowwise scales (activation scale per row of A, weight scale per column of B) into bf16.
  Hopper's fp8 tensor cores do twice bf16's dense rate.
- ``int8``: int8 weights and activations (LLM.int8()/SmoothQuant's W8A8 without outlier handling),
  multiplied by ``torch._int_mm`` into int32 and rescaled by both scales in float32.

Dynamic per-row scales need no calibration, and a diffusion denoiser's activation ranges move with
the timestep (Q-Diffusion, Li et al. 2023), which static per-tensor scales handle poorly.

This is what torchao's ``Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())`` and
``Int8DynamicActivationInt8WeightConfig()`` lower to, written out so that the h100 path needs no
torchao build matched to the device's torch, and so the CPU can run the same math (``int_mm_reference``
and a float emulation of fp8) for tests. Under ``torch.compile`` Inductor fuses each activation's
quantization into one kernel with whatever produced it, and the rescale with whatever consumes it.

Attention (``scaled_dot_product_attention``) and convolutions stay bf16.

**Static activation scales** (``input_amax`` from ``record_input_amax`` over calibration passes that span
the timesteps, as Q-Diffusion calibrates): each layer's input is quantized with one fixed per-tensor
scale, a pure multiply-and-cast that Inductor fuses into whatever produced the input, with no amax
reduction per call. fp8 then uses ``_scaled_mm``'s tensorwise mode (the weight gets one per-tensor
scale too, which E4M3's floating exponent tolerates), with the bias fused into the product. A value
beyond the calibrated range saturates at the format's limit.

Measured on an H100 under ``torch.compile`` (``docs/benchmarks/gpu_quant_step*.md``): static fp8 is
1.12x bf16 on PixArt-alpha at 1024² (linear layers 66% of its FLOPs) and level with it on SD 1.5 at
512² (convolutions 55%, left bf16). Dynamic fp8 and both int8 variants are slower than bf16: the
per-row amax, scale and cast kernels cost more than the products save, and ``_int_mm`` (cuBLASLt)
runs no faster than a bf16 matmul there. Every variant halves the quantized layers' weight memory;
numerics stay within 0.02 relative L2.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgediff.errors import EdgeDiffError
from edgediff.quantize.schemes import Int8Static, Scheme

SUPPORTED = frozenset({"fp8", "int8"})

# torch._scaled_mm needs K and N to be multiples of 16 (and so does cuBLASLt's int8 path for fast tiles).
FEATURE_MULTIPLE = 16
# torch._int_mm on CUDA refuses A with 16 rows or fewer.
INT_MM_MIN_ROWS = 17
# An all-zero row would give a zero scale and 0/0; any positive floor works since its values are all 0.
_AMAX_FLOOR = 1e-12


@dataclass(frozen=True)
class _Format:
    dtype: torch.dtype
    qmax: float  # the largest magnitude the format holds: E4M3 reaches 448, int8 is kept symmetric at 127
    rounds: bool  # integers round to nearest; the fp8 cast rounds by itself


_FORMATS = {
    "fp8": _Format(torch.float8_e4m3fn, 448.0, rounds=False),
    "int8": _Format(torch.int8, 127.0, rounds=True),
}


def _format(scheme: str) -> _Format:
    if scheme not in _FORMATS:
        raise EdgeDiffError(f"unknown GPU quantization scheme {scheme!r}; choose one of {', '.join(sorted(SUPPORTED))}")
    return _FORMATS[scheme]


def quantize_rows(x: torch.Tensor, scheme: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantization of each row (last dim) of ``x``: ``(q, scale)`` with ``x ≈ q * scale``.

    ``scale`` is float32 of shape ``(*x.shape[:-1], 1)``, the layout ``_scaled_mm``'s rowwise mode wants.
    """
    amax = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=_AMAX_FLOOR)
    scale = amax / _format(scheme).qmax
    return quantize_static(x, scale, scheme), scale


def quantize_static(x: torch.Tensor, scale: torch.Tensor, scheme: str) -> torch.Tensor:
    """``x / scale`` in the scheme's format, saturating at its limit: all the per-call work of a static
    scale, and the last step of a dynamic one (``scale`` broadcasts: a scalar, or one per row)."""
    fmt = _format(scheme)
    q = x.float() / scale
    if fmt.rounds:
        q = q.round()
    return q.clamp(-fmt.qmax, fmt.qmax).to(fmt.dtype)


def int_mm_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """What ``torch._int_mm(a, b)`` computes (int8 x int8 -> exact int32 sums), on any device but slowly.

    CPU tests use it to check the int8 layer's math without a GPU. Sums stay exact: |sum| <= K * 127²
    fits int32 for K up to 133,000.
    """
    return (a.to(torch.int64) @ b.to(torch.int64)).to(torch.int32)


class QuantizedLinear(nn.Module):
    """``y = x Wᵀ + b`` with W stored quantized per output channel and x quantized per row at each call.

    On CUDA the product runs on the fp8 or int8 tensor cores; elsewhere (CPU tests) through an
    emulation of the same arithmetic. The output has the input's dtype.
    """

    def __init__(
        self,
        weight_q: torch.Tensor,
        weight_scale: torch.Tensor,
        bias: torch.Tensor | None,
        scheme: str,
        input_scale: torch.Tensor | None = None,
    ):
        super().__init__()
        _format(scheme)
        self.scheme = scheme
        self.out_features, self.in_features = weight_q.shape
        self.register_buffer("weight_q", weight_q)  # (N, K), quantized
        # (1, N) float32, one scale per output channel; () per tensor when the input scale is static
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)  # (N,) in the original dtype, or None
        self.register_buffer("input_scale", input_scale)  # () float32 static activation scale, or None: dynamic

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, scheme: str, input_amax: float | None = None) -> QuantizedLinear:
        """Quantize ``linear``'s weights; ``input_amax`` (calibrated |x| maximum) makes activations static."""
        fmt = _format(scheme)
        weight = linear.weight.detach()
        bias = None if linear.bias is None else linear.bias.detach().clone()
        if input_amax is None:
            weight_q, scale = quantize_rows(weight, scheme)  # rows of W are output channels
            return cls(weight_q, scale.reshape(1, -1).contiguous(), bias, scheme)
        input_scale = torch.tensor(max(float(input_amax), _AMAX_FLOOR) / fmt.qmax, device=weight.device)
        if scheme == "fp8":  # tensorwise _scaled_mm wants both scales per tensor
            weight_scale = (weight.abs().amax().float().clamp(min=_AMAX_FLOOR) / fmt.qmax).reshape(())
            weight_q = quantize_static(weight, weight_scale, scheme)
        else:
            weight_q, scale = quantize_rows(weight, scheme)
            weight_scale = scale.reshape(1, -1).contiguous()
        return cls(weight_q, weight_scale, bias, scheme, input_scale=input_scale)

    @property
    def static(self) -> bool:
        """Whether activations use the calibrated per-tensor scale (else one per row, at each call)."""
        return self.input_scale is not None

    def extra_repr(self) -> str:
        activations = "static" if self.static else "dynamic"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme}, "
            f"activations={activations}"
        )

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        scale = self.weight_scale.reshape(-1, 1) if self.weight_scale.dim() else self.weight_scale
        return (self.weight_q.float() * scale).to(dtype)

    def _quantize_input(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_scale is not None:
            return quantize_static(rows, self.input_scale, self.scheme), self.input_scale
        return quantize_rows(rows, self.scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)  # (M, K): every leading dim is a token
        fused_bias = False
        if not rows.is_cuda:
            out = self._emulated(rows)
        elif self.scheme == "int8" and rows.shape[0] < INT_MM_MIN_ROWS:
            # Too few rows for _int_mm (quantize_linear_layers skips such layers when it sees them);
            # weight-only fallback so the model still runs.
            out = F.linear(rows, self.dequantized_weight(rows.dtype))
        else:
            out, fused_bias = self._tensor_cores(rows)
        out = out.to(x.dtype)
        if self.bias is not None and not fused_bias:
            out = out + self.bias  # outside the matmul: Inductor fuses it into the next pointwise kernel
        return out.reshape(*x.shape[:-1], self.out_features)

    def _tensor_cores(self, rows: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The product on tensor cores, and whether the bias is already in it."""
        x_q, x_scale = self._quantize_input(rows)  # (M, K), (M, 1) or ()
        if self.scheme == "fp8":
            # B = Wᵀ is column-major, as _scaled_mm requires. Fast accumulation (no periodic promotion
            # to fp32 inside the K loop) is what fp8 inference engines run. Tensorwise scales take the
            # bias into the product; rowwise ones want a bf16 output and a separate add.
            bias = self.bias.to(torch.bfloat16) if self.static and self.bias is not None else None
            out = torch._scaled_mm(
                x_q,
                self.weight_q.t(),
                scale_a=x_scale,
                scale_b=self.weight_scale,
                bias=bias,
                out_dtype=torch.bfloat16,
                use_fast_accum=True,
            )
            return out, bias is not None
        acc = torch._int_mm(x_q, self.weight_q.t())  # (M, N) int32
        return acc.float() * x_scale * self.weight_scale, False

    def _emulated(self, rows: torch.Tensor) -> torch.Tensor:
        x_q, x_scale = self._quantize_input(rows)
        if self.scheme == "int8":
            acc = int_mm_reference(x_q, self.weight_q.t()).float()
        else:
            # E4M3 values are exact in float32, so this differs from the tensor cores only in summation order.
            acc = x_q.float() @ self.weight_q.float().t()
        return acc * x_scale * self.weight_scale


def plan_linear_layers(
    module: nn.Module,
    *,
    example_inputs: Sequence[torch.Tensor] | None = None,
    min_features: int = 64,
    min_rows: int = INT_MM_MIN_ROWS,
    skip: Iterable[str] = (),
) -> dict[str, str | None]:
    """Every ``nn.Linear`` of ``module`` by name -> ``None`` if it would be swapped, else why it is kept.

    Kept in their dtype: layers whose in/out features are not multiples of 16 (``_scaled_mm`` refuses
    them); layers narrower than ``min_features`` (output heads such as PixArt's 32-wide ``proj_out``,
    where the saving is nil and the error lands straight on the prediction); names matching a ``skip``
    glob; and, when ``example_inputs`` are given (one forward pass records each layer's row count),
    layers that see fewer than ``min_rows`` rows per call. That last rule keeps the timestep and
    conditioning embeddings (one row per image) in bf16: there the per-call quantization costs more
    than the tiny matmul, ``_int_mm`` cannot run them, and they scale every block's activations.
    """
    patterns = tuple(skip)
    linears = {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear) and name}
    rows = _observed_rows(module, linears, example_inputs) if example_inputs is not None else None
    plan: dict[str, str | None] = {}
    for name, linear in linears.items():
        k, n = linear.in_features, linear.out_features
        if k % FEATURE_MULTIPLE or n % FEATURE_MULTIPLE:
            plan[name] = f"features {k}->{n} are not multiples of {FEATURE_MULTIPLE}"
        elif min(k, n) < min_features:
            plan[name] = f"features {k}->{n} narrower than {min_features}"
        elif any(fnmatch.fnmatchcase(name, p) for p in patterns):
            plan[name] = "matches a skip pattern"
        elif rows is not None and rows[name] == 0:
            plan[name] = "not called on the example inputs"
        elif rows is not None and rows[name] < min_rows:
            plan[name] = f"{rows[name]} rows per call, fewer than {min_rows}"
        else:
            plan[name] = None
    return plan


def quantize_linear_layers(
    module: nn.Module,
    scheme: str,
    *,
    example_inputs: Sequence[torch.Tensor] | None = None,
    min_features: int = 64,
    min_rows: int = INT_MM_MIN_ROWS,
    skip: Iterable[str] = (),
    input_amax: Mapping[str, float] | None = None,
) -> list[str]:
    """Swap, in place, the ``nn.Linear`` layers that ``plan_linear_layers`` selects for ``QuantizedLinear``.

    Returns the swapped layers' names. Weights are quantized from their current values, so cast the
    module to its run dtype (bf16) and device first; the kept layers and everything else stay as they are.
    ``input_amax`` (from ``record_input_amax``) gives every swapped layer a static activation scale;
    without it activations are quantized per row at each call.
    """
    fmt = _format(scheme)
    plan = plan_linear_layers(
        module, example_inputs=example_inputs, min_features=min_features, min_rows=min_rows, skip=skip
    )
    swapped = [name for name, reason in plan.items() if reason is None]
    if input_amax is not None and (missing := [n for n in swapped if n not in input_amax]):
        raise EdgeDiffError(
            f"static activation scales are missing for {len(missing)} layer(s) (first: {missing[0]}); "
            "calibrate with record_input_amax on inputs that reach every layer"
        )
    for name in swapped:
        linear = module.get_submodule(name)
        _require_device(linear.weight.device, scheme, fmt)
        parent_name, _, child = name.rpartition(".")
        amax = None if input_amax is None else input_amax[name]
        setattr(module.get_submodule(parent_name), child, QuantizedLinear.from_linear(linear, scheme, amax))
    return swapped


def _require_device(device: torch.device, scheme: str, fmt: _Format) -> None:
    if device.type == "cuda" and fmt.dtype == torch.float8_e4m3fn:
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) < (8, 9):
            raise EdgeDiffError(
                f"scheme {scheme!r} needs fp8 tensor cores (compute capability 8.9+, Ada or Hopper); "
                f"this GPU is {major}.{minor}: use int8"
            )


def record_input_amax(module: nn.Module, calibration: Iterable[Sequence[torch.Tensor]]) -> dict[str, float]:
    """The largest |input| each ``nn.Linear`` of ``module`` saw over the calibration forward passes.

    Pass inputs spread over the timesteps the sampler will visit: a denoiser's activation range moves
    with the timestep, and a scale calibrated at one end saturates at the other.
    """
    linears = {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear) and name}
    amax: dict[str, float] = {}

    def recorder(name: str):
        def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            amax[name] = max(amax.get(name, 0.0), float(args[0].detach().abs().amax()))

        return hook

    handles = [linear.register_forward_pre_hook(recorder(name)) for name, linear in linears.items()]
    try:
        with torch.no_grad():
            for inputs in calibration:
                module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return amax


def _observed_rows(
    module: nn.Module, linears: dict[str, nn.Linear], example_inputs: Sequence[torch.Tensor]
) -> dict[str, int]:
    """The most rows each layer multiplied in one forward pass over ``example_inputs``."""
    rows = dict.fromkeys(linears, 0)

    def recorder(name: str):
        def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0]
            rows[name] = max(rows[name], x.numel() // max(x.shape[-1], 1))

        return hook

    handles = [linear.register_forward_pre_hook(recorder(name)) for name, linear in linears.items()]
    try:
        with torch.no_grad():
            module(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def check_options(scheme: Scheme) -> None:
    """Refuse int8 options this backend does not implement; builds call it before capturing calibration."""
    if isinstance(scheme, Int8Static) and (scheme.hybrid or scheme.smooth_quant_alpha is not None
                                           or scheme.linears_as_convolutions):
        raise EdgeDiffError("hybrid int8, SmoothQuant and linears_as_convolutions are ONNX/OpenVINO options; the "
                            "aoti format runs plain static int8: use the scheme's defaults")
