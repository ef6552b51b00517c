"""Fallback search and the weight-error proxy, on synthetic cases with exact expectations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgediff.errors import EdgeDiffError
from edgediff.quantize.sensitivity import fallback_sizes, search_fallback_layers, sensitivity_from_weights

LAYERS = [f"layer{i}" for i in range(10)]
SENSITIVITY = {name: float(i) for i, name in enumerate(LAYERS)}  # layer9 most sensitive


def _quality_when(needed: set[str]):
    """Quality 1.0 once every layer in ``needed`` is kept in float, else the fraction that is."""
    calls: list[tuple[str, ...]] = []

    def quality_of(ignored):
        calls.append(tuple(ignored))
        return len(needed & set(ignored)) / len(needed)

    return quality_of, calls


def test_batches_double_and_end_at_the_cap() -> None:
    assert fallback_sizes(10, 10) == [0, 1, 2, 4, 8, 10]
    assert fallback_sizes(10, 4) == [0, 1, 2, 4]
    assert fallback_sizes(3, 100) == [0, 1, 2, 3]
    assert fallback_sizes(10, 0) == [0]


def test_search_keeps_the_most_sensitive_first_and_stops_at_the_first_batch_that_meets_the_target() -> None:
    quality_of, calls = _quality_when({"layer9", "layer7", "layer6"})

    result = search_fallback_layers(LAYERS, quality_of, 0.99, SENSITIVITY, max_fallback=10)

    assert result.met
    assert result.ignored == ("layer9", "layer8", "layer7", "layer6")
    assert result.trace == ((0, 0.0), (1, 1 / 3), (2, 1 / 3), (4, 1.0))
    assert len(calls) == 4  # not 5 or 6: the 8 and 10 batches were never evaluated


def test_search_that_cannot_meet_the_target_returns_the_best_batch_seen() -> None:
    quality_of, _ = _quality_when({"layer9", "layer0"})  # layer0 ranks last

    result = search_fallback_layers(LAYERS, quality_of, 0.99, SENSITIVITY, max_fallback=4)

    assert not result.met
    assert result.ignored == ("layer9",)  # 1, 2 and 4 layers all reach 0.5; the smallest wins
    assert [size for size, _ in result.trace] == [0, 1, 2, 4]
    with pytest.raises(EdgeDiffError, match="max_fallback"):
        search_fallback_layers(LAYERS, quality_of, 0.99, SENSITIVITY, max_fallback=-1)


def test_already_good_quantization_keeps_nothing_in_float() -> None:
    result = search_fallback_layers(LAYERS, lambda ignored: 1.0, 0.99, SENSITIVITY, max_fallback=10)
    assert result.met and result.ignored == () and result.trace == ((0, 1.0),)


def _net(outlier: bool) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.Conv2d(8, 8, 3), nn.Linear(64, 64))
    with torch.no_grad():
        for layer in net:
            layer.weight.normal_(0, 0.05)
        if outlier:
            net[2].weight[3, 5] = 4.0  # one weight 80 sigma out
    return net


def test_a_layer_with_an_outlier_weight_ranks_most_sensitive() -> None:
    plain = sensitivity_from_weights(_net(outlier=False), bits=8)
    scores = sensitivity_from_weights(_net(outlier=True), bits=8)

    assert set(scores) == {"0", "1", "2"}
    assert max(scores, key=scores.get) == "2"
    assert scores["2"] > 100 * plain["2"]
    assert scores["0"] == plain["0"] and scores["1"] == plain["1"]


def test_fewer_bits_and_coarser_groups_mean_larger_error() -> None:
    net = _net(outlier=False)
    int8 = sensitivity_from_weights(net, bits=8)
    int4_grouped = sensitivity_from_weights(net, bits=4, group_size=16)
    int4_channel = sensitivity_from_weights(net, bits=4)
    for name in int8:
        assert int8[name] < int4_grouped[name]
    assert int4_grouped["0"] < int4_channel["0"]  # groups only apply to Linear layers
    assert int4_grouped["1"] == int4_channel["1"]


def test_tiny_unet_gets_a_score_for_every_conv_and_linear(tiny_unet) -> None:
    scores = sensitivity_from_weights(tiny_unet, bits=8)
    layers = [n for n, m in tiny_unet.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert sorted(scores) == sorted(layers) and len(layers) == 83
    assert all(score > 0 for score in scores.values())


def test_output_sensitivity_ranks_the_layer_whose_quantization_hurts_the_output_most() -> None:
    import torch

    from edgediff.quantize.schemes import Int4Weight, Int8Static
    from edgediff.quantize.sensitivity import sensitivity_from_outputs

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 64))
    with torch.no_grad():
        model[0].weight[5], model[0].bias[5] = 0.0, -10.0  # feature 5 is ~0 after GELU, so the outlier
        model[2].weight[3, 5] = 40.0  # below adds nothing, but its row's scale rounds that row's weights away
    inputs = [(torch.randn(8, 64),) for _ in range(2)]
    for scheme in (Int8Static(), Int4Weight(group_size=16)):
        scores = sensitivity_from_outputs(model, inputs, scheme)
        assert set(scores) == {"0", "2"}
        assert scores["2"] > 1.2 * scores["0"] > 0
    # the module is left exactly as it was
    assert model[2].weight[3, 5].item() == 40.0 and not model[0]._forward_pre_hooks
