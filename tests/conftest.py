"""Shared fixtures: one tiny SD-shaped model and one exported bundle per runnable target.

Bundles are exported once per test session (an ExecuTorch lowering takes a minute even for a tiny
graph) and shared read-only by the tests that need them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

TINY = "config:tiny-sd"
# The tiny bundle's ExecuTorch lowering takes 1.5-2 minutes on 2 cores, a fifth of the fast suite's
# budget, so the tests over every target's bundle run arm64-cpu's with CI's per-target slow group
# (-k arm64-cpu); the fast suite lowers and runs ExecuTorch programs in tests/quantize instead.
BUNDLE_TARGET_PARAMS = ("x86-cpu", "intel-cpu", pytest.param("arm64-cpu", marks=pytest.mark.slow))


@pytest.fixture(scope="session")
def tiny_model():
    from edgediff.models import load_model

    return load_model(TINY)


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundles")


_BUILT: dict[str, Path] = {}


def built_bundle(target: str, tiny_model, root: Path) -> Path:
    from edgediff.build import build
    from edgediff.recipe import Recipe
    from edgediff.targets import get_target

    if target not in _BUILT:
        out = root / target
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(tiny_model, get_target(target), Recipe(), out)
        _BUILT[target] = out
    return _BUILT[target]


@pytest.fixture(scope="session", params=BUNDLE_TARGET_PARAMS)
def tiny_bundle(request: pytest.FixtureRequest, tiny_model, bundle_root: Path) -> Path:
    """The tiny model exported for each runnable target (parametrizes the test over targets)."""
    return built_bundle(request.param, tiny_model, bundle_root)


@pytest.fixture(scope="session")
def ort_bundle(tiny_model, bundle_root: Path) -> Path:
    return built_bundle("x86-cpu", tiny_model, bundle_root)


@pytest.fixture(scope="session")
def bundle_for(tiny_model, bundle_root: Path):
    """A function: target name -> the tiny model's bundle for it (built once)."""
    return lambda target: built_bundle(target, tiny_model, bundle_root)
