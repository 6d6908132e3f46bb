"""Known mistakes, as data beside the reference: one module a family, :mod:`.model` what a mistake is.

Each :class:`Mistake` is a named, buggy variant of one reference operation: its
``fn`` has the signature and return shape of the matching function in
:mod:`optconform.reference.ops` and computes what an implementation with that bug
returns. ``title`` names the bug in a few words, ``explanation`` says in one line
what the implementation does, ``fix`` how to put it right.

A mistake may hold only under some conventions (``when``): epsilon inside the
square root is a mistake when the case expects it outside, and the other way
round. ``float64_declared`` marks the one mistake that exists only when the
target declared float64 (computing in float32).

The harness (:mod:`optconform.harness.diagnosis.cases`) evaluates every mistake of a
failing case's op on the case's inputs and names those the output matches. The
vectors hold, for every mistake, a case telling it apart from the reference and
from every other mistake (``tests/test_distinguishability.py``).

Text rules: titles hold no ``:`` and no brackets; explanations and fixes hold no
brackets (the diagnosis marks mistake names as ``[name]``).
"""

from __future__ import annotations

from . import adam, batches, descent, momentum, schedules, states
from .adam import _adam_variant
from .batches import ERROR_MISTAKES
from .model import STEP_OP, ErrorMistake, Mistake

__all__ = ["ERROR_MISTAKES", "MISTAKES", "ErrorMistake", "Mistake", "combined", "get", "mistakes_for", "step_op"]

#: Every known mistake, most common first within each op.
MISTAKES: tuple[Mistake, ...] = (batches.MISTAKES + states.MISTAKES + momentum.MISTAKES + adam.MISTAKES
                                 + descent.MISTAKES + schedules.MISTAKES)

_BY_KEY = {(m.op, m.name): m for m in MISTAKES}
_ORDER = {m: index for index, m in enumerate(MISTAKES)}
assert len(_BY_KEY) == len(MISTAKES), "mistake names must be unique within an op"



def combined(first: Mistake, second: Mistake) -> Mistake | None:
    """Both mistakes at once, where both are knobs of the same buggy Adam that do not touch the same thing."""
    first, second = sorted((first, second), key=_ORDER.get)  # one name per pair, in catalogue order
    knobs = [getattr(m.fn, "knobs", None) for m in (first, second)]
    if first.op != second.op or first.op != "adam.update" or not all(knobs) or set(knobs[0]) & set(knobs[1]):
        return None
    if first.when and second.when and first.when != second.when:
        return None
    return Mistake(f"{first.name}+{second.name}", first.op, f"{first.title} and {second.title}",
                   f"{first.explanation[:-1]}; and {second.explanation}", f"{first.fix} And {second.fix}",
                   _adam_variant(**knobs[0], **knobs[1]), when=first.when or second.when)


def step_op(op: str) -> str:
    """The op whose mistakes a case of ``op`` can show: trajectories show their step's."""
    return STEP_OP.get(op, op)


def mistakes_for(op: str, conventions: dict | None = None, dtype: str | None = None) -> list[Mistake]:
    """The mistakes of ``op`` (a trajectory op gives its step's), those that apply when given conventions/dtype."""
    base = step_op(op)
    found = [m for m in MISTAKES if m.op == base]
    if conventions is None and dtype is None:
        return found
    return [m for m in found if m.applies(conventions, dtype or "float64")]


def get(op: str, name: str) -> Mistake:
    """The mistake ``name`` of ``op`` (a trajectory op looks in its step's); KeyError if unknown."""
    return _BY_KEY[(step_op(op), name)]
