"""Settling a run's diagnoses: a mistake is named for a function only where every failing check of it fits.

A check's diagnosis says which known mistake its output matches. On its own, one check
can match a mistake by coincidence: a stuck ``update_lr`` that always returns 0.5 is
"exponential decay" on the one check where 0.5 happens to be that schedule's value. So
once a run is over, :func:`settle` looks at each function's failing checks together. A
mistake is named only where every failing check that any mistake explains is explained
by it (no other name competes) and it explains at least :data:`MOST` of them (the rest
may fail in a way its variant does not model, as float32 arithmetic overflows where the
reference does not). The checks the function passed are evidence too: a mistake that
would have failed one of them is not the student's (``ceil`` for ``floor`` agrees with
``round`` wherever ``round`` is wrong, but not one epoch after a boundary, where
``round`` is right). Otherwise, or where the function gives one value whatever its
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


def settle(results, cases=None, dtype: str = "float64") -> None:
    """Name each function's mistake on its failing checks only where all of them fit it (see the docstring).
    ``cases``: the case of each result, in order, so that the checks a function passed can rule a name out."""
    by_function: dict[str, list] = {}
    for result in failing(results):
        by_function.setdefault(function_of(result.op), []).append(result)
    passed: dict[str, list] = {}
    for result, case in zip(results, cases or ()):
        if result.status == "pass" and result.op != "mini_batches":
            passed.setdefault(function_of(result.op), []).append(case)
    for function, cases_failing in by_function.items():
        common = None if constant_value(cases_failing) is not None else common_mistake(cases_failing)
        if common and passed.get(function):
            common = _not_ruled_out(common, cases_failing, passed[function], dtype)
        for case in cases_failing:  # the checks it explains say it; the others, nothing
            case.diagnosis = common if common and mistake_names(case.diagnosis) else None


def _not_ruled_out(diagnosis: str, failing_cases, passed_cases, dtype: str) -> str | None:
    """``diagnosis`` with only the mistakes every failing check names and no passed case rules out: its text
    rebuilt from the catalogue for those left, None when none is."""
    from optconform.harness.checking.compare import compare_case_outputs
    from optconform.reference import mistakes

    from .matching import match_text
    from .variants import variant_output

    said = [mistake_names(case.diagnosis) for case in failing_cases if mistake_names(case.diagnosis)]
    names = [name for name in mistake_names(diagnosis) if all(name in names for names in said)]
    try:
        candidates = [mistakes.get(passed_cases[0].op, name) for name in names]
    except KeyError:  # a pair of mistakes at once is not in the catalogue by name: kept as it was said
        return diagnosis
    kept = []
    for mistake in candidates:
        ruled_out = False
        for case in passed_cases:
            if not mistake.applies(case.conventions, dtype):
                continue
            try:
                ruled_out = not compare_case_outputs(case, variant_output(case, mistake), dtype).ok
            except Exception:  # noqa: BLE001 - a variant that cannot run on a case says nothing about it
                continue
            if ruled_out:
                break
        if not ruled_out:
            kept.append(mistake)
    if len(kept) == len(mistake_names(diagnosis)):
        return diagnosis
    return match_text(kept) if kept else None
