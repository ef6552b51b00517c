"""``tools.bench compare``: workers speak the peers' protocol, ratios are per-round medians, reports say what they claim.

Fast tests use the tiny bundles of ``conftest.bundle_for`` and synthetic round data; the slow one runs
the whole comparison (eager, the ONNX Runtime peer's venv, an edgediff bundle) on ``config:tiny-sd``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tools.bench import compare, compare_report

REPO = Path(compare.__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"


def _run_worker(module: str, args: list[str], commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = compare.worker_env("passive")
    done = subprocess.run([sys.executable, "-m", module, *args], input="".join(json.dumps(c) + "\n" for c in commands),
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow  # builds and serves a bundle in a worker process (about 30 s); CI's untargeted slow group
def test_edgediff_worker_speaks_the_peer_protocol_on_a_tiny_bundle(bundle_for, tmp_path: Path) -> None:
    bundle = bundle_for("x86-cpu")
    manifest = json.loads((bundle / "manifest.json").read_text())
    png = tmp_path / "img.png"
    lines = _run_worker("tools.bench.workers.edgediff_worker", ["--bundle", str(bundle), "--threads", "1"], [
        {"op": "step"},
        {"op": "generate", "prompt": "a red circle", "steps": 2, "seed": 0, "save": str(png)},
        {"op": "dance"},
        {"op": "quit"},
        {"op": "step"},  # after quit: never answered
    ])
    ready, step, generate, bad = lines  # one line per command, nothing else on stdout
    assert ready["ready"] is True and ready["engine"] == "edgediff-x86-cpu-fp32"
    assert ready["step_inputs"]["sample"][0] == manifest["pipeline"]["denoiser_batch"]
    assert step["ms"] > 0 and generate["ms"] > step["ms"]
    assert "dance" in bad["error"]
    from PIL import Image

    assert Image.open(png).size == (manifest["pipeline"]["width"], manifest["pipeline"]["height"])


@pytest.mark.slow  # builds and runs a tiny pipeline through two worker processes (about 30 s)
def test_eager_and_an_fp32_bundle_make_the_same_image_from_the_same_seed(tmp_path: Path) -> None:
    """Every engine starts from the same noise, so quality differences are the engine's, not the sample's."""
    import numpy as np
    from PIL import Image

    from edgediff.api import export_bundle
    from edgediff.models.random_pipeline import write_random_pipeline
    from tests.conftest import TINY

    folder = write_random_pipeline(TINY, tmp_path / "tiny-sd")  # one folder (weights, tokenizer) for both engines
    bundle = export_bundle(str(folder), "x86-cpu", tmp_path / "bundle").path
    pipeline = json.loads((bundle / "manifest.json").read_text())["pipeline"]
    generate = {"op": "generate", "prompt": "a red circle", "steps": 2, "seed": 3}
    _run_worker("tools.bench.workers.edgediff_worker", ["--bundle", str(bundle), "--threads", "1"],
                [generate | {"save": str(tmp_path / "edgediff.png")}])
    _run_worker("tools.bench.workers.eager_worker",
                ["--model-dir", str(folder), "--height", str(pipeline["height"]), "--width", str(pipeline["width"]),
                 "--guidance-scale", str(pipeline["guidance_scale"]), "--threads", "1"],
                [generate | {"save": str(tmp_path / "eager.png")}, generate | {"seed": 4, "save": str(tmp_path / "other.png")}])
    edge, eager, other = (np.asarray(Image.open(tmp_path / f"{n}.png"), np.float32)
                          for n in ("edgediff", "eager", "other"))
    assert np.abs(edge - eager).mean() < 1.0  # uint8 levels: rounding apart
    assert np.abs(eager - other).mean() > 10 * np.abs(edge - eager).mean() + 1.0  # the seed does matter


def test_a_worker_that_cannot_start_answers_one_not_ready_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tools.bench.workers.edgediff_worker", "--bundle", str(tmp_path),
                           "--threads", "1"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=compare.worker_env("passive"), check=False)
    (line,) = done.stdout.splitlines()
    message = json.loads(line)
    assert done.returncode == 1 and message["ready"] is False and "\n" not in message["error"]


def test_restarted_engines_run_one_at_a_time_and_still_answer_every_turn(bundle_for, tmp_path: Path) -> None:
    """Not resident: no engine process outlives its turn, so a dozen SD-scale engines never share memory."""
    from tools.bench.worker_process import EngineSpec, EngineTurns

    command = [sys.executable, "-m", "tools.bench.workers.edgediff_worker", "--bundle", str(bundle_for("x86-cpu")),
               "--threads", "1"]
    engines = EngineTurns(False, tmp_path / "logs", compare.worker_env("passive"), ready_timeout=120)
    assert engines.start(EngineSpec("a", "edgediff", command=command), {"bundle_export_s": 1.0}) is None
    assert engines.start(EngineSpec("broken", "edgediff", command=[*command[:-3], str(tmp_path), "--threads", "1"]),
                         {}) is not None
    assert list(engines.ready) == ["a"] and engines.ready["a"]["bundle_export_s"] == 1.0
    seen = []
    for _ in range(2):
        with engines.turn("a") as worker:
            assert worker.ask({"op": "step"}, 60)["ms"] > 0
            seen.append(worker.proc)
    assert seen[0] is not seen[1] and all(proc.poll() is not None for proc in seen)
    assert (tmp_path / "logs" / "a.log").is_file()
    engines.close()


def test_median_ratio_is_the_median_of_per_round_ratios_over_rounds_both_ran() -> None:
    base = [100.0, 200.0, None, 90.0]
    other = [50.0, 50.0, 10.0, 90.0]
    # ratios 2, 4, (skipped), 1 -> median 2; the ratio of the medians (95/50) would differ
    assert compare.median_ratio(base, other) == 2.0
    assert compare.median_ratio([None], [1.0]) is None


def test_a_turn_times_only_the_steps_after_its_untimed_warmup() -> None:
    args = compare.parse_args(["--warmup-steps", "2", "--step-repeats", "3", "--steps", "1", "4"])
    commands = compare.turn_commands(args, round_index=7)
    assert [c["op"] for c in commands] == ["step"] * 5 + ["generate", "generate"]
    assert [c["steps"] for c in commands[5:]] == [1, 4] and commands[5]["seed"] == 7
    answers = [{"ms": ms} for ms in (2300.0, 1900.0, 1500.0, 1510.0, 1490.0, 7000.0, 12000.0)]
    assert compare.timed_turn(args, answers) == {"step_ms": [1500.0, 1510.0, 1490.0],
                                                 "e2e_ms": {"1": 7000.0, "4": 12000.0}}
    with pytest.raises(SystemExit):
        compare.parse_args(["--warmup-steps", "-1"])


def test_rotation_puts_every_engine_first_once_per_cycle() -> None:
    names = ["a", "b", "c"]
    orders = [compare.rotated(names, r) for r in range(3)]
    assert [o[0] for o in orders] == names
    assert all(sorted(o) == names for o in orders)
    assert compare.rotated([], 4) == []


def _rounds(step: list[float], e2e1: list[float]) -> list[dict[str, Any]]:
    return [{"step_ms": [s, s * 1.1, s * 0.9], "e2e_ms": {"1": e}} for s, e in zip(step, e2e1, strict=True)]


def test_summary_speedups_fastest_peer_and_share_of_peak() -> None:
    rounds = {
        compare.BASELINE: _rounds([100, 120, 110], [300, 300, 300]),
        "optimum-openvino-fp32": _rounds([50, 60, 55], [150, 160, 155]),
        "optimum-onnxruntime-fp32": _rounds([80, 80, 80], [100, 100, 100]),
        "edgediff-x86-cpu-fp32": _rounds([25, 30, 25], [100, 80, 100]),
    }
    kinds = {compare.BASELINE: "eager", "optimum-openvino-fp32": "peer", "optimum-onnxruntime-fp32": "peer",
             "edgediff-x86-cpu-fp32": "edgediff"}
    flops = dict.fromkeys(rounds, 2e9)
    results, fastest = compare.summarize(rounds, kinds, [1], flops, peak_gflops=100.0)
    assert fastest == {"step": "optimum-openvino-fp32", "e2e_1": "optimum-onnxruntime-fp32"}
    ours = results["edgediff-x86-cpu-fp32"]
    # p50 over all 9 samples (25, 27.5, 22.5, 30, ...) is 27 ms
    assert ours["p50_step_ms"] == 27.0 and ours["p50_e2e_ms"] == {"1": 100.0}
    assert ours["speedup_vs_eager"]["step"] == pytest.approx(4.0)  # rounds: 4, 4, 4.4
    assert ours["speedup_vs_fastest_peer"]["step"] == pytest.approx(2.0)  # 2, 2, 2.2
    assert ours["speedup_vs_fastest_peer"]["e2e_1"] == pytest.approx(1.0)  # 1, 1.25, 1
    assert results[compare.BASELINE]["speedup_vs_eager"]["step"] == 1.0
    assert ours["gflops_per_s"] == pytest.approx(2 / 0.027) and ours["share_of_measured_peak"] == pytest.approx(2 / 0.027 / 100)


def test_each_engine_is_also_compared_with_the_fastest_peer_of_its_own_precision() -> None:
    rounds = {
        "optimum-onnxruntime-int8": _rounds([40, 40], [90, 90]),  # fastest peer overall
        "optimum-openvino-fp32": _rounds([60, 60], [100, 100]),
        "optimum-onnxruntime-fp32": _rounds([80, 80], [120, 120]),
        "edgediff-x86-cpu-fp32": _rounds([50, 60], [100, 100]),
        "edgediff-intel-cpu-int8-conv": _rounds([20, 20], [60, 60]),
    }
    kinds = {n: "peer" if n.startswith("optimum") else "edgediff" for n in rounds}
    results, fastest = compare.summarize(rounds, kinds, [1], {}, None)
    assert fastest["step"] == "optimum-onnxruntime-int8"
    fp32 = results["edgediff-x86-cpu-fp32"]
    assert fp32["speedup_vs_fastest_peer"]["step"] == pytest.approx(0.7333, abs=1e-3)  # median of 40/50, 40/60
    assert fp32["same_precision_peer"]["step"] == "optimum-openvino-fp32"
    assert fp32["speedup_vs_same_precision_peer"]["step"] == pytest.approx(1.1)  # 60/50, 60/60
    conv = results["edgediff-intel-cpu-int8-conv"]
    assert conv["same_precision_peer"] == {"step": "optimum-onnxruntime-int8", "e2e_1": "optimum-onnxruntime-int8"}
    assert compare.precision_family("edgediff-x86-cpu-fp32-cache3-tinyvae-guided") == "fp32"
    assert compare.precision_family("optimum-openvino-int8-hybrid") == "int8"
    assert compare.precision_family("edgediff-arm64-cpu-int4w") == "int4"
    # a run written before the column existed gets it from its stored rounds
    old = {**_result(), "fastest_peer": fastest,
           "engines": {n: {"kind": kinds[n], "rounds": rounds[n], **{k: v for k, v in results[n].items()
                                                                  if "same_precision" not in k}} for n in rounds}}
    row = next(line for line in compare_report.markdown(old).splitlines() if line.startswith("| edgediff-x86-cpu-fp32 "))
    assert "| 0.73x | 1.10x |" in row


def _result(model: str = "zoo:shapes-unet") -> dict[str, Any]:
    rounds = {compare.BASELINE: _rounds([100, 100], [300, 300]), "optimum-openvino-int8": _rounds([60, 60], [200, 200]),
              "edgediff-intel-cpu-int8": _rounds([30, 30], [90, 90])}
    kinds = {compare.BASELINE: "eager", "optimum-openvino-int8": "peer", "edgediff-intel-cpu-int8": "edgediff"}
    results, fastest = compare.summarize(rounds, kinds, [1], dict.fromkeys(rounds, 1e9), 50.0)
    engines = {n: {"kind": kinds[n], **results[n], "quality": {"adherence": 0.9, "fd": 300.0, "fd_floor": 180.0}}
               for n in rounds}
    return {"model": model, "height": 64, "width": 64, "guidance_scale": 5.0, "denoiser_batch": 2, "steps": [1],
            "rounds": 2, "step_repeats": 3, "threads": 2, "omp_wait_policy": "passive", "fastest_peer": fastest,
            "gflop_per_step_by_batch": {"2": 1.0}, "peak": {"library": "torch sgemm", "measured_peak_gflops": 50.0,
                                                            "threads": 2},
            "quality": {"prompts": 4, "prompt_set": "v1", "steps": 30, "seed": 0},
            "loadavg": {"before_rounds": [1.0, 1.0, 1.0], "after_rounds": [1.2, 1.0, 1.0]},
            "host": {"cpu": "test cpu", "cpu_count": 2}, "engines": engines,
            "skipped": {"optimum-onnxruntime-int8": "no venv"}, "command": "python -m tools.bench compare"}


def test_markdown_table_has_a_row_per_engine_with_its_numbers_and_the_skips() -> None:
    text = compare_report.markdown(_result())
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 3  # header + engines
    ours = next(r for r in rows if r.startswith("| edgediff-intel-cpu-int8 "))
    cells = [c.strip() for c in ours.strip("|").split("|")]
    # step ms, e2e 1, vs eager, vs best peer, vs best same-precision peer (step, then e2e), GFLOP/s, % peak,
    # adherence, FD
    assert cells[1:] == ["30.0", "90", "3.33x", "2.00x", "2.00x", "3.33x", "2.22x", "2.22x", "33.3", "66.7%",
                         "0.900", "300.0"]
    assert "Skipped optimum-onnxruntime-int8: no venv" in text and "[1.0, 1.0, 1.0]" in text


def test_svg_is_well_formed_with_one_bar_per_engine_in_each_panel() -> None:
    result = _result()
    result["engines"]["a<b&c"] = {**result["engines"][compare.BASELINE], "kind": "peer"}  # names are escaped
    root = ET.fromstring(compare_report.svg(result))
    bars = [r for r in root.iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]
    assert len(bars) == len(result["engines"]) * (1 + len(result["steps"]))
    widths = {r.find(f"{SVG_NS}title").text: float(r.get("width")) for r in bars}
    # within a panel, bar length is proportional to the value: 30 ms is 0.3 of 100 ms
    assert widths["edgediff-intel-cpu-int8: 30.0 ms"] == pytest.approx(0.3 * widths["pytorch-eager-fp32: 100.0 ms"], rel=0.01)
    assert "a<b&c" in [t.text for t in root.iter(f"{SVG_NS}text")]


def test_docs_page_is_regenerated_from_every_compare_json(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "benchmarks"
    compare_report.write(_result("zoo:shapes-unet"), out / "compare_zoo_shapes-unet_64x64")
    compare_report.write(_result("config:sd-turbo"), out / "compare_config_sd-turbo_256x256")
    assert {p.suffix for p in out.iterdir()} == {".json", ".md", ".svg"}
    (out / "gpu_quant_step.md").write_text("| model | share of bf16 peak |\n|---|---:|\n| `config:sd15` | 27% |\n")
    page = compare_report.write_docs(out, tmp_path / "docs" / "benchmarks.md").read_text()
    assert page.index("## config:sd-turbo") < page.index("## zoo:shapes-unet")  # sorted by file name
    assert page.index("## zoo:shapes-unet") < page.index("## H100") < page.index("| `config:sd15` | 27% |")
    assert "(benchmarks/compare_zoo_shapes-unet_64x64.svg)" in page and "python -m tools.bench docs" in page


def test_a_labelled_run_sits_beside_the_full_one_with_its_note(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks"
    full, focused = _result("config:sd-turbo"), _result("config:sd-turbo")
    focused.update(label="int8w", note="weight-only int8 against the peers' weight-only int8")
    for result in (full, focused):
        stem = compare.result_stem(result["model"], result["height"], result["width"], result.get("label"))
        compare_report.write(result, out / stem)
    assert sorted(p.name for p in out.glob("*.json")) == ["compare_config_sd-turbo_64x64.json",
                                                          "compare_config_sd-turbo_64x64_int8w.json"]
    page = compare_report.write_docs(out, tmp_path / "benchmarks.md").read_text()
    assert "## config:sd-turbo at 64x64\n" in page and "## config:sd-turbo at 64x64 (int8w)" in page
    assert "Note: weight-only int8 against the peers' weight-only int8" in page


def test_engine_plan_names_every_engine_and_filters_by_pattern(tmp_path: Path) -> None:
    args = compare.parse_args(["--work", str(tmp_path)])
    geometry = {"height": 64, "width": 64, "guidance_scale": 5.0}
    names = [s.name for s in compare.plan_engines(args, lambda: tmp_path, geometry)]
    # bf16 and int8-conv are intel-cpu precisions only (OpenVINO's); int8-hybrid an ONNX and OpenVINO
    # one (XNNPACK has no weight-only int8 kernel); every target builds fp32, int8 and int8w
    assert names[0] == compare.BASELINE and len(names) == 1 + 6 + 3 * 3 + 1 + 2 + 1
    assert {"optimum-openvino-int8-hybrid", "optimum-openvino-bf16", "optimum-onnxruntime-int8", "edgediff-arm64-cpu-int8",
            "edgediff-x86-cpu-int8w", "edgediff-intel-cpu-bf16", "edgediff-x86-cpu-int8-hybrid",
            "edgediff-intel-cpu-int8-hybrid", "edgediff-intel-cpu-int8-conv"} <= set(names)
    assert not {"edgediff-x86-cpu-bf16", "edgediff-arm64-cpu-int8-hybrid", "edgediff-x86-cpu-int8-conv"} & set(names)
    args = compare.parse_args(["--work", str(tmp_path), "--engines", "edgediff-*-int8", compare.BASELINE])
    picked = compare.plan_engines(args, lambda: tmp_path, geometry)
    assert [s.name for s in picked] == [compare.BASELINE, "edgediff-x86-cpu-int8", "edgediff-intel-cpu-int8",
                                        "edgediff-arm64-cpu-int8"]
    assert all(s.command == [] for s in picked)  # nothing is prepared (no export, no venv) until the run starts


def test_cached_and_distilled_decoder_variants_get_their_own_engines_and_bundle_folders(tmp_path: Path) -> None:
    args = compare.parse_args(["--work", str(tmp_path), "--cache-interval", "3", "--tiny-decoder",
                               "--engines", "edgediff-intel-cpu-fp32*"])
    names = [s.name for s in compare.plan_engines(args, lambda: tmp_path, {"height": 64, "width": 64,
                                                                           "guidance_scale": 5.0})]
    assert names == ["edgediff-intel-cpu-fp32", "edgediff-intel-cpu-fp32-cache3", "edgediff-intel-cpu-fp32-tinyvae",
                     "edgediff-intel-cpu-fp32-cache3-tinyvae"]
    args = compare.parse_args(["--work", str(tmp_path), "--tiny-decoder", "--engines", "edgediff-*-bf16*"])
    names = [s.name for s in compare.plan_engines(args, lambda: tmp_path, {"height": 64, "width": 64,
                                                                           "guidance_scale": 5.0})]
    assert names == ["edgediff-intel-cpu-bf16", "edgediff-intel-cpu-bf16-tinyvae"]  # bf16: intel-cpu's alone
    args = compare.parse_args(["--work", str(tmp_path), "--tiny-decoder", "--cache-interval", "3",
                               "--engines", "edgediff-intel-cpu-bf16-cache3*"])
    names = [s.name for s in compare.plan_engines(args, lambda: tmp_path, {"height": 64, "width": 64,
                                                                           "guidance_scale": 5.0})]
    assert names == ["edgediff-intel-cpu-bf16-cache3", "edgediff-intel-cpu-bf16-cache3-tinyvae"]
    folder = compare.bundle_folder_name("zoo:shapes-unet", "intel-cpu", "fp32", 64, 64,
                                        {"cache_interval": 3, "decoder": "tiny"})
    assert folder == "zoo_shapes-unet-64x64-intel-cpu-fp32-cache3-tinyvae"


def test_guided_variants_pair_the_student_with_every_float_variant(tmp_path: Path) -> None:
    args = compare.parse_args(["--work", str(tmp_path), "--cache-interval", "3", "--tiny-decoder", "--guided",
                               "--engines", "edgediff-intel-cpu-fp32*"])
    names = [s.name for s in compare.plan_engines(args, lambda: tmp_path, {"height": 64, "width": 64,
                                                                           "guidance_scale": 5.0})]
    assert names == ["edgediff-intel-cpu-fp32", "edgediff-intel-cpu-fp32-cache3", "edgediff-intel-cpu-fp32-tinyvae",
                     "edgediff-intel-cpu-fp32-cache3-tinyvae", "edgediff-intel-cpu-fp32-guided",
                     "edgediff-intel-cpu-fp32-cache3-guided", "edgediff-intel-cpu-fp32-tinyvae-guided",
                     "edgediff-intel-cpu-fp32-cache3-tinyvae-guided"]
    assert compare.bundle_folder_name("zoo:shapes-unet", "x86-cpu", "fp32", 64, 64, {"denoiser": "guided"}) == (
        "zoo_shapes-unet-64x64-x86-cpu-fp32-guided")


@pytest.mark.slow
def test_compare_runs_eager_the_onnxruntime_peer_and_a_bundle_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "compare", "--model", "config:tiny-sd", "--rounds", "2",
         "--step-repeats", "2", "--threads", "1", "--quality-prompts", "0", "--engines", compare.BASELINE,
         "optimum-onnxruntime-fp32", "edgediff-x86-cpu-fp32", "--work", str(tmp_path / "work"), "--out", str(out),
         "--docs", str(tmp_path / "benchmarks.md")],
        capture_output=True, text=True, timeout=1800, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(out.glob("compare_config_tiny-sd_*.json")).read_text())
    assert set(result["engines"]) == {compare.BASELINE, "optimum-onnxruntime-fp32", "edgediff-x86-cpu-fp32"}
    for engine in result["engines"].values():
        assert engine["p50_step_ms"] > 0 and engine["speedup_vs_eager"]["step"] > 0 and len(engine["rounds"]) == 2
