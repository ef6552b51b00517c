from __future__ import annotations

from edgediff.profile.stats import summarize


def test_percentiles_of_a_known_sample() -> None:
    stats = summarize([float(v) for v in range(1, 101)])
    assert stats["p50_ms"] == 50.5
    assert abs(stats["p90_ms"] - 90.1) < 1e-9
    assert stats["min_ms"] == 1.0 and stats["runs"] == 100
