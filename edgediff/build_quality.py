"""Quantized builds that keep quality: the fallback-layer search, and the report every quantized bundle carries.

The search (``choose_fallback_layers``) ranks the denoiser's layers by measured sensitivity (output
error with only that layer quantized, on calibration feeds), then quantizes with the most sensitive
ones kept in float, doubling their number until the images meet the quality target against the fp32
teacher. A target it cannot meet within ``max_fallback_fraction`` of the layers fails the build and
names the layers -- a bundle that misses its target is never written.

The report (``quality_report``) measures what a user asks of any quantized bundle before shipping it:
size, per-step latency next to the fp32 export of the same denoiser, and PSNR/SSIM (plus adherence
and FD for zoo models) of its images against the fp32 teacher's.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgediff.errors import EdgeDiffError
from edgediff.quantize.quality import QualityProbe, QualityTarget
from edgediff.quantize.sensitivity import FallbackResult, fallback_sizes, search_fallback_layers

Progress = Callable[[str], None]
# a trial: quantize with these module FQNs kept in float (besides the always-kept ones), return a session
TrialExport = Callable[[tuple[str, ...], Path], Any]
SENSITIVITY_FEEDS = 4  # calibration feeds the sensitivity ranking averages over, spread across timesteps


class QualityTargetError(EdgeDiffError):
    """A quantization cannot meet the requested quality target within the allowed float layers."""


@dataclass(frozen=True)
class FallbackChoice:
    ignored: tuple[str, ...]  # torch module FQNs kept in float, most sensitive first
    result: FallbackResult
    trials: tuple[dict[str, Any], ...]
    candidates: int
    sensitivity: dict[str, float]  # every candidate's score, most sensitive first: the ranking fallbacks follow
    max_fallback: int = 0

    def widened(self) -> FallbackChoice | None:
        """The search's next fallback size after this choice's, or None when no allowed size is left."""
        kept = len(self.ignored)
        wider = next((n for n in fallback_sizes(self.candidates, self.max_fallback) if n > kept), None)
        return None if wider is None else dataclasses.replace(self, ignored=tuple(list(self.sensitivity)[:wider]))

    def to_json(self, target: QualityTarget) -> dict[str, Any]:
        return {
            "target": target.to_json(),
            "met": self.result.met,
            "kept_in_float": list(self.ignored),
            "candidates": self.candidates,
            "trials": list(self.trials),
            "most_sensitive": [{"layer": n, "output_rel_l2": s} for n, s in list(self.sensitivity.items())[:10]],
        }


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items evenly spaced over ``items`` (calibration feeds run in timestep order)."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)] if count > 1 else [items[0]]


def choose_fallback_layers(
    module: Any,
    sensitivity_inputs: Sequence[tuple[Any, ...]],
    scheme: Any,
    probe: QualityProbe,
    target: QualityTarget,
    export_trial: TrialExport,
    progress: Progress,
    component: str = "denoiser",
    screen: TrialExport | None = None,
) -> FallbackChoice:
    """``export_trial`` runs a trial on the target's runtime. ``screen``, where the format has one, runs
    it cheaper (the quantized graph unlowered): a trial that misses on the screen is rejected there, one
    that meets it is confirmed by ``export_trial`` before it is chosen, since rounding on the runtime can
    flip a borderline prompt."""
    from edgediff.quantize.sensitivity import sensitivity_from_outputs

    progress(f"{component}: measuring per-layer sensitivity on {len(sensitivity_inputs)} calibration feeds")
    scores = sensitivity_from_outputs(module, sensitivity_inputs, scheme)
    ranked = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    candidates = list(ranked)
    max_fallback = math.floor(target.max_fallback_fraction * len(candidates))
    trials: list[dict[str, Any]] = []

    def measure(run_trial: TrialExport, ignored: Sequence[str], on: str) -> float:
        with tempfile.TemporaryDirectory(prefix="edgediff-trial-") as tmp:
            session = run_trial(tuple(ignored), Path(tmp))
            measured = probe.measure(session)
            del session
        margin = target.margin(measured)
        trials.append({"kept_in_float": len(ignored), "on": on, "margin": margin, **_brief(measured)})
        progress(f"{component}: {len(ignored)} layer(s) in float, {on} -> {describe_measured(measured)} "
                 f"({'meets' if margin >= 0 else 'misses'} {target.describe()})")
        return margin

    def quality_of(ignored: Sequence[str]) -> float:
        if screen is not None:
            margin = measure(screen, ignored, "screened unlowered")
            if margin < 0:
                return margin
        return measure(export_trial, ignored, "on the runtime")

    result = search_fallback_layers(candidates, quality_of, 0.0, ranked, max_fallback)
    choice = FallbackChoice(result.ignored, result, tuple(trials), len(candidates), ranked, max_fallback)
    if not result.met:
        raise QualityTargetError(_unmet_message(component, scheme, target, choice, candidates[:max_fallback]))
    return choice


def _brief(measured: dict[str, Any]) -> dict[str, Any]:
    keys = ("psnr", "ssim", "adherence", "adherence_drop", "fd")
    return {k: measured[k] for k in keys if k in measured}


def describe_measured(measured: dict[str, Any]) -> str:
    text = f"PSNR {measured['psnr']:.1f} dB"
    if "adherence_drop" in measured:
        text += f", adherence {measured['adherence']:.3f} (drop {measured['adherence_drop'] * 100:+.1f} points)"
    return text


def unmet_on_bundle_message(choice: FallbackChoice, target: QualityTarget, measured: Mapping[str, Any]) -> str:
    """A search trial met the target but the written bundle did not, and no wider fallback is allowed."""
    kept = list(choice.ignored)
    shown = ", ".join(kept[:8]) + (f" (+{len(kept) - 8} more)" if len(kept) > 8 else "")
    return (
        f"the written bundle misses {target.describe()} ({describe_measured(measured)}) with {len(kept)} layer(s) "
        f"in float ({shown or 'none'}), the most the recipe allows; keep more with --keep-float, raise "
        "max_fallback_fraction in the recipe, relax the target, or use a higher precision"
    )


def _unmet_message(component: str, scheme: Any, target: QualityTarget, choice: FallbackChoice,
                   tried: Sequence[str]) -> str:
    confirmed = [t for t in choice.trials if t["on"] == "on the runtime"]  # a screen's pass may not survive
    best = max(confirmed or choice.trials, key=lambda t: t["margin"])
    shown = ", ".join(tried[:8]) + (f" (+{len(tried) - 8} more)" if len(tried) > 8 else "")
    return (
        f"{scheme.name} cannot meet {target.describe()} for the {component}: the best of {len(choice.trials)} trials "
        f"kept {best['kept_in_float']} layer(s) in float and reached {describe_measured(best)}; meeting it needs more than "
        f"the {len(tried)} most sensitive layers in float ({shown or 'none allowed'}); keep them and more with "
        "--keep-float, raise max_fallback_fraction in the recipe, relax the target, or use a higher precision"
    )


def size_bytes(records: Sequence[dict[str, Any]]) -> int:
    return int(sum(r["bytes"] for r in records))


def alternating_latency(sessions: dict[str, Any], feeds: dict[str, np.ndarray], rounds: int = 5) -> dict[str, float]:
    """Median per-call ms of each session, calls alternating so machine noise hits all alike."""
    import time

    for session in sessions.values():
        session.run(dict(feeds))  # warm-up
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            started = time.perf_counter()
            session.run(dict(feeds))
            times[name].append((time.perf_counter() - started) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def quality_report(
    probe: QualityProbe,
    pipe_or_denoiser: Any,
    *,
    whole_pipeline: bool,
    quantized_session: Any,
    float_session: Any | None,
    feeds: dict[str, np.ndarray],
    quantized_bytes: int,
    float_bytes: int,
) -> dict[str, Any]:
    """The manifest's ``quality`` section: images vs the fp32 teacher, size, per-step latency vs fp32."""
    measured = probe.measure_pipeline(pipe_or_denoiser) if whole_pipeline else probe.measure(pipe_or_denoiser)
    sessions = {"quantized": quantized_session} | ({"fp32": float_session} if float_session is not None else {})
    latency = alternating_latency(sessions, feeds)
    speed: dict[str, Any] = {"denoiser_step_ms": latency["quantized"]}
    if "fp32" in latency:
        speed |= {"fp32_denoiser_step_ms": latency["fp32"], "speedup": latency["fp32"] / latency["quantized"]}
    return {
        "against": "fp32 teacher (the fp32 export of the same component), same prompts and noise",
        "images": measured,
        "size": {"denoiser_bytes": quantized_bytes, "fp32_denoiser_bytes": float_bytes,
                 "compression": float_bytes / max(quantized_bytes, 1)},
        "speed": speed | {"measured_on": "build host, alternating calls, median of 5"},
    }
