"""Diagnosis: which known mistake a failing output matches, said in the catalogue's words.

The runner (:mod:`optconform.harness.checking.runner`) is handed a :class:`Diagnoser`
by whoever runs the cases (the command line, the grader, the pytest plugin). Its
modules are imported on the first failure only: a class that conforms never pays for
them.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import numpy as np

#: Advice a graded student cannot follow: the conventions are the instructor's (``or declare adam.epsilon=...``).
_DECLARE = re.compile(r",? or declare [\w.]+=\w+[^.]*")


#: After this many failing cases of one function that no pair of mistakes explained, later ones try only the pairs
#: already named (a pair shows on every case where both of its mistakes matter, so it shows early).
PAIR_SEARCHES = 3
#: Diagnoses remembered per process, by case and answer: copies of one submission are diagnosed once.
MEMORY = 4096
_remembered: dict = {}


class Diagnoser:
    """The runner's view of the diagnosis (:class:`optconform.harness.checking.runner.Diagnoser`).

    ``graded``: the conventions are the instructor's, so a fix never advises declaring one.

    One diagnoser serves one run, and bounds its work (:meth:`plan`): once so many of a function's
    cases went unexplained that the run's settling (:mod:`.settle`) can no longer name any mistake
    for it, its later cases are not searched at all; and the search for two mistakes at once stops
    after :data:`PAIR_SEARCHES` fruitless tries. A failing trajectory (the costliest search: every
    mistake over every step) is diagnosed when the run is settled, after its step function's own
    cases, and not at all where none of those was explained. Once a function's cases matched
    known mistakes whole, a later case tries those first: where all of them match it, no other
    mistake could be named for the function when the run is settled, so none is tried. The same
    answer to the same case is diagnosed once per process.
    """

    def __init__(self, graded: bool = False):
        self.graded = graded
        self.total: Counter = Counter()        # the run's cases per function (plan)
        self.unexplained: Counter = Counter()  # failing cases no mistake explains, per function
        self.pairless: Counter = Counter()     # failing cases where no pair was found, per function
        self.explained: Counter = Counter()    # failing cases a mistake explains whole, per function
        self.deferred: list = []               # failing trajectories, diagnosed after the run's other cases
        self.common: dict = {}                 # the names every whole match of a function so far gave, in order

    def _said(self, text: str | None) -> str | None:
        return _DECLARE.sub("", text) if text and self.graded else text

    def plan(self, cases) -> None:
        """The cases the run will check: how many each function has bounds its diagnosis."""
        from .settle import function_of

        self.total = Counter(function_of(case.op) for case in cases)

    def _beyond_naming(self, function: str) -> bool:
        """Whether the settling can no longer name a mistake for ``function``: it needs :data:`~.settle.MOST` of
        its failing cases explained, and more than the rest of its cases are unexplained already."""
        from .settle import MOST

        total = self.total.get(function)
        return total is not None and self.unexplained[function] > (1 - MOST) * total

    def case(self, case, got, dtype: str, pairs_seen: list[str]) -> str | None:
        from .settle import function_of

        if self.total and case.op.endswith(".trajectory"):  # decided once the step's own cases are in: settle
            self.deferred.append((case, got, dtype, list(pairs_seen)))
            return None
        return self._diagnosed(case, got, dtype, pairs_seen, function_of(case.op))

    def _diagnosed(self, case, got, dtype: str, pairs_seen, function: str) -> str | None:
        from .cases import diagnose_case

        if self._beyond_naming(function) or self._compounds_the_unknown(case, function):
            self.unexplained[function] += 1
            return None
        search = self.pairless[function] < PAIR_SEARCHES
        only = self.common.get(function) if case.op != "mini_batches" else None
        key = _answer_key(case, got, dtype, pairs_seen, (search, tuple(only or ())))
        if key is not None and key in _remembered:
            found = _remembered[key]
        else:
            found = diagnose_case(case, got, dtype, pairs_seen, search, only)
            if key is not None:
                if len(_remembered) >= MEMORY:
                    _remembered.pop(next(iter(_remembered)))
                _remembered[key] = found
        if found is None or found.kind != "match":
            self.pairless[function] += 1
        if found is None:
            self.unexplained[function] += 1
        elif found.kind == "match":
            self.explained[function] += 1
            names = [mistake.name for mistake in found.mistakes]
            before = self.common.get(function)
            self.common[function] = names if before is None else [name for name in before if name in names]
        return self._said(found.text if found else None)

    def _compounds_the_unknown(self, case, function: str) -> bool:
        """A trajectory whose step function's own failing cases (diagnosed before it) no mistake explained whole: its
        steps compound that unknown mistake, and the costliest search of all (every mistake over every step)
        would find none."""
        return case.op.endswith(".trajectory") and not self.explained[function] \
            and self.pairless[function] >= PAIR_SEARCHES

    def error(self, case, message: str) -> str | None:
        from .errors import diagnose_error

        return diagnose_error(case, message)

    def summary(self, results) -> list[str]:
        from .summary import summarize

        return summarize(results)

    def settle(self, results, cases=None, dtype: str = "float64") -> None:
        from .settle import function_of, settle

        by_id = {result.id: result for result in results}
        for case, got, case_dtype, pairs_seen in self.deferred:
            result = by_id.get(case.id)
            if result is not None and result.status == "fail":
                result.diagnosis = self._diagnosed(case, got, case_dtype, pairs_seen, function_of(case.op))
        self.deferred.clear()
        settle(results, cases, dtype)


def _answer_key(case, got, dtype: str, pairs_seen, how: tuple):
    """What a diagnosis depends on: the case, the dtype, the pairs tried first, how far it searches (``how``: the
    pair search on or off, the names tried first), and every number of the answer (its structure and bytes);
    None for an answer that cannot be read so (it is diagnosed afresh)."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        _feed(digest, got)
    except (TypeError, ValueError):
        return None
    return case.id, id(case), dtype, tuple(pairs_seen), how, digest.digest()


def _feed(digest, value) -> None:
    if isinstance(value, dict):
        for key in value:
            digest.update(repr(key).encode() + b"{")
            _feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError("not numbers")
        digest.update(f"{array.dtype.str}{array.shape}".encode() + np.ascontiguousarray(array).tobytes())
