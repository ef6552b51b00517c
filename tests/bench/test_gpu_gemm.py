"""The GEMM bench's table; its timings need CUDA and run on the GPU machine."""

from __future__ import annotations

import pytest
import torch

from tools.bench import gpu_gemm


def test_table_has_one_row_per_shape_with_each_kinds_ratio_to_bf16() -> None:
    result = {"device": "GPU", "torch": "2.x", "repeats": 3, "calls": 5, "command": "python -m tools.bench.gpu_gemm",
              "rows": [{"m": 8192, "k": 1152, "n": 4608, "bf16": {"ms": 0.12, "tflops": 715.0},
                        "int8": {"ms": 0.14, "tflops": 618.0, "vs_bf16": 0.86},
                        "fp8": {"ms": 0.08, "tflops": 1115.0, "vs_bf16": 1.5}}]}
    table = gpu_gemm.markdown(result)
    assert "| 8192 x 1152 x 4608 | 0.1200 | 715 | 0.1400 | 0.86x | 0.0800 | 1.50x |" in table


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (fp8 needs compute capability 8.9+)")
def test_every_kind_computes_the_same_product_shape_on_the_gpu() -> None:
    shapes = {kind: fn().shape for kind, fn in gpu_gemm.products(64, 32, 48).items()}
    assert shapes == {"bf16": (64, 48), "int8": (64, 48), "fp8": (64, 48)}
