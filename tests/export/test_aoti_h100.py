"""The aoti format (the ``h100`` target): AOTInductor packages at fp32, bf16 and static fp8/int8, run by
the aoti runtime and checked against PyTorch.

This host has no GPU, so the packages here are compiled for the CPU through the same exporter and
runtime code (``AotiExporter(device="cpu")``); the quantized layers then run their CPU emulation of
``_scaled_mm``/``_int_mm``. The CUDA build of a zoo model is measured on the lent H100 (see
docs/quantization.md). Each package compiles C++ (about 20 s here), hence one module-scoped export per
precision.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgediff.errors import EdgeDiffError, ExportError
from edgediff.export.aoti import AotiExporter, cast_inputs, check_cpp_compiler
from edgediff.export.base import ExportRequest, Quantization
from edgediff.export.parity import compare, tolerance_for
from edgediff.quantize.schemes import Fp8, Int8Static
from edgediff.runtimes.base import open_session

INPUTS = ("sample", "timestep", "encoder_hidden_states")
WIDTH = 64  # the narrowest layer torch_gpu swaps


class TinyDenoiser(nn.Module):
    """Patchify conv, timestep embedding, cross-attention and a feed-forward: the ops a denoiser compiles."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(4, WIDTH, 2, stride=2)
        self.time = nn.Linear(WIDTH, WIDTH)
        self.q, self.k, self.v, self.out = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.ff1, self.ff2 = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)
        self.conv_out = nn.ConvTranspose2d(WIDTH, 4, 2, stride=2)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(sample)
        freqs = torch.exp(-torch.arange(WIDTH // 2, dtype=torch.float32, device=h.device) / (WIDTH // 2) * 9.21)
        angles = timestep.float()[:, None] * freqs[None]
        temb = self.time(torch.cat([angles.sin(), angles.cos()], 1).to(h.dtype))
        x = (h + temb[:, :, None, None]).flatten(2).transpose(1, 2)  # (B, 64 tokens, C)
        attn = F.scaled_dot_product_attention(self.q(x), self.k(context), self.v(context))
        x = x + self.out(attn)
        x = x + self.ff2(F.gelu(self.ff1(x)))
        return self.conv_out(x.transpose(1, 2).reshape(h.shape))


def _feeds(seed: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    return {"sample": g.standard_normal((2, 4, 16, 16), dtype=np.float32),
            "timestep": np.array([g.uniform(0, 999)] * 2, dtype=np.float32),
            "encoder_hidden_states": g.standard_normal((2, 8, WIDTH), dtype=np.float32)}


@pytest.fixture(scope="module")
def model() -> TinyDenoiser:
    torch.manual_seed(0)
    return TinyDenoiser().eval()


def _reference(model: nn.Module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(feeds[n]) for n in INPUTS)).numpy()


@pytest.fixture(scope="module")
def package(model, tmp_path_factory):
    """precision -> the session of a CPU package built at it (compiled on first use)."""
    built: dict[str, object] = {}

    def build(precision: str):
        if precision not in built:
            quantization = None
            if precision in ("fp8", "int8"):
                scheme = Fp8() if precision == "fp8" else Int8Static()
                quantization = Quantization(scheme, [_feeds(seed) for seed in range(4)], ignored=("conv_in",))
            out = tmp_path_factory.mktemp(precision)
            request = ExportRequest("denoiser", model, tuple(torch.from_numpy(a) for a in _feeds(99).values()),
                                    INPUTS, ("noise_pred",), precision, out, quantization)
            entry = AotiExporter(device="cpu").export(request)
            built[precision] = (entry, open_session("aoti", entry))
        return built[precision]

    return build


# Each precision is a C++ compile (20-40 s on 2 cores), so the packages run with CI's slow tests
# (-k h100); the fast suite keeps the wrapper, refusal and compiler checks, which compile nothing.
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp8", "int8"])
def test_a_package_runs_within_its_precisions_tolerance_of_pytorch(precision, model, package) -> None:
    entry, session = package(precision)
    feeds = _feeds(7)  # not among the calibration feeds
    report = compare(_reference(model, feeds), session.run(feeds)["noise_pred"])
    print(f"aoti {precision}: {report}")
    assert tolerance_for("denoiser", precision).passes(report), report
    assert json.loads((entry.parent / "model.io.json").read_text()) == {
        "inputs": list(INPUTS), "outputs": ["noise_pred"], "device": "cpu"}


@pytest.mark.slow
def test_quantized_packages_swap_the_linears_and_are_not_bf16(model, package) -> None:
    """fp8 must differ from bf16 (its layers really quantize) and stay closer to fp32 than a noise floor."""
    feeds = _feeds(8)
    reference = _reference(model, feeds)
    bf16 = compare(reference, package("bf16")[1].run(feeds)["noise_pred"])
    fp8 = compare(reference, package("fp8")[1].run(feeds)["noise_pred"])
    assert fp8.rel_l2_err > bf16.rel_l2_err
    assert fp8.cosine > 0.99
    assert next(model.parameters()).dtype == torch.float32  # the exporter worked on a copy


def test_timesteps_stay_fp32_while_activations_cast() -> None:
    sample, timestep, ids = torch.ones(1, 4, 2, 2), torch.tensor([999.0]), torch.ones(1, 3, dtype=torch.int64)
    cast = cast_inputs([sample, timestep, ids], torch.bfloat16)
    assert [t.dtype for t in cast] == [torch.bfloat16, torch.float32, torch.int64]
    assert cast[1].item() == 999.0


def test_requests_the_format_cannot_build_are_refused(model, tmp_path) -> None:
    example = tuple(torch.from_numpy(a) for a in _feeds(0).values())

    def request(precision: str, quantization=None) -> ExportRequest:
        return ExportRequest("denoiser", model, example, INPUTS, ("noise_pred",), precision, tmp_path, quantization)

    if not torch.cuda.is_available():
        with pytest.raises(ExportError, match="torch sees none; build the bundle on the machine with the target GPU"):
            AotiExporter().export(request("bf16"))
    with pytest.raises(EdgeDiffError, match="not 'fp16'"):
        AotiExporter(device="cpu").module_to_compile(request("fp16"))
    with pytest.raises(EdgeDiffError, match="needs calibration feeds"):
        AotiExporter(device="cpu").module_to_compile(request("fp8", Quantization(Fp8(), [])))
    with pytest.raises(EdgeDiffError, match="plain static int8"):
        AotiExporter(device="cpu").module_to_compile(request("int8", Quantization(Int8Static(hybrid=True), [_feeds(1)])))


def test_a_compiler_without_a_shared_libstdcxx_is_refused_before_compiling(tmp_path, monkeypatch) -> None:
    """Such a compiler (a toolchain beside the system's, found only ``libstdc++.a``) built packages
    that crashed the process on load; the system g++ names its ``libstdc++.so``."""
    check_cpp_compiler("g++")
    static_only = tmp_path / "g++"
    static_only.write_text('#!/bin/sh\ncase "$1" in -print-file-name=*) echo "${1#-print-file-name=}";; esac\n')
    static_only.chmod(0o755)
    monkeypatch.setenv("CXX", str(static_only))
    with pytest.raises(ExportError, match=r"has no libstdc\+\+\.so, .* unset CXX or point it at the system g\+\+"):
        check_cpp_compiler(str(static_only))
    with pytest.raises(ExportError, match="does not run"):
        check_cpp_compiler(str(tmp_path / "missing-g++"))
