"""Diagnosis: which known mistake a failing output matches, said in the catalogue's words.

The runner (:mod:`optconform.harness.checking.runner`) is handed a :class:`Diagnoser`
by whoever runs the cases (the command line, the grader, the pytest plugin). Its
modules are imported on the first failure only: a class that conforms never pays for
them.
"""

from __future__ import annotations

import re

#: Advice a graded student cannot follow: the conventions are the instructor's (``or declare adam.epsilon=...``).
_DECLARE = re.compile(r",? or declare [\w.]+=\w+[^.]*")


class Diagnoser:
    """The runner's view of the diagnosis (:class:`optconform.harness.checking.runner.Diagnoser`).

    ``graded``: the conventions are the instructor's, so a fix never advises declaring one.
    """

    def __init__(self, graded: bool = False):
        self.graded = graded

    def _said(self, text: str | None) -> str | None:
        return _DECLARE.sub("", text) if text and self.graded else text

    def case(self, case, got, dtype: str, pairs_seen: list[str]) -> str | None:
        from .cases import diagnose

        return self._said(diagnose(case, got, dtype, pairs_seen))

    def error(self, case, message: str) -> str | None:
        from .errors import diagnose_error

        return diagnose_error(case, message)

    def summary(self, results) -> list[str]:
        from .summary import summarize

        return summarize(results)

    def settle(self, results, cases=None, dtype: str = "float64") -> None:
        from .settle import settle

        settle(results, cases, dtype)
