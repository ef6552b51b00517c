"""edgediff: compile diffusion models into checked, fast bundles for edge runtimes.

The flow, each step a function you can call and inspect:
``load_model()`` -> ``build(model, target, recipe, out)`` -> ``open_bundle()`` -> ``BundlePipeline`` / ``profile()``.
Importing this package imports neither torch nor any engine; each is imported when a step needs it.
"""

from __future__ import annotations

__version__ = "0.1.0"
