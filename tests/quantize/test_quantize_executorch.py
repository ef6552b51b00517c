"""PT2E / torchao quantization for ExecuTorch's XNNPACK delegate: each scheme's module lowers with
``XnnpackPartitioner``, runs in ``executorch.runtime`` close to fp32, and makes a smaller .pte.

The default tests use a miniature UNet block (lowering the tiny SD UNet takes minutes on 2 cores);
``-m slow`` runs the tiny SD UNet. Bounds were set from measured values with margin (8 calibration
feeds, 3 held-out feeds). Block: int8 0.9996, int8w 0.99999, int4w 0.9982 worst cosine; fp32 weight
bytes / .pte bytes 3.4x, 1.27x, 4.0x (68% of the block's weights are convolutions, which int8w leaves
float on XNNPACK and int4w quantizes W8A8). Tiny SD UNet (slow, about 6 minutes): int8 0.999 cosine, 2.9x.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgediff.errors import EdgeDiffError
from edgediff.export.parity import compare
from edgediff.quantize.pt2e_xnnpack import SUPPORTED, adjusted_group_size, quantize_for_xnnpack
from edgediff.quantize.schemes import Fp16, Int4Weight, Int8Static, Int8Weight

pytest.importorskip("executorch")

INPUT_NAMES = ("sample", "timestep", "encoder_hidden_states")


def _lower_and_run(module: torch.nn.Module, example_inputs, feeds, path: Path) -> list[np.ndarray]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    with torch.no_grad():
        exported = torch.export.export(module, tuple(example_inputs))
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)
    method = Runtime.get().load_program(str(path)).load_method("forward")
    return [method.execute([torch.from_numpy(f[n]) for n in INPUT_NAMES])[0].numpy() for f in feeds]


def _weight_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _quant_ops(module: torch.nn.Module) -> set[str]:
    graph = getattr(module, "graph", None)
    if graph is None:  # torchao's quantize_ leaves an eager module with quantized weight tensors
        return {type(m.weight).__name__ for m in module.modules() if isinstance(m, torch.nn.Linear)}
    return {str(n.target) for n in graph.nodes if n.op == "call_function" and "quantize" in str(n.target)}


def _linear_weight_kinds(graph_module: torch.fx.GraphModule) -> dict[str, str]:
    """Each linear's innermost module name -> "int4" when its weight comes through torchao's dequantize."""
    return {_module_of(n): "int4" if "dequantize_affine" in str(n.args[1].target) else "float"
            for n in graph_module.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.linear.default}


def _conv_weight_kinds(graph_module: torch.fx.GraphModule) -> dict[str, str]:
    """Each convolution's innermost module name -> "int8" when its weight comes through PT2E's dequantize."""
    return {_module_of(n): "int8" if "dequantize_per_channel" in str(n.args[1].target) else "float"
            for n in graph_module.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.conv2d.default}


def _module_of(node: torch.fx.Node) -> str:
    return list(node.meta["nn_module_stack"].values())[-1][0].split(".")[-1]


def _example(feed) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(feed[n]) for n in INPUT_NAMES)


CASES = {
    "int8": (Int8Static(), 0.998, 3.0),
    "int8w": (Int8Weight(), 0.9995, 1.15),
    "int4w": (Int4Weight(), 0.99, 3.5),
}


# int8 (static, the scheme with the most lowering machinery) in the fast suite; the weight-only two,
# about 15 s each, with CI's untargeted slow group
@pytest.mark.parametrize("case", ["int8", *(pytest.param(c, marks=pytest.mark.slow) for c in ("int8w", "int4w"))])
def test_each_scheme_lowers_to_xnnpack_runs_close_to_fp32_and_shrinks_the_program(
    case, mini_block, calibration_feeds, eval_feeds, torch_outputs, worst_cosine, tmp_path
) -> None:
    scheme, min_cosine, min_ratio = CASES[case]
    example = _example(calibration_feeds[0])
    quantized = quantize_for_xnnpack(mini_block, example, scheme, calibration_feeds, input_names=INPUT_NAMES)

    pte = tmp_path / "q.pte"
    cosine = worst_cosine(torch_outputs(mini_block, eval_feeds), _lower_and_run(quantized, example, eval_feeds, pte))
    ratio = _weight_bytes(mini_block) / pte.stat().st_size
    ops = _quant_ops(quantized)
    print(f"executorch {case}: cosine={cosine:.5f} pte_ratio={ratio:.2f} ops={sorted(ops)}")
    assert cosine >= min_cosine
    assert ratio >= min_ratio
    if case == "int8":
        assert "quantized_decomposed.dequantize_per_channel.default" in ops
        assert "quantized_decomposed.quantize_per_tensor.default" in ops  # static activation ranges
    elif case == "int8w":
        assert "quantized_decomposed.choose_qparams.tensor" in ops  # activation range chosen per call
    else:  # 4-bit linear weights, and static int8 ranges for the convolutions
        assert "torchao.dequantize_affine.default" in ops
        assert "quantized_decomposed.quantize_per_tensor.default" in ops


def test_ignored_modules_stay_float_and_the_input_module_is_unchanged(mini_block, calibration_feeds) -> None:
    example = _example(calibration_feeds[0])
    before = {k: v.clone() for k, v in mini_block.state_dict().items()}

    quantized = quantize_for_xnnpack(mini_block, example, Int4Weight(group_size=32), calibration_feeds[:2],
                                     ignored=["to_q", "ff", "conv"], input_names=INPUT_NAMES)

    linears = _linear_weight_kinds(quantized)
    assert linears["to_q"] == linears["ff"] == "float"
    assert linears["to_k"] == "int4"
    convs = _conv_weight_kinds(quantized)
    assert convs["conv"] == "float" and convs["conv_in"] == convs["conv_out"] == "int8"
    assert all(torch.equal(before[k], v) for k, v in mini_block.state_dict().items())

    converted = quantize_for_xnnpack(mini_block, example, Int8Weight(), [], ignored=["to_out"])
    weights = [n for n in converted.graph.nodes if "dequantize_per_channel" in str(n.target)]
    assert len(weights) == len(linears) - 1  # every linear but to_out


def test_group_size_adjusts_to_layer_width_like_nncf() -> None:
    assert adjusted_group_size(320, 64) == 64
    assert adjusted_group_size(32, 64) == 32
    assert adjusted_group_size(96, 64) == 32
    assert adjusted_group_size(40, 64) is None


def test_unsupported_requests_are_user_errors(mini_block) -> None:
    example = ()
    with pytest.raises(EdgeDiffError, match="does not support scheme 'fp16'.*supported: int4w, int8, int8w"):
        quantize_for_xnnpack(mini_block, example, Fp16(), [])
    with pytest.raises(EdgeDiffError, match="symmetric only"):
        quantize_for_xnnpack(mini_block, example, Int4Weight(symmetric=False), [])
    with pytest.raises(EdgeDiffError, match="no weight-only int8 kernel"):
        quantize_for_xnnpack(mini_block, example, Int8Static(hybrid=True), [])
    with pytest.raises(EdgeDiffError, match="torch module FQNs"):
        quantize_for_xnnpack(mini_block, example, Int8Weight(), [], ignored=["node_conv2d"])
    assert SUPPORTED == {"int8", "int8w", "int4w"}


@pytest.mark.slow
def test_tiny_sd_unet_int8_lowers_and_runs_close_to_fp32(
    tiny_unet, unet_example_inputs, calibration_feeds, eval_feeds, unet_reference, worst_cosine, tmp_path
) -> None:
    quantized = quantize_for_xnnpack(tiny_unet, unet_example_inputs, Int8Static(), calibration_feeds)
    pte = tmp_path / "unet.pte"
    cosine = worst_cosine(unet_reference, _lower_and_run(quantized, unet_example_inputs, eval_feeds, pte))
    ratio = _weight_bytes(tiny_unet) / pte.stat().st_size
    print(f"executorch tiny-sd int8: cosine={cosine:.5f} pte_ratio={ratio:.2f}")
    assert cosine >= 0.99
    assert ratio >= 2.5


# The id names the target so that CI's per-target slow run (-k arm64-cpu) takes it.
@pytest.mark.slow
@pytest.mark.parametrize("target", ["arm64-cpu"])
def test_tiny_sd_unet_int8w_lowers_although_every_resnet_reads_one_activation(
    target, tiny_unet, unet_example_inputs, eval_feeds, unet_reference, worst_cosine, tmp_path
) -> None:
    """Dynamic quantization shares one quantize chain among the linears reading the same activation (the
    time embedding feeds every resnet's projection, the text embedding every cross-attention's K and V);
    left shared, XNNPACK's partitioner glued distant layers together and lowering failed with "Invalid
    partition, found dependency cycles" (measured on this UNet). Measured cosine 0.99999+; about 2 minutes."""
    quantized = quantize_for_xnnpack(tiny_unet, unet_example_inputs, Int8Weight(), [])
    cosine = worst_cosine(unet_reference, _lower_and_run(quantized, unet_example_inputs, eval_feeds,
                                                         tmp_path / "unet.pte"))
    print(f"executorch tiny-sd int8w: cosine={cosine:.5f}")
    assert cosine >= 0.999


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.slow  # two XNNPACK lowerings per case (about 25 s each); CI's untargeted slow group
@pytest.mark.parametrize("case", ["int8", "int4w"])
def test_a_search_trial_computes_what_the_lowered_program_computes(
    case, mini_block, calibration_feeds, eval_feeds, torch_outputs, tmp_path
) -> None:
    """The fallback search scores trials without lowering. Rounding in XNNPACK's int8 kernels differs
    from the reference graph's (measured on this block: 1.5e-2 rel L2 between the two, each 2.6e-2 from
    fp32), so the two are different draws of the same quantization noise: what the search needs is
    that the trial's error against fp32 is the lowered program's, within a few percent."""
    from edgediff.export.base import ExportRequest, Quantization
    from edgediff.export.executorch import ExecuTorchExporter

    scheme = CASES[case][0]
    example = _example(calibration_feeds[0])
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    request = ExportRequest("denoiser", mini_block, example, INPUT_NAMES, ("out",), case, trial_dir,
                            Quantization(scheme, calibration_feeds))
    trial = ExecuTorchExporter().trial_session(request)
    trial_outputs = [trial.run(feed)["out"] for feed in eval_feeds]
    assert not any(trial_dir.iterdir())  # a trial writes no files

    quantized = quantize_for_xnnpack(mini_block, example, scheme, calibration_feeds, input_names=INPUT_NAMES)
    lowered = _lower_and_run(quantized, example, eval_feeds, tmp_path / "q.pte")
    fp32 = torch_outputs(mini_block, eval_feeds)
    for trial_out, lowered_out, fp32_out in zip(trial_outputs, lowered, fp32, strict=True):
        trial_error, lowered_error = _rel_l2(trial_out, fp32_out), _rel_l2(lowered_out, fp32_out)
        gap = _rel_l2(trial_out, lowered_out)
        print(f"{case}: vs fp32 trial {trial_error:.2e} lowered {lowered_error:.2e}; trial vs lowered {gap:.2e}")
        assert abs(trial_error - lowered_error) < 0.1 * lowered_error
        assert gap < lowered_error


def test_the_exporter_and_runtime_wrapper_run_a_block_at_fp32_parity(
    mini_block, eval_feeds, torch_outputs, tmp_path
) -> None:
    """edgediff's own ExecuTorch path (exporter, .io.json names, session) in the fast suite; the tiny
    model's whole arm64-cpu bundle, a 1.5-2 minute lowering, runs with CI's arm64-cpu slow group."""
    from edgediff.export import ExportRequest, get_exporter
    from edgediff.runtimes.base import SessionOptions, open_session

    example = tuple(torch.from_numpy(a) for a in eval_feeds[0].values())
    request = ExportRequest("denoiser", mini_block, example, INPUT_NAMES, ("noise_pred",), "fp32", tmp_path)
    session = open_session("executorch", get_exporter("executorch").export(request), SessionOptions(threads=2))
    for feed, reference in zip(eval_feeds, torch_outputs(mini_block, eval_feeds), strict=True):
        report = compare(reference, session.run(feed)["noise_pred"])
        assert report.rel_l2_err < 1e-4, report
