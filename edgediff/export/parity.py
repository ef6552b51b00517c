"""Numerical parity of an exported component against PyTorch, with per-precision tolerances.

Tolerances start from the anchors: Optimum validates fp32 ONNX exports with atol 1e-4 (3e-4 for the
VAE, whose outputs are summed over many more terms); fp16 is judged by relative L2 error because its
absolute error scales with the activations. NaN or Inf anywhere fails regardless of tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgediff.errors import ParityReport

CACHED_FEATURES = "deep_features"  # edgediff.cache.CachePlan.feature: the full cached denoiser's second output


@dataclass(frozen=True)
class Tolerance:
    """Passes when outputs are finite and either max |err| <= atol or relative L2 <= rel_l2."""

    atol: float
    rel_l2: float
    min_cosine: float

    def describe(self) -> str:
        return f"atol {self.atol:g} or rel_l2 {self.rel_l2:g}, cosine >= {self.min_cosine:g}"

    def passes(self, report: ParityReport) -> bool:
        if not report.finite or report.cosine < self.min_cosine:
            return False
        return report.max_abs_err <= self.atol or report.rel_l2_err <= self.rel_l2


# fp32 relative bound: deep random-weight graphs at real scale accumulate ~1e-5 relative error from
# reordered reductions alone; 1e-4 still catches any real mistake (a wrong op is off by >1e-2).
_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rel_l2=1e-4, min_cosine=0.99999),
    "fp16": Tolerance(atol=1e-3, rel_l2=5e-3, min_cosine=0.9995),
    # bf16 keeps 8 significant bits (fp16 11): each op rounds at ~4e-3 relative
    "bf16": Tolerance(atol=1e-2, rel_l2=3e-2, min_cosine=0.999),
}
_VAE_FP32 = Tolerance(atol=3e-4, rel_l2=1e-4, min_cosine=0.99999)
# A cached denoiser's features are an intermediate activation, and for a transformer's Δ-cache a difference
# of two (what the back blocks add): reordered sums leave it ~1e-4 off where the final output is well inside
# 1e-4 (the tiny DiT on XNNPACK: max abs 1.05e-4, rel L2 1.03e-4). They reach the image only through the
# shallow graph, whose own parity is checked on them, so they get the VAE's absolute bound in both terms.
_CACHED_FEATURES_FP32 = Tolerance(atol=3e-4, rel_l2=3e-4, min_cosine=0.99999)

# Quantized components are checked for sanity (a broken graph or a wrong scale gives cosine near 0 or
# NaN), not for closeness: their quality gate is the evaluator (adherence, PSNR vs the fp32 teacher).
# Measured on the random-weight tiny UNet: int8 cosine 0.957 (ORT QDQ) to 0.995 (OpenVINO); trained
# models land higher. The bounds leave a margin under the worst seen.
_QUANTIZED: dict[str, Tolerance] = {
    "int8": Tolerance(atol=0.0, rel_l2=0.45, min_cosine=0.9),
    "int8w": Tolerance(atol=0.0, rel_l2=0.1, min_cosine=0.995),
    "int4w": Tolerance(atol=0.0, rel_l2=0.35, min_cosine=0.94),
    "fp8": Tolerance(atol=0.0, rel_l2=0.2, min_cosine=0.98),
}


def tolerance_for(component: str, precision: str, output: str | None = None) -> Tolerance:
    """The bound one output of a component must meet (``output`` None: the component's main output)."""
    if precision == "fp32" and component == "vae_decoder":
        return _VAE_FP32
    if precision == "fp32" and output == CACHED_FEATURES:
        return _CACHED_FEATURES_FP32
    return _TOLERANCES.get(precision) or _QUANTIZED[precision]


def compare(reference: np.ndarray, actual: np.ndarray) -> ParityReport:
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(actual, dtype=np.float64)
    if ref.shape != out.shape:
        return ParityReport(max_abs_err=float("inf"), rel_l2_err=float("inf"), cosine=-1.0, finite=False)
    finite = bool(np.isfinite(out).all())
    if not finite:
        return ParityReport(max_abs_err=float("inf"), rel_l2_err=float("inf"), cosine=-1.0, finite=False)
    diff = out - ref
    ref_norm = float(np.linalg.norm(ref))
    out_norm = float(np.linalg.norm(out))
    rel = float(np.linalg.norm(diff)) / max(ref_norm, 1e-12)
    cosine = float(np.dot(ref.ravel(), out.ravel()) / max(ref_norm * out_norm, 1e-24)) if ref_norm and out_norm else 1.0
    return ParityReport(max_abs_err=float(np.abs(diff).max(initial=0.0)), rel_l2_err=rel, cosine=cosine, finite=True)
