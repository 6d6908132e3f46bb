"""What a known mistake is (:class:`Mistake`, :class:`ErrorMistake`), and the pieces its variants share.

A mistake may hold only under some conventions (``when``): epsilon inside the
square root is a mistake when the case expects it outside, and the other way
round. ``float64_declared`` marks the one mistake that exists only when the
target declared float64 (computing in float32).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from optconform.reference.conventions import resolve

#: The course's defaults, the values a hard-coding implementation uses.
COURSE_LR = 0.01
COURSE_BETA = 0.9
COURSE_BETA1 = 0.9
COURSE_BETA2 = 0.999
COURSE_EPSILON = 1e-8

#: The op whose mistakes a trajectory case shows.
STEP_OP = {"momentum.trajectory": "momentum.update", "adam.trajectory": "adam.update"}


@dataclass(frozen=True)
class Mistake:
    """One known mistake: a buggy variant of a reference op."""

    name: str
    op: str
    title: str
    explanation: str
    fix: str
    fn: Callable
    #: Conventions under which this is a mistake, as ``(name, value)`` pairs; empty: always.
    when: tuple[tuple[str, str], ...] = ()
    #: Only a mistake when the target declared float64 (the float32-arithmetic mistake).
    float64_declared: bool = False
    #: Conventions under which this is *not* a mistake (it is what the convention computes, or means nothing).
    unless: tuple[tuple[str, str], ...] = ()

    def applies(self, conventions: dict | None = None, dtype: str = "float64") -> bool:
        """Whether this is a mistake for a case with ``conventions`` checked at ``dtype``."""
        if self.float64_declared and dtype != "float64":
            return False
        resolved = _resolved(tuple((conventions or {}).items()))
        return (all(resolved.get(name) == value for name, value in self.when)
                and not any(resolved.get(name) == value for name, value in self.unless))

    def describe(self) -> str:
        """``title [name]: explanation Fix: fix`` on one line."""
        return f"{self.title} [{self.name}]: {self.explanation} Fix: {self.fix}"


@functools.lru_cache(maxsize=256)
def _resolved(declared: tuple) -> dict[str, str]:
    """The conventions in force for a case's declared ones (as pairs): worked out once per set, as every mistake
    of the catalogue asks for every case it is tried on. Read, never changed."""
    return resolve(dict(declared))


# ---------------------------------------------------------------- helpers


def layer_of(key: str) -> int:
    """``"W3"`` or ``"db3"`` -> 3."""
    return int(key.lstrip("dWb"))


def to_float32(value):
    if isinstance(value, np.ndarray):
        return value.astype(np.float32)
    if isinstance(value, dict):
        return {key: to_float32(item) for key, item in value.items()}
    return value


def in_float32(reference_fn: Callable) -> Callable:
    """``reference_fn`` evaluated on the inputs rounded to float32, returning float32 arrays."""
    @functools.wraps(reference_fn)
    def fn(*args, **kwargs):
        return reference_fn(*[to_float32(a) for a in args], **{k: to_float32(v) for k, v in kwargs.items()})

    return fn


def flush_subnormals(value):
    """Subnormal float64 values (``0 < |x| < 2.2e-308``) set to zero, as flush-to-zero hardware modes do."""
    if isinstance(value, np.ndarray):
        return np.where(np.abs(value) < np.finfo(np.float64).tiny, 0.0, value)
    if isinstance(value, dict):
        return {key: flush_subnormals(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(flush_subnormals(item) for item in value)
    return value


def flushing(reference_fn: Callable) -> Callable:
    """``reference_fn`` with subnormal inputs and outputs flushed to zero (FTZ and DAZ)."""
    @functools.wraps(reference_fn)
    def fn(*args, **kwargs):
        flushed = reference_fn(*[flush_subnormals(a) for a in args],
                               **{k: flush_subnormals(v) for k, v in kwargs.items()})
        return flush_subnormals(flushed)

    return fn


FLUSH_TEXT = ("subnormal numbers flushed to zero",
              "values below 2.2e-308 (subnormals) became 0, as in flush-to-zero modes (-ffast-math, "
              "FTZ/DAZ) and JAX on the CPU.",
              "compute without flush-to-zero; where the platform imposes it, list the subnormal cases in an "
              "--xfail file.")


def last_layer(key: str, layers: int) -> bool:
    return layer_of(key) == layers


def first_layer(key: str, layers: int) -> bool:
    return layer_of(key) == 1


def bias_slot(key: str, layers: int) -> bool:
    return key.startswith("b")


def every_slot(key: str, layers: int) -> bool:
    return True




SKIP_TEXT = {
    "last-layer-skipped": (last_layer, "the last layer skipped",
                           "the last layer's W and b (and its state) come back unchanged: the loop stops one layer "
                           "short, as range(L - 1) or range(1, L) does.",
                           "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    "first-layer-skipped": (first_layer, "the first layer skipped",
                            "layer 1's W and b (and its state) come back unchanged: the loop starts one layer late, "
                            "as range(1, L) used with str(l + 1) does.",
                            "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    "biases-skipped": (bias_slot, "the biases skipped",
                       "the weights are updated but every b (and its state) comes back unchanged.",
                       "update b1 ... bL with their db exactly as the weights are updated."),
    "nothing-updated": (every_slot, "nothing updated",
                        "the parameters and the state come back exactly as they were given: the update is computed "
                        "into something that is not returned.",
                        "return the updated dictionaries (or assign into the ones you return)."),
}



@dataclass(frozen=True)
class ErrorMistake:
    """A known mistake that shows as an exception on some inputs, told by the error and the case."""

    name: str
    op: str
    title: str
    explanation: str
    fix: str
    #: The error message a target raises with this mistake (a regular expression).
    pattern: str
    #: Whether the case's inputs (defaults filled) are ones this mistake raises on.
    raises_on: Callable[[dict], bool]

    def describe(self) -> str:
        return f"{self.title} [{self.name}]: {self.explanation} Fix: {self.fix}"

