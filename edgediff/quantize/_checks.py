"""Checks every quantization backend makes before doing any work, with errors a user can act on."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from edgediff.errors import EdgeDiffError
from edgediff.quantize.schemes import Int4Weight, Int8Static, Scheme

if TYPE_CHECKING:
    from edgediff.quantize.calibration import Feeds


def require_supported(backend: str, supported: Collection[str], scheme: Scheme, why: str = "") -> None:
    if scheme.name not in supported:
        reason = f" ({why})" if why else ""
        raise EdgeDiffError(
            f"the {backend} backend does not support scheme {scheme.name!r}{reason}; "
            f"supported: {', '.join(sorted(supported))}"
        )


def calibration_for(scheme: Scheme, calibration: Sequence[Feeds], input_names: Sequence[str]) -> list[Feeds]:
    """The feeds a static scheme calibrates on: at most ``calibration_samples``, each with every input.

    ``Int4Weight`` calibrates only where a backend quantizes its convolutions W8A8 (XNNPACK), and only
    that backend calls this for it."""
    if not isinstance(scheme, Int8Static | Int4Weight):
        return list(calibration)
    if not calibration:
        raise EdgeDiffError(f"scheme {scheme.name!r} needs calibration feeds; capture them from the pipeline first")
    feeds = list(calibration[: scheme.calibration_samples])
    for i, feed in enumerate(feeds):
        missing = [n for n in input_names if n not in feed]
        if missing:
            raise EdgeDiffError(
                f"calibration feed {i} lacks input {missing[0]!r}; feeds must be keyed by the model's input names "
                f"({', '.join(input_names)})"
            )
    return feeds


def require_known_layers(backend: str, ignored: Sequence[str], known: Collection[str], what: str) -> None:
    unknown = [name for name in ignored if name not in known]
    if unknown:
        examples = ", ".join(sorted(known)[:3])
        raise EdgeDiffError(
            f"{len(unknown)} layer(s) to keep in float are not in the {backend} graph, e.g. {unknown[0]!r}; "
            f"names are {what} (e.g. {examples})"
        )
