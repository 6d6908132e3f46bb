"""Diagnosis: which known mistake a failing output matches, said in the catalogue's words.

The runner (:mod:`optconform.harness.checking.runner`) is handed a :class:`Diagnoser`
by whoever runs the cases (the command line, the grader, the pytest plugin). Its
modules are imported on the first failure only: a class that conforms never pays for
them.
"""

from __future__ import annotations


class Diagnoser:
    """The runner's view of the diagnosis (:class:`optconform.harness.checking.runner.Diagnoser`)."""

    def case(self, case, got, dtype: str, pairs_seen: list[str]) -> str | None:
        from .cases import diagnose

        return diagnose(case, got, dtype, pairs_seen)

    def error(self, case, message: str) -> str | None:
        from .errors import diagnose_error

        return diagnose_error(case, message)

    def summary(self, results) -> list[str]:
        from .summary import summarize

        return summarize(results)
