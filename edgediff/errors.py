"""User-facing errors, kept apart from bugs.

Everything a user can fix (a bad path, an unknown target, a precision the target lacks, a parity
failure) raises an ``EdgeDiffError``. The CLI catches this family once and prints ``error: …`` with
exit code 2; anything else is a bug and stays a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class EdgeDiffError(Exception):
    """A problem in the user's input or environment, with a message that says how to fix it."""

    exit_code: int = 2


class ModelLoadError(EdgeDiffError):
    """The model reference could not be resolved or read."""


class TargetError(EdgeDiffError):
    """Unknown target, or a target that cannot do what was asked (precision, host)."""


class ExportError(EdgeDiffError):
    """An exporter could not turn a component into its format (e.g. an unsupported operator)."""


class BundleError(EdgeDiffError):
    """A bundle is missing, malformed, or its files do not match their recorded hashes."""


@dataclass(frozen=True)
class ParityReport:
    """Numbers comparing one component's exported output with PyTorch's."""

    max_abs_err: float
    rel_l2_err: float
    cosine: float
    finite: bool


class ParityError(EdgeDiffError):
    """An exported component's output differs from PyTorch's beyond the precision's tolerance."""

    def __init__(self, component: str, output: str, report: ParityReport, tolerance: str) -> None:
        self.component = component
        self.output = output
        self.report = report
        super().__init__(
            f"parity check failed for {component}.{output}: max_abs_err={report.max_abs_err:.3g}, "
            f"rel_l2={report.rel_l2_err:.3g}, cosine={report.cosine:.6f}, finite={report.finite} "
            f"(tolerance {tolerance}); pass --allow-mismatch to keep the bundle flagged as mismatched"
        )
