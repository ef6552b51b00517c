"""The fallback search's screening: a cheap trial rejects, only the runtime accepts.

Runtimes round differently from the unlowered quantized graph, so a borderline trial that the screen
passes can miss on the runtime; the search must then go on, and a screen miss must cost no export.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edgediff.build_quality import QualityTargetError, choose_fallback_layers
from edgediff.quantize.quality import QualityTarget
from edgediff.quantize.schemes import Int8Static


class FourLinears(nn.Sequential):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(*(nn.Linear(8, 8) for _ in range(4)))


class ScriptedProbe:
    """Measures a trial by the PSNR its session carries: (where it ran, float layers) -> dB."""

    def __init__(self, psnr: dict[tuple[str, int], float]) -> None:
        self.psnr = psnr

    def measure(self, session: tuple[str, int]) -> dict[str, float]:
        return {"psnr": self.psnr[session]}


def _search(psnr: dict[tuple[str, int], float], fraction: float = 1.0):
    exports: list[int] = []

    def export_trial(ignored: tuple[str, ...], _out: Path) -> tuple[str, int]:
        exports.append(len(ignored))
        return ("runtime", len(ignored))

    def screen(ignored: tuple[str, ...], _out: Path) -> tuple[str, int]:
        return ("screen", len(ignored))

    target = QualityTarget(min_psnr=30.0, max_fallback_fraction=fraction)
    choice = choose_fallback_layers(FourLinears(), [(torch.randn(2, 8),)], Int8Static(), ScriptedProbe(psnr), target,
                                    export_trial, lambda _: None, screen=screen)
    return choice, exports


def test_a_screen_miss_costs_no_export_and_a_screen_pass_is_confirmed_on_the_runtime() -> None:
    choice, exports = _search({("screen", 0): 20.0, ("screen", 1): 31.0, ("runtime", 1): 32.0})
    assert exports == [1]
    assert len(choice.ignored) == 1 and choice.result.met
    assert [t["on"] for t in choice.trials] == ["screened unlowered", "screened unlowered", "on the runtime"]


def test_a_pass_the_runtime_does_not_confirm_lets_the_search_go_on() -> None:
    psnr = {("screen", 0): 31.0, ("runtime", 0): 29.0, ("screen", 1): 31.0, ("runtime", 1): 30.5}
    choice, exports = _search(psnr)
    assert exports == [0, 1] and len(choice.ignored) == 1


def test_an_unmet_target_reports_the_best_runtime_trial_not_a_screen_pass() -> None:
    psnr = {("screen", k): 31.0 for k in (0, 1)} | {("runtime", 0): 25.0, ("runtime", 1): 28.0}
    with pytest.raises(QualityTargetError, match=r"kept 1 layer\(s\) in float and reached PSNR 28.0 dB"):
        _search(psnr, fraction=0.25)
