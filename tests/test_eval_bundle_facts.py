"""``edgediff eval`` on a bundle reports what it measured of the bundle itself: size and speed."""

from __future__ import annotations

from pathlib import Path

from edgediff.eval_runner import bundle_facts, generator_for, pipeline_for


def test_bundle_facts_report_size_and_the_per_step_latency_measured_while_generating(ort_bundle: Path) -> None:
    pipe = pipeline_for(str(ort_bundle))
    timings: list[dict[str, float]] = []
    images = generator_for(pipe, steps=2, timings=timings)(["w1 w2", "w3"], [0, 1])
    assert images.shape[0] == 2 and len(timings) == 2
    facts = bundle_facts(pipe, timings, 2)
    assert facts is not None
    files = [f for c in pipe.bundle.manifest["components"] for f in c["files"]]
    assert facts["bundle_bytes"] == sum(f["bytes"] for f in files) > facts["denoiser_bytes"] > 0
    assert facts["denoiser_step_ms"] == sum(t["denoise_ms"] / 2 for t in timings) / 2  # median of two
    assert (facts["target"], facts["precision"], facts["build_report"]) == ("x86-cpu", "fp32", None)


def test_a_model_reference_has_no_bundle_facts(tiny_model) -> None:  # noqa: ANN001
    from edgediff.models.torch_pipeline import torch_pipeline

    assert bundle_facts(torch_pipeline(tiny_model), [], None) is None
