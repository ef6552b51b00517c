"""Device profiles as data.

A target says which format a build produces, which runtime runs it, which precisions it supports and
whether this host can build and run it. Code asks a target for its format or runtime, never for its
name; adding a device is adding one entry in ``catalog.py``.
"""

from __future__ import annotations

from edgediff.targets.catalog import TARGETS
from edgediff.targets.target import Target, get_target, list_targets

__all__ = ["TARGETS", "Target", "get_target", "list_targets"]
