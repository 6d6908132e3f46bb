"""Settling a run's diagnoses: a mistake is named for a function only where every failing check of it fits.

A check's diagnosis says which known mistake its output matches. On its own, one check
can match a mistake by coincidence: a stuck ``update_lr`` that always returns 0.5 is
"exponential decay" on the one check where 0.5 happens to be that schedule's value. So
once a run is over, :func:`settle` looks at each function's failing checks together. A
mistake is named only where every failing check that any mistake explains is explained
by it (no other name competes) and it explains at least :data:`MOST` of them (the rest
may fail in a way its variant does not model, as float32 arithmetic overflows where the
reference does not). Otherwise, or where the function gives one value whatever its
inputs, no check names any, and the feedback says so
(:mod:`optconform.harness.reporting.story`) with the first wrong value instead.
"""

from __future__ import annotations

import re

from optconform.harness.checking.results import mistake_names
from optconform.harness.checking.selection import course_functions

_GOT = re.compile(r"expected (\S+), got (\S+?)[ ,;)]")
#: The share of a function's failing checks a mistake must explain (and no other mistake any) to be named.
MOST = 0.75
#: Ops whose result is one value: a function that returns the same one whatever its inputs is said to.
ONE_VALUE_OPS = ("lr_decay.inverse_time", "lr_decay.scheduled")


def function_of(op: str) -> str:
    """The student's function a case op checks (a trajectory: its update)."""
    return course_functions(op)[0]


def failing(cases) -> list:
    return [case for case in cases if case.status == "fail" and not case.xfail]


def common_mistake(cases) -> str | None:
    """The diagnosis (its ``matches ...`` text) of the mistake that explains every one of ``cases`` a mistake
    explains, and at least :data:`MOST` of all of them; None where there is none."""
    named = [set(mistake_names(case.diagnosis)) for case in cases if mistake_names(case.diagnosis)]
    if not named or len(named) < MOST * len(cases):
        return None
    common = set.intersection(*named)
    for case in cases:  # the wording of a check whose first-named mistake is the common one
        names = mistake_names(case.diagnosis)
        if names and names[0] in common:
            return case.diagnosis
    return None


def constant_value(cases) -> str | None:
    """The one value a one-value function returned on all of ``cases`` though they expected different ones
    (``""`` for a hidden case, whose value is not said); None when it did not."""
    if len(cases) < 2 or not all(case.op in ONE_VALUE_OPS for case in cases):
        return None
    pairs = [_GOT.search(case.message or "") for case in cases]
    if not all(pairs) or len({pair.group(2) for pair in pairs}) != 1 or len({pair.group(1) for pair in pairs}) < 2:
        return None
    return "" if any(case.hidden for case in cases) else pairs[0].group(2)


def settle(results) -> None:
    """Name each function's mistake on its failing checks only where all of them fit it (see the docstring)."""
    by_function: dict[str, list] = {}
    for case in failing(results):
        by_function.setdefault(function_of(case.op), []).append(case)
    for cases in by_function.values():
        common = None if constant_value(cases) is not None else common_mistake(cases)
        for case in cases:  # the checks it explains say it; the others, nothing
            case.diagnosis = common if common and mistake_names(case.diagnosis) else None
