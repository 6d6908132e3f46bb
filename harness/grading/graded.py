"""What grading one submission gives: its status, its report or the reason it has none."""

from __future__ import annotations

from dataclasses import dataclass, field

from optconform.harness.checking.results import RunReport

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


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters (a reason, a headline, a gradebook cell)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
