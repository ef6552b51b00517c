"""Blockwise 4-bit weights for convolutions, shared by the ONNX and OpenVINO backends.

A convolution weight (O, C/g, kH, kW) is read as a matrix (O, K) with K = C/g*kH*kW, the same rows
a matmul weight has, and quantized in groups of ``group`` consecutive K entries. Both backends
store the result packed and dequantize it into the float convolution when the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_GROUP = 16  # ORT's MatMulNBits minimum; the same floor keeps scales at <= 2 bits per weight
# Convolutions with fewer inputs per output keep 8 bits. Those are the layers that read the raw
# latent: a UNet's conv_in (4 * 3 * 3 = 36) and a DiT's patch embedding (4 * 2 * 2 = 16). Every int8
# search here keeps them in float first. With the zoo DiT's patch embedding in 4 bits, its int4w
# search needed 8 layers in float (4.15x smaller instead of 6.27x).
MIN_CONV_INPUTS = 64


def conv_group(k: int, group_size: int) -> int | None:
    """The group for a convolution weight of ``k`` inputs per output: ``group_size``, halved while it
    does not divide ``k``. None, keeping int8, below ``MIN_GROUP`` or for ``k < MIN_CONV_INPUTS``.
    Whole groups keep the packed tensor one reshape away from the weight in both formats."""
    if k < MIN_CONV_INPUTS:
        return None
    group = group_size
    while group >= MIN_GROUP and k % group:
        group //= 2
    return group if group >= MIN_GROUP else None


@dataclass(frozen=True)
class Int4Blocks:
    """``values`` (O, K // group, group) in -8..7 (symmetric) or 0..15 (with ``zero_point``);
    ``scale`` and ``zero_point`` (O, K // group). Dequantized: (values - zero_point) * scale."""

    values: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray | None

    def dequantize(self) -> np.ndarray:
        zero = 0 if self.zero_point is None else self.zero_point[..., None]
        return ((self.values.astype(np.float32) - zero) * self.scale[..., None]).reshape(self.values.shape[0], -1)


def quantize_int4_blocks(weight: np.ndarray, group: int, symmetric: bool) -> Int4Blocks:
    """Round ``weight`` (O, ...) to 4 bits per ``group`` consecutive entries of each output row.

    Symmetric groups map their largest-magnitude entry to -8 exactly (as ggml's Q4_0 and ORT's
    MatMulNBits do), which uses all 16 levels instead of 15; asymmetric groups span min..max with a
    zero point.
    """
    rows = weight.reshape(weight.shape[0], -1).astype(np.float32)
    if rows.shape[1] % group:
        raise ValueError(f"{rows.shape[1]} weights per row do not split into groups of {group}")
    blocks = rows.reshape(rows.shape[0], -1, group)
    if symmetric:
        peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=-1)[..., None], axis=-1)[..., 0]
        scale = np.where(peak == 0, 1.0, peak / -8.0).astype(np.float32)
        values = np.clip(np.round(blocks / scale[..., None]), -8, 7).astype(np.int8)
        return Int4Blocks(values, scale, None)
    low = np.minimum(blocks.min(axis=-1), 0.0)
    high = np.maximum(blocks.max(axis=-1), 0.0)
    scale = np.where(high > low, (high - low) / 15.0, 1.0).astype(np.float32)
    zero_point = np.clip(np.round(-low / scale), 0, 15).astype(np.uint8)
    values = np.clip(np.round(blocks / scale[..., None]) + zero_point[..., None], 0, 15).astype(np.uint8)
    return Int4Blocks(values, scale, zero_point)


def pack_nibbles(values: np.ndarray) -> bytes:
    """Two 4-bit values per byte, the first in the low nibble (ONNX INT4/UINT4 raw data)."""
    flat = (values.reshape(-1).astype(np.int16) & 0x0F).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] | (flat[1::2] << 4)).tobytes()
