"""Benchmark peers: pinned requirement locks, venv reuse by hash, and the worker's command line and protocol.

The fast tests need no peer venv. The slow one builds the ONNX Runtime peer's venv (downloads,
minutes) and drives the worker over a tiny random pipeline.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tools.bench.peers import venvs

WORKER = Path(venvs.__file__).with_name("optimum_worker.py")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][0-9A-Za-z.+!-]*)$")


def _worker_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("optimum_worker", WORKER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not an exact name==version pin"
        pins[match["name"].lower().replace("_", "-")] = match["version"]
    return pins


@pytest.mark.parametrize("name", ["optimum-intel", "optimum-onnxruntime"])
def test_requirements_are_an_exact_lock_with_the_local_cpu_torch(name: str) -> None:
    pins = _pins(venvs.requirements_path(name))
    assert pins["torch"] == venvs.TORCH_PIN
    assert {"transformers", "diffusers", "huggingface-hub", "optimum"} <= pins.keys()
    # Installed with --no-deps: anything that would swap in a CUDA torch must be absent.
    assert not [p for p in pins if p in ("torchvision", "triton") or p.startswith(("nvidia-", "cuda-"))]


def test_engine_packages_are_pinned_per_peer() -> None:
    intel = _pins(venvs.requirements_path("optimum-intel"))
    ort = _pins(venvs.requirements_path("optimum-onnxruntime"))
    assert {"optimum-intel", "openvino", "nncf", "openvino-tokenizers"} <= intel.keys()
    assert {"optimum-onnx", "onnx", "onnxruntime"} <= ort.keys()


def test_unknown_peer_names_the_known_ones() -> None:
    with pytest.raises(venvs.PeerEnvError, match="optimum-onnxruntime"):
        venvs.requirements_path("tensorrt")


def test_venv_folder_follows_the_requirements_content(tmp_path: Path) -> None:
    reqs = tmp_path / "peer.txt"
    reqs.write_text("torch==2.13.0\n")
    first = venvs.requirements_hash(reqs)
    assert venvs.requirements_hash(reqs) == first
    reqs.write_text("torch==2.13.0\nonnx==1.23.2\n")
    assert venvs.requirements_hash(reqs) != first


def test_a_finished_venv_is_reused_without_running_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = venvs.venv_dir("optimum-onnxruntime", tmp_path)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / venvs.DONE_MARK).write_text("")

    def no_subprocess(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished venv must not be rebuilt")

    monkeypatch.setattr(venvs.subprocess, "run", no_subprocess)
    assert venvs.ensure_peer_env("optimum-onnxruntime", tmp_path) == venv / "bin" / "python"


def test_failed_creation_is_one_actionable_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venvs.sys, "executable", shutil.which("false") or "/bin/false")
    with pytest.raises(venvs.PeerEnvError) as info:
        venvs.ensure_peer_env("optimum-onnxruntime", tmp_path)
    message = str(info.value)
    assert "\n" not in message and "failed (exit 1)" in message and "full log:" in message
    assert not (venvs.venv_dir("optimum-onnxruntime", tmp_path) / venvs.DONE_MARK).exists()


def test_worker_help_runs_without_the_peer_packages() -> None:
    done = subprocess.run([sys.executable, str(WORKER), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for flag in ("--backend", "--model-dir", "--cache-dir", "--precision", "--guidance-scale", "--threads"):
        assert flag in done.stdout


def test_worker_arguments_and_cache_key(tmp_path: Path) -> None:
    worker = _worker_module()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_index.json").write_text("{}")
    base = ["--model-dir", str(tmp_path / "m"), "--cache-dir", str(tmp_path / "c"), "--height", "256",
            "--width", "256", "--guidance-scale", "0", "--threads", "2"]
    ov = worker.parse_args(["--backend", "openvino", "--precision", "int8", *base])
    ort = worker.parse_args(["--backend", "onnxruntime", *base])
    assert (ov.precision, ort.precision, ov.threads, ov.height) == ("int8", "fp32", 2, 256)
    assert worker.cache_key(ov) != worker.cache_key(ort)
    assert worker.cache_key(ort) == worker.cache_key(worker.parse_args(["--backend", "onnxruntime", *base]))
    with pytest.raises(SystemExit):
        worker.parse_args(["--backend", "tensorrt", *base])


class _FakeSession:
    def step_ms(self) -> float:
        return 1.5

    def generate_ms(self, prompt: str, steps: int, seed: int, save: str | None) -> float:
        if steps < 1:
            raise ValueError("steps must be positive")
        return 10.0 * steps


class _Sent:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.lines.append(message)


def test_worker_answers_one_json_line_per_command_and_survives_bad_ones() -> None:
    import io

    worker = _worker_module()
    commands = [{"op": "step"}, {"op": "generate", "prompt": "x", "steps": 2, "seed": 0, "save": None},
                {"op": "generate", "prompt": "x", "steps": 0, "seed": 0, "save": None}, {"op": "dance"},
                {"op": "quit"}, {"op": "step"}]
    sent = _Sent()
    worker.serve(_FakeSession(), sent, io.StringIO("\n".join(json.dumps(c) for c in commands) + "\n"))
    assert sent.lines[:2] == [{"ms": 1.5}, {"ms": 20.0}]
    assert "steps must be positive" in sent.lines[2]["error"] and "dance" in sent.lines[3]["error"]
    assert len(sent.lines) == 4  # nothing answered after quit


@pytest.mark.slow
def test_onnxruntime_peer_runs_a_tiny_random_pipeline(tmp_path: Path) -> None:
    from edgediff.models.random_pipeline import write_random_pipeline

    python = venvs.ensure_peer_env("optimum-onnxruntime")
    folder = write_random_pipeline("config:tiny-sd", tmp_path / "tiny-sd")
    png = tmp_path / "out.png"
    commands = [{"op": "step"}, {"op": "generate", "prompt": "a red circle", "steps": 1, "seed": 0, "save": str(png)},
                {"op": "quit"}]
    done = subprocess.run(
        [str(python), str(WORKER), "--backend", "onnxruntime", "--model-dir", str(folder), "--cache-dir",
         str(tmp_path / "cache"), "--precision", "fp32", "--height", "32", "--width", "32", "--guidance-scale", "5",
         "--threads", "1"],
        input="".join(json.dumps(c) + "\n" for c in commands), capture_output=True, text=True, timeout=600, check=False,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr[-2000:]
    ready, step, generate = lines
    assert ready["ready"] is True and ready["versions"]["onnxruntime"] and ready["step_inputs"]["arg0"][0] == 2
    assert step["ms"] > 0 and generate["ms"] > 0 and png.is_file()


def test_pixart_pipelines_run_at_the_bundles_size_and_token_length() -> None:
    """The zoo DiT raised "Invalid sample size" (sample size 8 has no aspect-ratio bins) and then
    "Sequence length must be less than max_position_embeddings" (120 tokens into 24 positions)."""
    from types import SimpleNamespace

    from diffusers import PixArtAlphaPipeline, StableDiffusionPipeline

    from tools.bench.peers.optimum_worker import same_work_arguments

    class PixArtLike(SimpleNamespace):
        __call__ = PixArtAlphaPipeline.__call__

    class StableDiffusionLike(SimpleNamespace):
        __call__ = StableDiffusionPipeline.__call__

    tokenizer = SimpleNamespace(model_max_length=24)
    assert same_work_arguments(PixArtLike(tokenizer=tokenizer)) == {"use_resolution_binning": False,
                                                                   "max_sequence_length": 24}
    assert same_work_arguments(StableDiffusionLike(tokenizer=tokenizer)) == {}
