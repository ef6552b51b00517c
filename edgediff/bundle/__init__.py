"""Bundles: a directory a device app ships (component files + ``manifest.json``), written atomically."""

from __future__ import annotations

from edgediff.bundle.manifest import SCHEMA_VERSION, Bundle, open_bundle

__all__ = ["SCHEMA_VERSION", "Bundle", "open_bundle"]
