"""OpenVINO computes in the bundle's precision on every host, not in the plugin's host-dependent default.

On CPUs with bf16 units (AVX512-BF16, AMX) the CPU plugin's default computes float ops in bf16: an
fp16 bundle left to it failed its own parity check on such a host (rel L2 7.5e-3 against fp16's
5e-3, zoo:shapes-dit). These tests run the real plugin on that trained DiT's denoiser: a random-weight
model's activations amplify bf16 rounding past any tolerance a trained model needs.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgediff.runtimes.base import SessionOptions
from edgediff.runtimes.openvino import OpenVinoSession, cpu_has_bf16, inference_precision, keep_trig_arguments_in_f32


@pytest.fixture(scope="module")
def half_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """zoo:shapes-dit's denoiser for intel-cpu at fp16 and bf16."""
    from edgediff.build import build
    from edgediff.models import load_model
    from edgediff.recipe import Recipe
    from edgediff.targets import get_target

    root = tmp_path_factory.mktemp("openvino-half")
    out = {}
    for precision in ("fp16", "bf16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(load_model("zoo:shapes-dit"), get_target("intel-cpu"), Recipe(precision=precision, components=("denoiser",)),
                  root / precision)
        out[precision] = root / precision
    return out


def _denoiser_entry(bundle: Path) -> dict:
    components = json.loads((bundle / "manifest.json").read_text())["components"]
    return next(c for c in components if c["name"] == "denoiser")


def test_float_bundles_pin_their_precision_and_bf16_follows_the_cpu() -> None:
    assert inference_precision("fp32") == "f32"
    assert inference_precision("fp16") == "f32"  # fp16 weights, f32 compute: the same numbers on every host
    assert inference_precision("bf16") == ("bf16" if cpu_has_bf16() else "f32")
    assert inference_precision("int8") == "f32"  # quantized: the float ops left compute as the fp32 teacher


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_bundles_compute_as_their_precision_says(half_bundles: dict[str, Path], precision: str) -> None:
    bundle = half_bundles[precision]
    denoiser = _denoiser_entry(bundle)
    assert denoiser["precision"] == precision
    assert denoiser["parity"]["passed"], denoiser["parity"]
    session = OpenVinoSession(bundle / denoiser["entry"], SessionOptions(precision=precision))
    expected = "bf16" if precision == "bf16" and cpu_has_bf16() else "f32"
    assert session.compute_precision == expected
    # the weights are stored in fp16 either way: half the fp32 bundle's bytes
    assert "f16" in (bundle / "denoiser" / "model.xml").read_text()


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 units (AVX512-BF16 or AMX)")
def test_bf16_runs_in_bf16_where_the_cpu_has_it(half_bundles: dict[str, Path]) -> None:
    """bf16 and f32 compute of the same fp16-weight IR differ by bf16 rounding: measurably, and boundedly."""
    bundle = half_bundles["bf16"]
    entry = bundle / _denoiser_entry(bundle)["entry"]
    with np.load(bundle / "parity" / "denoiser.npz") as saved:
        feeds = {k[len("input."):]: saved[k] for k in saved.files if k.startswith("input.")}
    bf16 = OpenVinoSession(entry, SessionOptions(precision="bf16")).run(feeds)["noise_pred"]
    f32 = OpenVinoSession(entry, SessionOptions(precision="fp16")).run(feeds)["noise_pred"]
    rel = float(np.linalg.norm(bf16 - f32) / np.linalg.norm(f32))
    assert 1e-5 < rel < 3e-2


class _TimestepProjection(torch.nn.Module):
    """A sinusoidal timestep embedding (as in UNets and DiTs) followed by a linear layer."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        half = channels // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half))
        self.linear = torch.nn.Linear(channels, channels)

    def forward(self, timestep: torch.Tensor) -> torch.Tensor:
        args = timestep[:, None] * self.freqs[None, :]
        return self.linear(torch.cat([torch.sin(args), torch.cos(args)], dim=-1))


@pytest.fixture(scope="module")
def timestep_ir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    import openvino as ov

    torch.manual_seed(0)
    module = _TimestepProjection().eval()
    with torch.no_grad():
        model = ov.convert_model(module, example_input=(torch.tensor([999.0, 10.0]),))
    model.inputs[0].get_tensor().set_names({"timestep"})
    model.outputs[0].get_tensor().set_names({"emb"})
    path = tmp_path_factory.mktemp("timestep-ir") / "model.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path, module


def test_trig_outputs_are_added_and_the_session_returns_only_its_own(timestep_ir) -> None:
    import openvino as ov

    path, module = timestep_ir
    model = ov.Core().read_model(str(path))
    assert keep_trig_arguments_in_f32(model) == 2 and len(model.outputs) == 3
    session = OpenVinoSession(path, SessionOptions(precision="bf16"))
    assert set(session.run({"timestep": np.array([999.0, 10.0], np.float32)})) == {"emb"}


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 units (AVX512-BF16 or AMX)")
def test_bf16_keeps_the_timestep_embedding_in_f32(timestep_ir) -> None:
    """In bf16, t=999 becomes 1000 and sin(t*f) loses whole radians; the session keeps that path in f32.

    Only the linear layer is then left to bf16: its error is rounding (<1%), where the embedding's own
    bf16 error was tens of percent.
    """
    import openvino as ov

    path, module = timestep_ir
    timestep = np.array([999.0, 10.0], np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(timestep)).numpy()
    session = OpenVinoSession(path, SessionOptions(precision="bf16"))
    assert session.compute_precision == "bf16"
    kept = session.run({"timestep": timestep})["emb"]
    bare = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})({"timestep": timestep})[0]

    def rel(x: np.ndarray) -> float:
        return float(np.linalg.norm(x[0] - expected[0]) / np.linalg.norm(expected[0]))

    assert rel(kept) < 1e-2
    assert rel(bare) > 5 * rel(kept)  # the plugin alone rounds the embedding's arguments to bf16
