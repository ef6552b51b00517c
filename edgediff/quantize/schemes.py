"""Quantization schemes: one frozen config per scheme, looked up by the name a target or recipe uses.

Following torchao's ``AOBaseConfig`` (``core/config.py``): a scheme is a small frozen dataclass with a
version and a JSON round trip, so a bundle's manifest records exactly what was applied and a later
build can read it back. A scheme says *what* to do; the backend for the target's format decides *how*
(``nncf_openvino``, ``ort_qdq``, ``pt2e_xnnpack``), and each backend lists the names it supports.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from edgediff.errors import EdgeDiffError
from edgediff.registry import Registry

SCHEMES: Registry[type[Scheme]] = Registry("quantization scheme")

T = TypeVar("T", bound="Scheme")


class Scheme:
    """Base of every scheme: a name, a version and a JSON round trip."""

    name: ClassVar[str]
    # Bumped when a field's meaning changes, so an old manifest is read the way it was written.
    version: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {"name": self.name, "version": self.version, **fields}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def upgrade(cls, values: dict[str, Any], version: int) -> dict[str, Any]:
        """A record written by an older ``version`` of this scheme, as the current one reads it."""
        return values


def _register(cls: type[T]) -> type[T]:
    SCHEMES.register(cls.name)(cls)
    return cls


def _check_group_size(group_size: int) -> None:
    # Every backend's packed kernels want a power of two: ORT's MatMulNBits needs >= 16, XNNPACK's
    # blockwise 4-bit path and NNCF accept any, so the common rule is the strict one.
    if group_size < 16 or group_size & (group_size - 1):
        raise EdgeDiffError(f"group_size must be a power of two >= 16, got {group_size}")


@_register
@dataclass(frozen=True)
class Fp16(Scheme):
    """Weights and compute in fp16, I/O in fp32. A cast done by the exporters; no calibration."""

    name: ClassVar[str] = "fp16"


@_register
@dataclass(frozen=True)
class Int8Static(Scheme):
    """W8A8: per-channel symmetric int8 weights, per-tensor int8 activations with calibrated ranges.

    Calibration feeds come from the real pipeline across all timesteps (Q-Diffusion, Li et al. 2023,
    section 3.2); ``calibration_samples`` caps how many a backend uses.
    """

    name: ClassVar[str] = "int8"
    version: ClassVar[int] = 2  # 2 adds linears_as_convolutions (off: version 1 records read as before)
    calibration_samples: int = 64
    # SmoothQuant (Xiao et al. 2023) migrates activation outliers into the weights of MatMuls;
    # None leaves it off, which is what optimum-intel does for diffusion models.
    smooth_quant_alpha: float | None = None
    # Corrects the shift quantization adds to each layer's mean output (Nagel et al. 2019, section 4.2).
    bias_correction: bool = True
    # optimum-intel's diffusion mode: weight-only int8 for MatMuls, full W8A8 for convolutions and
    # the rest. Keeps attention's activation ranges (which vary most across timesteps) in float.
    hybrid: bool = False
    # OpenVINO only, for CPUs without VNNI: trace token-wise Linear layers as 1x1 convolutions, whose
    # int8 kernel is fast on AVX2 where the int8 FullyConnected is not (``openvino_linear_conv``).
    # Off by default: it adds two transposes per layer, which made the layers 2.9x slower than the
    # int8 matmuls on an AMX Xeon (1.8x faster on AVX2). The other backends refuse it.
    linears_as_convolutions: bool = False

    def __post_init__(self) -> None:
        if self.calibration_samples < 1:
            raise EdgeDiffError(f"calibration_samples must be at least 1, got {self.calibration_samples}")
        if self.smooth_quant_alpha is not None and not 0.0 <= self.smooth_quant_alpha <= 1.0:
            raise EdgeDiffError(f"smooth_quant_alpha must be in [0, 1] or None, got {self.smooth_quant_alpha}")
        if self.hybrid and self.linears_as_convolutions:
            raise EdgeDiffError("hybrid int8 keeps Linear layers as weight-only matmuls and linears_as_convolutions "
                                "makes them W8A8 convolutions: set one of them")

    @classmethod
    def upgrade(cls, values: dict[str, Any], version: int) -> dict[str, Any]:
        return values  # version 1 had no linears_as_convolutions: the default (off) is what it did


@_register
@dataclass(frozen=True)
class Int8Weight(Scheme):
    """Weight-only int8, per output channel, symmetric; activations stay float. No calibration."""

    name: ClassVar[str] = "int8w"


@_register
@dataclass(frozen=True)
class Int4Weight(Scheme):
    """Weight-only int4 in groups of ``group_size`` input channels along each output channel.

    MatMul/Linear weights get 4 bits with the backend's packed kernels. Convolutions get
    ``conv_bits``, because a UNet keeps two thirds of its weights in them (zoo:shapes-unet: 66%).
    With int8 convolutions, as NNCF's backup mode gives them, its bundle was only 4.0-4.3x smaller
    than fp32. No CPU runtime here has a 4-bit convolution kernel, so 4-bit convolution weights are
    stored packed (groups over the flattened C/g*kH*kW input) and dequantized to float when the model
    loads. They shrink the file, not the compute.

    XNNPACK (arm64-cpu) has neither a weight-only convolution nor a load-time dequantization, so there
    convolutions are quantized W8A8 with static activation ranges, calibrated on
    ``calibration_samples`` pipeline feeds, whatever ``conv_bits`` says. The zoo UNet's program is
    4.37x smaller so, and was 1.40x with float convolutions. Backends that keep activations float
    never read ``calibration_samples`` and capture nothing for it.
    """

    name: ClassVar[str] = "int4w"
    version: ClassVar[int] = 2  # 2 adds conv_bits; version 1 stored convolutions at 8 bits
    group_size: int = 64
    symmetric: bool = True
    conv_bits: int = 4
    calibration_samples: int = 64

    def __post_init__(self) -> None:
        _check_group_size(self.group_size)
        if self.calibration_samples < 1:
            raise EdgeDiffError(f"calibration_samples must be at least 1, got {self.calibration_samples}")
        if self.conv_bits not in (4, 8):
            raise EdgeDiffError(f"conv_bits must be 4 or 8, got {self.conv_bits}")

    @classmethod
    def upgrade(cls, values: dict[str, Any], version: int) -> dict[str, Any]:
        return {"conv_bits": 8, **values} if version == 1 else values


@_register
@dataclass(frozen=True)
class Fp8(Scheme):
    """FP8 E4M3 weights and activations (Micikevicius et al. 2022). GPU only (Ada, Hopper and later):
    no CPU backend here runs it. Activations take static per-tensor scales calibrated across the
    timesteps: per-call dynamic scales measured slower than bf16 on an H100."""

    name: ClassVar[str] = "fp8"
    calibration_samples: int = 32

    def __post_init__(self) -> None:
        if self.calibration_samples < 1:
            raise EdgeDiffError(f"calibration_samples must be at least 1, got {self.calibration_samples}")


def get_scheme(name: str, **fields: Any) -> Scheme:
    """The scheme called ``name`` with defaults, or with ``fields`` overriding them."""
    cls = SCHEMES.get(name)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(fields) - known)
    if unknown:
        options = ", ".join(sorted(known)) or "none"
        raise EdgeDiffError(f"scheme {name!r} has no option {unknown[0]!r}; its options: {options}")
    return cls(**fields)


def scheme_from_json(data: str | Mapping[str, Any]) -> Scheme:
    """Read back what ``to_json()`` (a string) or ``to_dict()`` (a mapping) wrote."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise EdgeDiffError(f"quantization scheme is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping) or "name" not in data:
        raise EdgeDiffError("a quantization scheme record needs a 'name'")
    values = dict(data)
    name = values.pop("name")
    cls = SCHEMES.get(name)
    version = values.pop("version", cls.version)
    if version < cls.version:
        values = cls.upgrade(values, version)
    elif version != cls.version:
        raise EdgeDiffError(
            f"scheme {name!r} was written as version {version}; this edgediff reads versions up to "
            f"{cls.version}: upgrade edgediff to read it"
        )
    return get_scheme(name, **values)
