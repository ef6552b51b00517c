"""The cache plan: which denoiser steps run the full graph and which reuse its deep features.

DeepCache (Ma et al., 2023) observes that a UNet's deep features change slowly between adjacent
steps: it runs the full network every ``interval`` steps (uniform 1:N caching, the paper's Sec. 3.3)
and, in between, only the outermost down/up blocks, reading the cached input of the last up block.
The first step is always full, so a plan with interval N runs ceil(steps / N) full steps. The same
schedule drives a transformer's Δ-cache (``delta_transformer``): only what the features are differs, and
the plan keeps the name ``deepcache`` for both, so bundles written before the transformer split still open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from edgediff.errors import EdgeDiffError


@dataclass(frozen=True)
class CachePlan:
    """Uniform DeepCache: a full step every ``interval`` steps, the shallow graph in between."""

    method: ClassVar[str] = "deepcache"
    shallow_component: ClassVar[str] = "denoiser_shallow"
    feature: ClassVar[str] = "deep_features"  # the full denoiser's second output, the shallow one's last input
    interval: int

    def __post_init__(self) -> None:
        if not isinstance(self.interval, int) or self.interval < 1:
            raise EdgeDiffError(f"--cache-interval must be an integer >= 2 (1 turns caching off), got {self.interval!r}")

    def is_full_step(self, index: int) -> bool:
        return index % self.interval == 0

    def full_steps(self, steps: int) -> int:
        return sum(self.is_full_step(i) for i in range(steps))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "component": self.shallow_component, "feature": self.feature} | asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CachePlan | None:
        """The plan a manifest's ``pipeline.cache`` records (None: the bundle does not cache)."""
        if not data:
            return None
        if data.get("method") != cls.method:
            raise EdgeDiffError(f"this bundle caches with {data.get('method')!r}; this edgediff runs only "
                                f"{cls.method!r}: re-export the bundle")
        return cls(interval=int(data["interval"]))


def unmeasured_steps_note(manifest: dict[str, Any], steps: int | None) -> str | None:
    """Why a cached bundle's quality report does not cover ``steps``; None when it does (or nothing is cached).

    Caching reuses features across adjacent steps, and how far apart those are depends on the step count:
    on the zoo models, intervals that lose nothing at 30 steps lose 20-53 adherence points at 4
    (docs/benchmarks/cache_*_4steps.md). So a run at another count than the measured one is told so.
    """
    cache = (manifest.get("pipeline") or {}).get("cache")
    measured = ((manifest.get("quality") or {}).get("cache") or {}).get("steps")
    if not cache or steps is None or steps == measured:
        return None
    where = f"at {measured} steps" if measured else "by no quality report (built with --no-quality-report)"
    return (f"this bundle caches every {cache['interval']} steps and its quality was measured {where}, not at "
            f"{steps}: caching's error grows as steps get fewer; compare with --cache-interval 1 (every step full), or "
            f"rebuild with --steps {steps} so the report measures that count")


def cache_plan_from_options(options: dict[str, Any]) -> CachePlan | None:
    """The plan a recipe's ``cache_interval`` option asks for; None when it asks for none (absent or 1)."""
    interval = options.get("cache_interval")
    if interval is None or interval == 1:
        return None
    return CachePlan(interval=interval)
