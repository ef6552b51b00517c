"""tools.bench.session_spin: every policy reaches the engine, and the table compares them to the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgediff.runtimes.base import SessionOptions, open_session
from edgediff.runtimes.onnxruntime import SPIN_CONFIG
from tools.bench import session_spin

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("policy", sorted(SPIN_CONFIG))
def test_each_spin_policy_sets_exactly_its_onnxruntime_entries(policy: str, ort_bundle: Path) -> None:
    from edgediff.bundle import open_bundle

    bundle = open_bundle(ort_bundle)
    session = open_session("onnxruntime", bundle.entry("denoiser"), SessionOptions(spin=policy))  # type: ignore[arg-type]
    options = session._session.get_session_options()  # type: ignore[attr-defined]
    for key in ("session.intra_op.allow_spinning", "session.force_spinning_stop"):
        assert _entry(options, key) == SPIN_CONFIG[policy].get(key), key  # type: ignore[index]


def _entry(options, key: str) -> str | None:  # noqa: ANN001
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # ONNX Runtime raises for a key never set
        return None


def test_bench_times_every_policy_and_writes_its_table(ort_bundle: Path, tmp_path: Path) -> None:
    session_spin.main(["--bundle", str(ort_bundle), "--policies", "never", "within-run", "--steps", "2",
                       "--rounds", "2", "--per-round", "1", "--threads", "1", "--label", "t", "--out", str(tmp_path)])
    report = json.loads(next(tmp_path.glob("session_spin_*_x86-cpu_t.json")).read_text())
    assert list(report["results"]) == ["never", "within-run"]
    assert report["results"]["never"]["image_speedup_vs_never"] == 1.0
    assert all(r["runs"] == 2 and r["step_p50_ms"] > 0 for r in report["results"].values())
    table = next(tmp_path.glob("session_spin_*.md")).read_text()
    assert "| within-run |" in table and "--prompt 'a red circle'" in table


def test_a_folder_that_is_no_bundle_is_named_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"is not an edgediff bundle \(no manifest.json\)"):
        session_spin.main(["--bundle", str(tmp_path), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
