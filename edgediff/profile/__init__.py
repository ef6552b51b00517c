"""Latency profiling of bundles on their runtime: per component, end to end, load time, peak memory."""

from __future__ import annotations

from edgediff.profile.profiler import ProfileSettings, profile_bundle, to_markdown

__all__ = ["ProfileSettings", "profile_bundle", "to_markdown"]
