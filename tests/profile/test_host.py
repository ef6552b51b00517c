"""A measurement's host names the instruction sets that decide its kernels."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgediff.profile.host import ISA_FEATURES, cpu_flags, host_info


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads /proc/cpuinfo")
def test_host_info_lists_the_cpus_isa_features_from_its_flags() -> None:
    flags = cpu_flags()
    info = host_info()
    assert info["isa"] == [name for name in ISA_FEATURES if name in flags]
    if "avx2" in flags:  # every x86-64 host this project measures on
        assert "avx2" in info["isa"]
    assert not set(info["isa"]) - set(ISA_FEATURES)
