"""What grading one submission gives: its status, its report or the reason it has none."""

from __future__ import annotations

from dataclasses import dataclass, field

from optconform.harness.checking.results import RunReport
from optconform.harness.reporting.text import one_line  # noqa: F401 - the grading room says it from here

from .submissions import Submission

STATUSES = ("ok", "load_error", "grader_error")


@dataclass
class Graded:
    submission: Submission
    status: str                      # one of STATUSES
    report: RunReport | None = None
    reason: str = ""
    seconds: float = 0.0
    row: dict = field(default_factory=dict)
