"""``validate_bundle``: re-check a bundle's hashes, then re-run each component on its stored parity inputs.

The parity samples (inputs and PyTorch's outputs, saved at build time) let a bundle be re-validated
anywhere its runtime runs -- on a device, after a copy -- with no torch and no source model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgediff.bundle.manifest import open_bundle, sha256_file
from edgediff.errors import BundleError, ParityError
from edgediff.export.parity import compare, tolerance_for
from edgediff.runtimes.base import SessionOptions, open_session


def validate_bundle(path: str | Path) -> dict[str, Any]:
    bundle = open_bundle(path, verify=True)
    results: dict[str, Any] = {}
    for name, component in bundle.components.items():
        parity = component["parity"]
        samples_path = bundle.path / parity["samples"]
        if not samples_path.is_file() or sha256_file(samples_path) != parity["samples_sha256"]:
            raise BundleError(f"parity samples {parity['samples']} are missing or modified; re-export the bundle")
        with np.load(samples_path, allow_pickle=False) as data:
            feeds = {k.removeprefix("input."): data[k] for k in data.files if k.startswith("input.")}
            expected = {k.removeprefix("output."): data[k] for k in data.files if k.startswith("output.")}
        session = open_session(bundle.runtime, bundle.entry(name), SessionOptions(precision=component["precision"]))
        outputs = session.run(feeds)
        reports = {output_name: compare(reference, outputs[output_name]) for output_name, reference in expected.items()}
        tolerances = {output_name: tolerance_for(name, component["precision"], output_name) for output_name in reports}
        for output_name, report in reports.items():
            if not tolerances[output_name].passes(report) and parity["passed"]:
                raise ParityError(name, output_name, report, tolerances[output_name].describe())
        if reports:  # the worst output speaks for the component, as at build time
            output_name, report = max(reports.items(), key=lambda item: item[1].rel_l2_err)
            results[name] = {
                "max_abs_err": report.max_abs_err,
                "rel_l2_err": report.rel_l2_err,
                "cosine": report.cosine,
                "passed": tolerances[output_name].passes(report),
                "flagged_at_build": not parity["passed"],
            }
    return {"bundle": str(bundle.path), "hashes": "ok", "components": results}
