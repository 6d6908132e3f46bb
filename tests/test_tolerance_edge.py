"""The tolerance edge: an output off by 0.9, 1.1 and 2 times the allowed error passes, fails and fails.

Exact comparison is the product's claim, so it is held at the bound itself: one element of a case's expected
output is moved by a multiple of its allowed error (``rtol * scale + atol``, computed here from the case's
stored scale, not by the harness), in an update, a trajectory and a schedule, at each dtype the case runs at,
through each road a result takes to the comparison: the whole-result fast path, the memo of results already
read (a frozen result), and the element-by-element comparison.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from optconform.harness.checking.compare import compare_case_outputs, compare_structure
from optconform.harness.target.readonly import FrozenResult, frozen
from optconform.vectors import load_suite

OPS = ("adam.update", "momentum.update", "adam.trajectory", "lr_decay.scheduled", "lr_decay.inverse_time")


@pytest.fixture(scope="module")
def cases():
    suite = load_suite()
    return [next(c for c in suite if c.op == op and "course" in c.id or c.op == op) for op in OPS]


def _leaves(expected, scale, path=()):
    """``(path, array, scale array)`` of every expected array, with its stored scale (or |expected|)."""
    if isinstance(expected, dict):
        for key in expected:
            yield from _leaves(expected[key], None if scale is None else scale.get(key), (*path, key))
    elif isinstance(expected, list):
        for index, item in enumerate(expected):
            yield from _leaves(item, None if scale is None else scale[index], (*path, index))
    else:
        array = np.asarray(expected, dtype=np.float64)
        yield path, array, np.abs(array) if scale is None else np.broadcast_to(np.asarray(scale, float), array.shape)


def _moved(case, dtype: str, factor: float):
    """The expected output with one element moved by ``factor`` times its allowed error, and where."""
    tolerance = case.tolerance[dtype]
    for path, array, scale in _leaves(case.expected, case.tolerance.get("scale")):
        allowed = tolerance["rtol"] * scale + tolerance["atol"]
        for index in np.ndindex(array.shape):
            value = array[index] + factor * allowed[index]
            moved = abs(value - array[index]) / allowed[index]
            if np.isfinite(value) and abs(moved - factor) < 0.02 * factor:  # representable so near the bound
                got = copy.deepcopy(case.expected)
                target = got
                for step in path[:-1]:
                    target = target[step]
                leaf = np.array(target[path[-1]], dtype=np.float64)
                leaf[index] = value
                target[path[-1]] = leaf
                return _as_arrays(got), path
    raise AssertionError(f"{case.id}: no element can be moved by {factor} x its allowed error")


def _as_arrays(tree):
    if isinstance(tree, dict):
        return {key: _as_arrays(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_as_arrays(item) for item in tree]
    return np.array(tree, dtype=np.float64)


ROADS = {
    "fast path": lambda case, got, dtype: compare_case_outputs(case, got, dtype),
    "frozen memo": lambda case, got, dtype: compare_case_outputs(case, FrozenResult(frozen(got)), dtype),
    "element by element": lambda case, got, dtype: compare_structure(
        "", case.expected, got, case.tolerance[dtype]["rtol"], case.tolerance[dtype]["atol"],
        case.tolerance.get("scale")),
}


@pytest.mark.parametrize("road", sorted(ROADS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op", OPS)
def test_inside_the_bound_passes_and_past_it_fails(cases, op, dtype, road):
    case = next(c for c in cases if c.op == op)
    if not case.runs_at(dtype):
        pytest.skip(f"{case.id} is float64-only")
    compare = ROADS[road]
    inside, _ = _moved(case, dtype, 0.9)
    assert compare(case, inside, dtype).ok, (case.id, dtype, road)
    for factor in (1.1, 2.0):
        outside, path = _moved(case, dtype, factor)
        comparison = compare(case, outside, dtype)
        assert not comparison.ok, (case.id, dtype, road, factor)
        if comparison.mismatches:  # the memo says only pass or not; the others name the element
            assert str(path[-1]) in comparison.worst().where
