"""Linear layers traced as 1x1 convolutions for OpenVINO int8: the same layer in torch, a graph whose
token-wise Linears are int8 Convolutions, parity with PyTorch, and names that still map to modules."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from edgediff.export.base import ExportRequest, Quantization
from edgediff.quantize.openvino_linear_conv import LinearAs1x1Conv, linears_as_1x1_convolutions
from edgediff.quantize.schemes import Int8Static
from tests.quantize.conftest import INPUT_NAMES, denoiser_feeds

ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")

LINEARS = 6  # MiniUNetBlock: time_proj, to_q, to_k, to_v, to_out, ff
TOKEN_WISE = 5  # all but time_proj, which sees (B, C)


def _linears(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if type(m) is nn.Linear]


def test_the_swap_computes_the_same_layer_and_restores_the_module(mini_block, torch_outputs) -> None:
    feeds = denoiser_feeds(2, seed=3)
    before = torch_outputs(mini_block, feeds)
    with linears_as_1x1_convolutions(mini_block) as swapped:
        assert swapped == LINEARS and _linears(mini_block) == [f"{n}.linear" for n in _linears_named()]
        during = torch_outputs(mini_block, feeds)
    assert _linears(mini_block) == _linears_named()
    for a, b in zip(before, during, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="boom"), linears_as_1x1_convolutions(mini_block):
        assert isinstance(mini_block.to_q, LinearAs1x1Conv)
        raise RuntimeError("boom")
    assert type(mini_block.to_q) is nn.Linear  # restored when the block raises too
    with linears_as_1x1_convolutions(mini_block, keep=["to_out", "ff"]) as swapped:
        assert swapped == LINEARS - 2 and type(mini_block.to_out) is nn.Linear and type(mini_block.ff) is nn.Linear


def _linears_named() -> list[str]:
    return ["time_proj", "to_q", "to_k", "to_v", "to_out", "ff"]


def _export(mini_block, scheme: Int8Static, out_dir, calibration):
    from edgediff.export.openvino import OpenVinoExporter

    example = tuple(torch.from_numpy(calibration[0][n]) for n in INPUT_NAMES)
    request = ExportRequest("denoiser", mini_block, example, INPUT_NAMES, ("noise_pred",), "int8", out_dir,
                            Quantization(scheme, calibration))
    return ov.Core().read_model(str(OpenVinoExporter().export(request)))


def _weighted_ops(model) -> Counter[str]:
    return Counter(op.get_type_name() for op in model.get_ops()
                   if op.get_type_name() in ("Convolution", "MatMul")
                   and op.input_value(1).get_node().get_type_name() != "Parameter"
                   and op.get_friendly_name().startswith("__module."))


def test_int8_export_quantizes_token_linears_as_convolutions_with_parity(
    mini_block, torch_outputs, worst_cosine, tmp_path
) -> None:
    from edgediff.quantize.nncf_openvino import openvino_layers
    from edgediff.runtimes.openvino import compile_for_bundle

    calibration, held_out = denoiser_feeds(8, seed=1), denoiser_feeds(3, seed=99)
    (tmp_path / "conv").mkdir()
    (tmp_path / "matmul").mkdir()
    as_conv = _export(mini_block, Int8Static(linears_as_convolutions=True), tmp_path / "conv", calibration)
    as_matmul = _export(mini_block, Int8Static(), tmp_path / "matmul", calibration)  # the default
    assert _linears(mini_block) == _linears_named()  # the export left the module as it was

    convs = 3  # conv_in, conv, conv_out
    ops = _weighted_ops(as_conv)
    assert ops == {"Convolution": convs + TOKEN_WISE, "MatMul": 1}  # time_proj's (B, C) stays a matmul
    assert _weighted_ops(as_matmul) == {"Convolution": convs, "MatMul": LINEARS}
    # the layers still carry their module's name, which --keep-float and the fallback search use
    layers = openvino_layers(as_conv)
    assert {"to_q", "to_k", "to_v", "to_out", "ff", "time_proj.linear"} <= set(layers)
    assert all("Convolution" in name for name in layers["to_q"])

    reference = torch_outputs(mini_block, held_out)
    for model in (as_conv, as_matmul):
        compiled = compile_for_bundle(model, "int8", {})
        assert worst_cosine(reference, [compiled(feed)[0] for feed in held_out]) >= 0.995


def _transformer_block(activation: str) -> nn.Module:
    from diffusers.models.attention import BasicTransformerBlock

    torch.manual_seed(0)
    return BasicTransformerBlock(32, 2, 16, cross_attention_dim=24, activation_fn=activation).eval()


@pytest.mark.parametrize("activation", ["geglu", "gelu-approximate"])
def test_feed_forward_runs_channel_first_as_one_block_with_its_layer_names(activation: str) -> None:
    from edgediff.quantize.openvino_linear_conv import ChannelFirstFeedForward, ChannelFirstLinear

    block = _transformer_block(activation)
    x, context = torch.randn(2, 20, 32), torch.randn(2, 7, 24)
    with torch.no_grad():
        before = block(x, encoder_hidden_states=context)
        with linears_as_1x1_convolutions(block) as swapped:
            assert swapped == len(_linears(block)) == 10  # 2 x (q, k, v, out) + the feed-forward's 2
            assert isinstance(block.ff, ChannelFirstFeedForward)
            assert isinstance(block.get_submodule("ff.net.0.proj"), ChannelFirstLinear)
            assert isinstance(block.get_submodule("ff.net.2"), ChannelFirstLinear)
            during = block(x, encoder_hidden_states=context)
    torch.testing.assert_close(during, before, rtol=1e-5, atol=1e-5)
    assert type(block.ff).__name__ == "FeedForward" and type(block.get_submodule("ff.net.2")) is nn.Linear


def test_a_feed_forward_with_a_layer_kept_in_float_falls_back_to_the_per_layer_swap() -> None:
    block = _transformer_block("geglu")
    with linears_as_1x1_convolutions(block, keep=["ff.net.2"]) as swapped:
        assert type(block.ff).__name__ == "FeedForward"
        assert isinstance(block.get_submodule("ff.net.0.proj"), LinearAs1x1Conv)
        assert type(block.get_submodule("ff.net.2")) is nn.Linear and swapped == 9


def test_channel_first_feed_forward_traces_to_fewer_transposes_with_named_convolutions() -> None:
    from edgediff.quantize.nncf_openvino import openvino_layers

    block = _transformer_block("geglu")
    x = torch.randn(1, 64, 32)

    def convert(swap: bool):  # noqa: ANN202
        class FeedForwardOnly(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.ff = block.ff

            def forward(self, h: torch.Tensor) -> torch.Tensor:
                return self.ff(h)

        wrapper = FeedForwardOnly()
        with torch.no_grad():
            if not swap:
                return ov.convert_model(wrapper, example_input=x)
            with linears_as_1x1_convolutions(wrapper):
                return ov.convert_model(wrapper, example_input=x)

    def transposes(model) -> int:  # noqa: ANN001
        return sum(op.get_type_name() == "Transpose" for op in model.get_ops())

    channel_first = convert(swap=True)
    assert transposes(channel_first) == 2  # in and out of the block; none between its layers
    layers = openvino_layers(channel_first)
    assert sorted(layers) == ["ff.net.0.proj", "ff.net.2"]
    assert all("Convolution" in n for names in layers.values() for n in names)
    reference = ov.Core().compile_model(convert(swap=False), "CPU")([x.numpy()])[0]
    ours = ov.Core().compile_model(channel_first, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})([x.numpy()])[0]
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
