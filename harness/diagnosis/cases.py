"""Diagnosis: when a case fails, name the known mistake the output matches.

``diagnose(case, got, dtype)`` evaluates every known mistake of the case's op
(:mod:`optconform.reference.mistakes`) on the case's own inputs, under the case's
conventions, and compares the target's output with each, within the case's
tolerance. It returns one line:

- ``matches <title> [<name>]: <explanation> Fix: <fix>`` when the whole output
  matches one or more mistakes (the others are listed as also consistent);
- the same for two known mistakes at once (``matches A and B [a+b]``), tried
  among the mistakes nearest to the output when no single one matches;
- ``W2 and b2 only: looks like layer 2 was skipped ...`` when the output is right
  except for some keys and those keys match a mistake;
- ``None`` when the output is correct, and when nothing known explains it: no
  guess is made per case; :func:`summarize` says once per op that nothing
  matched, with the first wrong case's worst element.

A mistake matches when the output lies within the case's tolerance of the
mistake's own output, the error scale raised to ``WIDEN`` times the mistake's
values where those are larger (so an implementation of the mistake that rounds
in another order still matches). Computing in float32 although float64 was
declared is matched last, when the output agrees with the reference within the
case's float32 tolerance only and its values are float32 numbers.

An error (an exception the target raised) is diagnosed too where a known
mistake shows that way on that case's inputs (:func:`diagnose_error`).

Mistake names appear in square brackets only where the output matches them
(wholly or in part); :func:`summarize` reads them back to aggregate a run.

Trajectory cases (``momentum.trajectory``, ``adam.trajectory``) run each mistake
step by step, both free-running (its own state carried, t = 1 ... N) and
teacher-forced (the golden state fed in at each step); either may match.

``mini_batches`` outputs are matched exactly under ``mini_batches.rng=numpy_legacy``
and, under ``structural`` (any RNG), by their structure: batch sizes, whether X
and Y are each one permutation of the columns, whether they stay paired, whether
they were shuffled, and where each batch starts in the recovered column order.
"""

from __future__ import annotations

from optconform.reference.conventions import resolve

from .batches import _diagnose_batches
from .matching import Diagnosis
from .updates import diagnose_update


def diagnose_case(case, got, dtype: str = "float64", pairs_seen=(), search_pairs: bool = True,
                  only: list[str] | None = None) -> Diagnosis | None:
    """The structured diagnosis of ``got`` on ``case`` (see the module's docstring), or None.

    ``pairs_seen`` names pairs of mistakes (``a+b``) already found on the target's other cases: they are
    tried first, so a pair named on one case is named on every case it explains.
    """
    if not case.runs_at(dtype):
        return None
    conventions = resolve(case.conventions)
    if case.op == "mini_batches":
        return _diagnose_batches(case, got, dtype, conventions)
    return diagnose_update(case, got, dtype, conventions, pairs_seen, search_pairs, only)


def diagnose(case, got, dtype: str = "float64", pairs_seen=()) -> str | None:
    """One line naming the known mistake ``got`` matches on ``case``, or None (always None when correct)."""
    found = diagnose_case(case, got, dtype, pairs_seen)
    return found.text if found else None

