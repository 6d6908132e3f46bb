"""Comparing what a target returned with what the reference expects.

The structures compared are the JSON shapes of the vectors decoded: dicts of
arrays (``parameters``, ``v``, ``s``), lists of them (trajectory ``steps``) and
lists of arrays (batches). Every array is checked for shape, finiteness pattern
(NaN where NaN, inf where inf, of the same sign) and values within

    |got - expected| <= rtol * scale + atol

elementwise, where ``scale`` is the case's error scale (``|expected|`` where a
case gives none). The result names the worst element: its key, its index, the
expected and the returned value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from optconform.harness.target.readonly import FrozenResult

from .per_case import kept


@dataclass(frozen=True)
class Mismatch:
    """One thing that differs: where, what was expected, what came back."""

    where: str
    problem: str
    index: tuple | None = None
    expected: float | None = None
    got: float | None = None
    excess: float = math.inf  # error / allowed error; inf for structural problems

    def describe(self) -> str:
        at = self.where + (f"[{','.join(map(str, self.index))}]" if self.index is not None else "")
        if self.expected is None:
            return f"{at}: {self.problem}"
        return f"{at}: expected {self.expected!r}, got {self.got!r} ({self.problem})"


@dataclass
class Comparison:
    """All mismatches of one comparison, worst first, and the largest errors seen."""

    mismatches: list[Mismatch] = field(default_factory=list)
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def merge(self, other: "Comparison") -> None:
        self.mismatches.extend(other.mismatches)
        self.max_abs_err = max(self.max_abs_err, other.max_abs_err)
        self.max_rel_err = max(self.max_rel_err, other.max_rel_err)

    def worst(self) -> Mismatch | None:
        return max(self.mismatches, key=lambda m: m.excess) if self.mismatches else None

    def message(self) -> str:
        if self.ok:
            return ""
        worst = self.worst()
        others = len({m.where for m in self.mismatches} - {worst.where})
        more = f" (and {others} other key{'s' if others != 1 else ''})" if others else ""
        return worst.describe() + more

    def failing_keys(self) -> list[str]:
        return sorted({m.where for m in self.mismatches})


def _value(x) -> float:
    return float(x)


def elementwise_errors(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float, scale=None):
    """``(finiteness differs, |got - expected|, allowed error)``, elementwise, for same-shaped float64 arrays.

    Finiteness differs where NaN meets a number, inf meets a finite value, or
    infinities differ in sign; the error is 0 wherever either value is not finite.
    """
    scale = np.abs(expected) if scale is None else np.asarray(scale, dtype=np.float64)
    with np.errstate(all="ignore"):
        finiteness, _, error = elementwise_difference(expected, got)
        allowed = rtol * np.where(np.isfinite(scale), scale, 0.0) + atol
    return finiteness, error, allowed


def elementwise_difference(expected: np.ndarray, got: np.ndarray):
    """``(finiteness differs, both finite, |got - expected| where both are finite and 0 elsewhere)``, as
    :func:`elementwise_errors` decides them (call it under ``np.errstate(all="ignore")``)."""
    exp_inf, got_inf = np.isinf(expected), np.isinf(got)
    finiteness = (np.isnan(expected) != np.isnan(got)) | (exp_inf != got_inf) | (
        exp_inf & got_inf & (np.sign(expected) != np.sign(got)))
    finite = np.isfinite(expected) & np.isfinite(got)
    return finiteness, finite, np.where(finite, np.abs(got - expected), 0.0)


def compare_arrays(where: str, expected, got, rtol: float, atol: float, scale=None) -> Comparison:
    """Compare one array; ``got`` may be anything the target returned."""
    result = Comparison()
    expected = np.asarray(expected, dtype=np.float64)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        result.mismatches.append(Mismatch(where, f"not an array of numbers ({type(got).__name__})"))
        return result
    if got.shape != expected.shape:
        result.mismatches.append(Mismatch(where, f"shape {got.shape}, expected {expected.shape}"))
        return result
    if expected.size == 0:
        return result
    finiteness, error, allowed = elementwise_errors(expected, got, rtol, atol, scale)
    if finiteness.any():
        index = tuple(int(i) for i in np.argwhere(finiteness)[0])
        result.mismatches.append(Mismatch(where, "finiteness differs", index, _value(expected[index]), _value(got[index])))
    with np.errstate(all="ignore"):
        finite = np.isfinite(expected) & np.isfinite(got)
        relative = np.where(finite & (expected != 0), error / np.abs(expected), np.where(error > 0, np.inf, 0.0))
        excess = np.where(error > allowed, np.where(allowed > 0, error / allowed, np.inf), 0.0)
    result.max_abs_err = float(error.max())
    result.max_rel_err = float(relative.max())
    if (excess > 0).any():
        index = np.unravel_index(int(np.argmax(excess)), excess.shape)
        index = tuple(int(i) for i in index)
        problem = (f"|error| {error[index]:.3g} > allowed {allowed[index]:.3g}; "
                   f"{int((excess > 0).sum())} of {excess.size} elements outside tolerance")
        result.mismatches.append(Mismatch(where, problem, index, _value(expected[index]), _value(got[index]),
                                          float(excess[index])))
    return result


def compare_structure(where: str, expected, got, rtol: float, atol: float, scale=None) -> Comparison:
    """Compare nested dicts and lists of arrays, key by key and index by index."""
    if isinstance(expected, dict):
        result = Comparison()
        if not isinstance(got, dict):
            result.mismatches.append(Mismatch(where or "result", f"expected a dict of {sorted(expected)}, got {type(got).__name__}"))
            return result
        for key in expected:
            path = f"{where}.{key}" if where else key
            if key not in got:
                result.mismatches.append(Mismatch(path, "missing"))
                continue
            result.merge(compare_structure(path, expected[key], got[key], rtol, atol,
                                           None if scale is None else scale.get(key)))
        for key in got:
            if key not in expected:
                result.mismatches.append(Mismatch(f"{where}.{key}" if where else key, "unexpected key"))
        return result
    if isinstance(expected, list):
        result = Comparison()
        if not isinstance(got, (list, tuple)):
            result.mismatches.append(Mismatch(where, f"expected a list of {len(expected)}, got {type(got).__name__}"))
            return result
        if len(got) != len(expected):
            result.mismatches.append(Mismatch(where, f"{len(got)} items, expected {len(expected)}"))
        for index, (e, g) in enumerate(zip(expected, got)):
            result.merge(compare_structure(f"{where}[{index}]", e, g, rtol, atol,
                                           None if scale is None else scale[index]))
        return result
    return compare_arrays(where, expected, got, rtol, atol, scale)


def compare_case_outputs(case, got, dtype: str, expected=None, scale=None) -> Comparison:
    """Compare ``got`` with the case's expected outputs (or a part given as ``expected``).

    A result that passes is decided in one vectorized step over all of its arrays, and one of the
    expected structure and shapes that does not is compared leaf by leaf in one pass too
    (:func:`_compared_by_leaf`); anything else is compared array by array, to name the worst element.
    """
    tolerance = case.tolerance[dtype]
    expected = case.expected if expected is None else expected
    scale = case.tolerance.get("scale") if scale is None else scale
    passed = _passes_whole(case, expected, scale, got, dtype)
    if passed is not None:
        return passed
    arrays: list = []
    if _gathered(expected, got, arrays):  # the expected structure and shapes: every leaf compared in one pass
        return _compared_by_leaf(_flat(case, expected, scale, dtype), arrays)
    return compare_structure("", expected, got, tolerance["rtol"], tolerance["atol"], scale)


#: How many frozen results each case part remembers the comparison of.
_JUDGED_PER_PART = 8


class _Flat:
    """A case's expected arrays (or a part of them) flattened into one vector, with the allowed error of each
    element at one dtype: made once per case and part, shared by every target checked in this process."""

    def __init__(self, expected, scale, rtol: float, atol: float):
        leaves, scales, self.paths = [], [], []
        _leaves(expected, scale, leaves, scales, "", self.paths)
        self.keep = (expected, scale)  # the objects whose ids key the cache stay alive with it
        self.shapes = [a.shape for a in leaves]
        self.bounds = np.cumsum([0, *(a.size for a in leaves)])  # leaf k is values[bounds[k]:bounds[k + 1]]
        self.values = np.concatenate([a.ravel() for a in leaves]) if leaves else np.zeros(0)
        scale_flat = np.concatenate([np.abs(e).ravel() if s is None else np.broadcast_to(
            np.asarray(s, dtype=np.float64), e.shape).ravel() for e, s in zip(leaves, scales)]) if leaves \
            else np.zeros(0)
        with np.errstate(all="ignore"):
            self.allowed = rtol * np.where(np.isfinite(scale_flat), scale_flat, 0.0) + atol
            self.magnitude = np.abs(self.values)
        self.zero = self.values == 0
        self.judged: dict[int, tuple] = {}  # id of a FrozenResult -> (it, what _passes_whole made of it)


def _leaves(expected, scale, leaves: list, scales: list, where: str, paths: list) -> None:
    """The expected arrays, their scales and their paths (named as :func:`compare_structure` names them), in
    its order."""
    if isinstance(expected, dict):
        for key in expected:
            _leaves(expected[key], None if scale is None else scale.get(key), leaves, scales,
                    f"{where}.{key}" if where else key, paths)
    elif isinstance(expected, list):
        for index, item in enumerate(expected):
            _leaves(item, None if scale is None else scale[index], leaves, scales, f"{where}[{index}]", paths)
    else:
        leaves.append(np.asarray(expected, dtype=np.float64))
        scales.append(scale)
        paths.append(where)


def _gathered(expected, got, out: list) -> bool:
    """``got``'s arrays in ``expected``'s order, when ``got`` has exactly its structure and shapes."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            _gathered(expected[key], got[key], out) for key in expected)
    if isinstance(expected, list):
        return isinstance(got, (list, tuple)) and len(got) == len(expected) and all(
            _gathered(e, g, out) for e, g in zip(expected, got))
    if not isinstance(got, np.ndarray) or got.dtype.kind != "f" or got.shape != np.shape(expected):
        return False
    out.append(got.ravel())
    return True


def _flat(case, expected, scale, dtype: str) -> _Flat:
    """The case part's :class:`_Flat`, made the first time it is asked for."""
    return kept(case, "_flat", (id(expected), id(scale), dtype),
                lambda: _Flat(expected, scale, case.tolerance[dtype]["rtol"], case.tolerance[dtype]["atol"]))


def _passes_whole(case, expected, scale, got, dtype: str) -> Comparison | None:
    """The comparison of a result that passes everywhere, or None (then it is compared array by array)."""
    flat = _flat(case, expected, scale, dtype)
    if type(got) is not FrozenResult:
        return _compared_whole(flat, expected, got)
    seen = flat.judged.get(id(got))
    if seen is None or seen[0] is not got:
        seen = flat.judged[id(got)] = (got, _compared_whole(flat, expected, got))
        if len(flat.judged) > _JUDGED_PER_PART:
            try:  # the oldest goes; Dask may grade in threads, and another may just have taken it
                flat.judged.pop(next(iter(flat.judged)), None)
            except (RuntimeError, StopIteration):
                pass
    judged = seen[1]
    return None if judged is None else Comparison(max_abs_err=judged.max_abs_err, max_rel_err=judged.max_rel_err)


def _compared_whole(flat: _Flat, expected, got) -> Comparison | None:
    arrays: list = []
    if not _gathered(expected, got, arrays):
        return None
    if not arrays:
        return Comparison()
    values = np.concatenate(arrays, dtype=np.float64) if len(arrays) > 1 else arrays[0].astype(np.float64)
    with np.errstate(all="ignore"):
        error = np.abs(values - flat.values)
        if not (error <= flat.allowed).all():  # NaN and infinities land here too: compared one by one
            return None
        relative = np.divide(error, flat.magnitude, out=np.zeros_like(error), where=~flat.zero)
    comparison = Comparison(max_abs_err=float(error.max()) if error.size else 0.0,
                            max_rel_err=float(relative.max()) if error.size else 0.0)
    if flat.zero.any() and (error[flat.zero] > 0).any():
        comparison.max_rel_err = math.inf
    return comparison


def leaf_errors(case, got, dtype: str, expected, scale):
    """For a result of exactly ``expected``'s structure and shapes, ``(its _Flat, where finiteness differs,
    |got - expected|)``, every element of every leaf at once (the _Flat's ``paths``, ``shapes`` and ``bounds``
    say which leaf an element is in; its ``allowed``, the error allowed there); None for any other result, and
    for one of no arrays."""
    arrays: list = []
    if not _gathered(expected, got, arrays) or not arrays:
        return None
    flat = _flat(case, expected, scale, dtype)
    with np.errstate(all="ignore"):
        apart, _, error = elementwise_difference(flat.values, np.concatenate(arrays, dtype=np.float64))
    return flat, apart, error


def _compared_by_leaf(flat: _Flat, arrays: list) -> Comparison:
    """What :func:`compare_structure` finds for a result of the expected structure and shapes (``arrays``, its
    arrays in order), computed for all elements at once; only the leaves that differ are looked at one by one."""
    got = np.concatenate(arrays, dtype=np.float64)  # some elements: a result of none passes whole
    expected = flat.values
    with np.errstate(all="ignore"):
        finiteness, finite, error = elementwise_difference(expected, got)
        relative = np.where(finite & ~flat.zero, error / flat.magnitude, np.where(error > 0, np.inf, 0.0))
        outside = error > flat.allowed
        excess = np.where(outside, np.where(flat.allowed > 0, error / flat.allowed, np.inf), 0.0)
    result = Comparison(max_abs_err=float(error.max()), max_rel_err=float(relative.max()))
    for leaf in np.unique(np.searchsorted(flat.bounds, np.flatnonzero(finiteness | outside), side="right") - 1):
        start, end = flat.bounds[leaf], flat.bounds[leaf + 1]
        where, shape = flat.paths[leaf], flat.shapes[leaf]

        def at(offset: int) -> tuple:
            return tuple(int(i) for i in np.unravel_index(offset, shape))

        if finiteness[start:end].any():
            first = int(np.argmax(finiteness[start:end]))
            result.mismatches.append(Mismatch(where, "finiteness differs", at(first), _value(expected[start + first]),
                                              _value(got[start + first])))
        if outside[start:end].any():
            worst = start + int(np.argmax(excess[start:end]))
            problem = (f"|error| {error[worst]:.3g} > allowed {flat.allowed[worst]:.3g}; "
                       f"{int(outside[start:end].sum())} of {end - start} elements outside tolerance")
            result.mismatches.append(Mismatch(where, problem, at(worst - start), _value(expected[worst]),
                                              _value(got[worst]), float(excess[worst])))
    return result
