"""What checking one case found: :class:`Outcome`, and the two ways a checker makes one."""

from __future__ import annotations

from dataclasses import dataclass, field

from .compare import Comparison


@dataclass
class Outcome:
    """A case's status (pass, fail, error, not_implemented), its message and details, and what the target
    returned (``got``, kept for the diagnosis)."""

    status: str
    message: str = ""
    comparison: Comparison | None = None
    got: dict | None = None
    details: list[str] = field(default_factory=list)
    #: an error said for a hidden case: the grader's words, nothing the target wrote (CallFailed.withheld)
    withheld: str = ""


def problems_outcome(problems: list[str], got=None) -> Outcome:
    """A failure the target reported itself (the adapter's problems with what it returned)."""
    return Outcome("fail", "; ".join(problems), got=got, details=list(problems))


def from_comparison(comparison: Comparison, got, prefix: str = "") -> Outcome:
    """Pass, or a failure naming the worst element first (``prefix`` before it)."""
    if comparison.ok:
        return Outcome("pass", comparison=comparison, got=got)
    details = [m.describe() for m in sorted(comparison.mismatches, key=lambda m: -m.excess)[:10]]
    return Outcome("fail", prefix + comparison.message(), comparison, got, details)
