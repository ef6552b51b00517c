"""The transformer families (PixArt-style text-to-image, DiT-style class-conditional) export and run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgediff.api import export_bundle
from edgediff.errors import EdgeDiffError
from edgediff.runtimes.pipeline import BundlePipeline


def test_pixart_family_exports_with_parity_and_generates(tmp_path: Path) -> None:
    bundle = export_bundle("config:tiny-pixart", "x86-cpu", tmp_path / "pixart")
    assert bundle.pipeline["family"] == "pixart" and bundle.manifest["parity_passed"]
    # the learned-sigma channels are dropped inside the graph: the sampler sees latent channels only
    assert bundle.components["denoiser"]["outputs"][0]["shape"] == [2, 4, 16, 16]
    image = BundlePipeline(bundle)("a prompt", seed=0).to_uint8()
    assert image.shape == (32, 32, 3)


def test_dit_family_is_class_conditional(tmp_path: Path) -> None:
    bundle = export_bundle("config:tiny-dit", "x86-cpu", tmp_path / "dit")
    assert bundle.pipeline["conditioning"] == "class" and bundle.pipeline["tokenizer"] is None
    assert "text_encoder" not in bundle.components
    pipe = BundlePipeline(bundle)
    a, b = pipe(class_label=1, seed=0).to_uint8(), pipe(class_label=2, seed=0).to_uint8()
    assert not np.array_equal(a, b)
    with pytest.raises(EdgeDiffError, match="class-conditional; pass a class label"):
        pipe("a prompt", seed=0)
