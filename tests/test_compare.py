"""The comparer, unit by unit: what differs, where, by how much, and the fast path that must agree with it.

Each assertion is about the comparison's contract (which element is worst, which mismatch a structure
gives, the exact bound, the errors it reports); ``optconform selftest --harness`` mutates compare.py and
these tests, with test_tolerance_edge.py, must kill every mutant.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optconform.harness.checking import compare
from optconform.harness.checking.compare import (
    Comparison,
    Mismatch,
    compare_arrays,
    compare_case_outputs,
    compare_structure,
    elementwise_errors,
)
from optconform.harness.target.readonly import FrozenResult, frozen


def test_not_an_array_of_numbers_and_a_wrong_shape_are_said_as_such():
    assert compare_arrays("v.dW1", [1.0], "abc", 0.0, 0.0).mismatches == [
        Mismatch("v.dW1", "not an array of numbers (str)")]
    assert compare_arrays("p.W1", np.zeros((2, 1)), np.zeros(3), 0.0, 0.0).mismatches == [
        Mismatch("p.W1", "shape (3,), expected (2, 1)")]
    empty = compare_arrays("b", np.zeros(0), np.zeros(0), 0.0, 0.0)
    assert empty.ok and (empty.max_abs_err, empty.max_rel_err) == (0.0, 0.0)


def test_finiteness_differs_at_the_first_such_element():
    result = compare_arrays("s", [[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [math.nan, math.inf]], 0.1, 0.0)
    first = result.mismatches[0]
    assert (first.where, first.problem, first.index, first.expected) == ("s", "finiteness differs", (1, 0), 3.0)
    assert math.isnan(first.got) and len(result.mismatches) == 1
    assert compare_arrays("s", [math.inf], [-math.inf], 0.1, 0.0).mismatches[0].problem == "finiteness differs"
    assert compare_arrays("s", [math.inf, math.nan, -math.inf], [math.inf, math.nan, -math.inf], 0.0, 0.0).ok
    assert compare_arrays("s", [math.nan], [1.0], 1.0, 1.0).mismatches[0].index == (0,)


def test_the_bound_is_inclusive_and_the_worst_element_is_the_one_furthest_past_it():
    # rtol 0.5, atol 0.25 at 1.0: the allowed error is 0.75 exactly
    on = compare_arrays("x", [1.0, -2.0], [1.75, -2.0], 0.5, 0.25)
    assert on.ok and (on.max_abs_err, on.max_rel_err) == (0.75, 0.75)
    past = compare_arrays("x", [1.0, -2.0], [1.875, -2.0], 0.5, 0.25)
    (mismatch,) = past.mismatches
    assert (mismatch.index, mismatch.expected, mismatch.got, mismatch.excess) == ((0,), 1.0, 1.875, 0.875 / 0.75)
    assert mismatch.problem == "|error| 0.875 > allowed 0.75; 1 of 2 elements outside tolerance"
    # furthest past its own bound, not the largest error: 1.5/1 against 0.05/0.01
    worst = compare_arrays("x", [[100.0, 1.0]], [[101.5, 1.05]], 0.01, 0.0).mismatches[0]
    assert worst.index == (0, 1) and worst.excess == pytest.approx(5.0)
    assert all(type(i) is int for i in worst.index)  # plain ints: a report writes them as JSON


def test_a_zero_bound_and_a_zero_reference():
    exact = compare_arrays("x", [1.0], [1.0 + 2.0 ** -52], 0.0, 0.0)
    assert exact.mismatches[0].excess == math.inf
    at_zero = compare_arrays("x", [0.0, 2.0], [1e-3, 2.0], 0.0, 1e-2)
    assert at_zero.ok and at_zero.max_rel_err == math.inf and at_zero.max_abs_err == pytest.approx(1e-3)
    assert compare_arrays("x", [0.0], [0.0], 0.0, 0.0).max_rel_err == 0.0


def test_the_bound_scales_with_the_magnitude_or_the_given_scale():
    negative = compare_arrays("x", [-2.0], [-3.0], 1.0, 0.0)  # |expected| 2: allowed 2, error 1
    assert negative.ok and negative.max_rel_err == 0.5
    assert not compare_arrays("x", [1.0], [3.0], 0.9, 0.0).ok  # the reference's magnitude, never the student's
    assert not compare_structure("x", [np.ones(1)], [np.full(1, 3.0)], 0.9, 0.0).ok  # in a list too
    assert compare_arrays("x", [1e-10], [1e-10 + 1e-6], 1e-5, 0.0, scale=[1.0]).ok
    assert not compare_arrays("x", [1e-10], [1e-10 + 1e-6], 1e-5, 0.0).ok
    assert not compare_arrays("x", [1.0], [1.5], 1.0, 0.1, scale=[math.inf]).ok  # an infinite scale adds nothing


def test_elementwise_errors_are_zero_where_a_value_is_not_finite():
    finiteness, error, allowed = elementwise_errors(np.array([1.0, math.inf, 2.0]), np.array([1.5, math.inf, math.nan]),
                                                    0.5, 0.125)
    assert finiteness.tolist() == [False, False, True]
    assert error.tolist() == [0.5, 0.0, 0.0] and allowed.tolist() == [0.625, 0.125, 1.125]


def test_a_structure_names_each_missing_unexpected_and_wrong_part():
    expected = {"parameters": {"W1": np.ones(2), "b1": np.zeros(1)}, "v": {"dW1": np.ones(2)}}
    got = {"parameters": {"W1": np.ones(2), "W9": np.ones(2)}, "v": {"dW1": np.ones(2) * 1.5}}
    result = compare_structure("", expected, got, 0.1, 0.0)
    described = sorted((m.where, m.problem.split(";")[0]) for m in result.mismatches)
    assert described == [("parameters.W9", "unexpected key"), ("parameters.b1", "missing"),
                         ("v.dW1", "|error| 0.5 > allowed 0.1")]
    assert compare_structure("", expected, [1], 0.1, 0.0).mismatches == [
        Mismatch("result", "expected a dict of ['parameters', 'v'], got list")]
    assert compare_structure("steps[0]", expected, None, 0.1, 0.0).mismatches[0].where == "steps[0]"
    assert compare_structure("", {"a": np.ones(1)}, {"b": np.ones(1)}, 0.1, 0.0).mismatches == [
        Mismatch("a", "missing"), Mismatch("b", "unexpected key")]


def test_a_list_names_its_length_and_still_compares_what_is_there():
    expected = [np.ones(1), np.ones(1)]
    assert compare_structure("batches", expected, {"a": 1}, 0.0, 0.0).mismatches == [
        Mismatch("batches", "expected a list of 2, got dict")]
    short = compare_structure("batches", expected, (np.full(1, 3.0),), 0.0, 0.5)
    assert [(m.where, m.problem.split(";")[0]) for m in short.mismatches] == [
        ("batches", "1 items, expected 2"), ("batches[0]", "|error| 2 > allowed 0.5")]
    # a list's items keep rtol and atol apart: allowed = 0.5 * 1 + 0 = 0.5 passes an error of 0.4
    assert compare_structure("b", [np.ones(1)], [np.full(1, 1.4)], 0.5, 0.0).ok
    assert not compare_structure("b", [np.ones(1)], [np.full(1, 1.4)], 0.0, 0.5 - 0.2).ok


def test_a_scale_follows_the_structure():
    expected = {"steps": [{"W": np.array([1e-9])}, {"W": np.array([2e-9])}]}
    got = {"steps": [{"W": np.array([1e-9 + 1e-7])}, {"W": np.array([2e-9 + 1e-7])}]}
    scale = {"steps": [{"W": [1.0]}, {"W": [1.0]}]}
    assert compare_structure("", expected, got, 1e-6, 0.0, scale).ok
    assert not compare_structure("", expected, got, 1e-6, 0.0).ok
    assert not compare_structure("", expected, got, 1e-6, 0.0, {"steps": [{"W": [1.0]}, {"W": [1e-9]}]}).ok


def test_merged_errors_are_the_largest_of_either_side():
    small, large = Comparison(max_abs_err=1.0, max_rel_err=3.0), Comparison(max_abs_err=2.0, max_rel_err=0.5)
    small.merge(large)
    assert (small.max_abs_err, small.max_rel_err) == (2.0, 3.0)
    large = Comparison([Mismatch("a", "x", excess=2.0)], max_abs_err=5.0, max_rel_err=6.0)
    large.merge(Comparison([Mismatch("b", "y", excess=9.0)], max_abs_err=1.0, max_rel_err=0.5))
    assert (large.max_abs_err, large.max_rel_err) == (5.0, 6.0) and large.worst().where == "b"
    assert not large.ok and Comparison().ok and Comparison().worst() is None


# ---------------------------------------------------------------- the fast path agrees with the element-wise one


def _case(expected, scale=None, rtol=1e-3, atol=1e-6):
    tolerance = {"float64": {"rtol": rtol, "atol": atol}}
    if scale is not None:
        tolerance["scale"] = scale
    return types.SimpleNamespace(expected=expected, tolerance=tolerance)


EXPECTED = {"parameters": {"W1": np.array([[1.0, -2.0], [0.0, 4.0]]), "b1": np.array([[0.5], [0.0]])},
            "v": {"dW1": np.array([[3.0, 1e-3], [2.0, 0.0]])}}


def _shifted(by: float) -> dict:
    return {tree: {key: value + by for key, value in arrays.items()} for tree, arrays in EXPECTED.items()}


@pytest.mark.parametrize("by", [0.0, 5e-7, 1e-6])
def test_a_passing_result_is_decided_whole_with_the_same_errors(by):
    case, got = _case(EXPECTED), _shifted(by)
    whole = compare._passes_whole(case, case.expected, None, got, "float64")
    one_by_one = compare_structure("", EXPECTED, got, 1e-3, 1e-6)
    assert whole is not None and whole.ok and one_by_one.ok
    assert (whole.max_abs_err, whole.max_rel_err) == (one_by_one.max_abs_err, one_by_one.max_rel_err)
    assert (whole.max_rel_err == math.inf) == (by > 0)  # expected zeros met by a non-zero error
    frozen_got = FrozenResult(frozen(got))  # an answer a grading process shares: judged once, remembered
    again = compare_case_outputs(case, frozen_got, "float64")
    assert (again.max_abs_err, again.max_rel_err) == (whole.max_abs_err, whole.max_rel_err)
    assert compare_case_outputs(case, frozen_got, "float64").max_abs_err == whole.max_abs_err


def test_the_fast_path_bound_is_inclusive_and_scaled():
    case = _case({"a": np.array([1.0, 2.0])}, rtol=0.5, atol=0.25)
    assert compare._passes_whole(case, case.expected, None, {"a": np.array([1.75, 2.0])}, "float64") is not None
    assert compare._passes_whole(case, case.expected, None, {"a": np.array([1.875, 2.0])}, "float64") is None
    scaled = _case([{"W": np.array([1e-9, -1e-9])}], scale=[{"W": [1.0, 1.0]}], rtol=1e-6, atol=0.0)
    near = [{"W": np.array([1e-9 + 1e-7, -1e-9 - 1e-7])}]
    assert compare._passes_whole(scaled, scaled.expected, scaled.tolerance["scale"], near, "float64") is not None
    assert compare_case_outputs(scaled, near, "float64").ok
    unscaled = _case([{"W": np.array([1e-9, -1e-9])}], rtol=1e-6, atol=0.0)
    assert not compare_case_outputs(unscaled, near, "float64").ok


@pytest.mark.parametrize("got", [
    {"parameters": {"W1": np.zeros((2, 2)), "b1": np.zeros((2, 1))}},                            # a tree missing
    {**_shifted(0.0), "extra": {"x": np.zeros(1)}},                                            # a key too many
    {**_shifted(0.0), "v": {"dW1": np.zeros((2, 2), dtype=np.int64)}},                         # not floats
    {**_shifted(0.0), "v": {"dW1": [[3.0, 1e-3], [2.0, 0.0]]}},                                # not an array
    {**_shifted(0.0), "v": {"dW1": np.zeros(4)}},                                              # another shape
    {**_shifted(0.0), "v": {"dW1": np.array([[3.0, 1e-3], [2.0, math.nan]])}},                 # NaN
])
def test_anything_but_the_same_structure_of_float_arrays_is_compared_one_by_one(got):
    case = _case(EXPECTED)
    assert compare._passes_whole(case, case.expected, None, got, "float64") is None


def test_lists_and_tuples_of_arrays_are_decided_whole():
    case = _case([np.ones(2), np.zeros(3)])
    assert compare._passes_whole(case, case.expected, None, (np.ones(2), np.zeros(3)), "float64") is not None
    assert compare._passes_whole(case, case.expected, None, [np.ones(2)], "float64") is None
    empty = _case({"a": np.zeros(0)})
    whole = compare._passes_whole(empty, empty.expected, None, {"a": np.zeros(0)}, "float64")
    assert whole is not None and (whole.max_abs_err, whole.max_rel_err) == (0.0, 0.0)
    assert compare._passes_whole(_case({}), {}, None, {}, "float64").ok


def test_a_second_array_wrong_fails_the_whole():
    case = _case({"a": np.ones(1), "b": np.ones(2)})
    assert compare_case_outputs(case, {"a": np.ones(1), "b": np.array([1.0, 2.0])}, "float64").mismatches[0].where == "b"


def test_a_result_changed_after_it_was_judged_is_judged_again():
    case = _case({"a": np.ones(2)})
    got = {"a": np.ones(2)}
    assert compare_case_outputs(case, got, "float64").ok
    got["a"][1] = 5.0  # an ordinary (not frozen) result may change: never judged from memory
    assert not compare_case_outputs(case, got, "float64").ok


def test_a_part_made_afresh_for_each_call_is_never_mistaken_for_an_earlier_one():
    case = _case({"a": np.ones(1)})
    for i in range(40):  # each part dies after its call: its id may be given to the next one
        part = {"a": np.full(3, float(i))}
        assert compare_case_outputs(case, {"a": np.zeros(3)}, "float64", expected=part).ok == (i == 0), i
        del part


def test_each_part_remembers_a_bounded_number_of_frozen_results():
    case = _case({"a": np.ones(2)})
    kept = [FrozenResult(frozen({"a": np.ones(2)})) for _ in range(3 * compare._JUDGED_PER_PART)]
    for got in kept:
        assert compare_case_outputs(case, got, "float64").ok
    (flat,) = case._flat.values()
    assert len(flat.judged) == compare._JUDGED_PER_PART
    assert list(flat.judged) == [id(got) for got in kept[-compare._JUDGED_PER_PART:]]  # the newest stay


def test_the_fast_path_reads_errors_both_ways_and_a_negative_reference_by_its_magnitude():
    case = _case(EXPECTED)
    assert compare._passes_whole(case, case.expected, None, _shifted(-1.0), "float64") is None  # below, too far
    negative = _case({"a": np.array([-2.0, 1.0])})
    got = {"a": np.array([-2.001, 1.0])}
    whole = compare._passes_whole(negative, negative.expected, None, got, "float64")
    assert whole is not None and whole.max_rel_err == pytest.approx(0.0005)
    assert whole.max_rel_err == compare_structure("", negative.expected, got, 1e-3, 1e-6).max_rel_err


def test_an_infinite_scale_adds_nothing_on_the_fast_path_either():
    case = _case({"a": np.array([1.0])}, scale={"a": [math.inf]}, rtol=1.0, atol=0.1)
    assert compare._passes_whole(case, case.expected, case.tolerance["scale"], {"a": np.array([1.5])}, "float64") \
        is None
    assert compare._passes_whole(case, case.expected, case.tolerance["scale"], {"a": np.array([1.05])}, "float64") \
        is not None


def test_a_frozen_result_is_decided_whole_once_and_remembered():
    case = _case(EXPECTED)
    got = FrozenResult(frozen(_shifted(5e-7)))
    assert compare._passes_whole(case, case.expected, None, got, "float64") is not None
    (flat,) = case._flat.values()
    entry = flat.judged[id(got)]
    assert compare_case_outputs(case, got, "float64").ok
    assert flat.judged[id(got)] is entry  # judged from memory, not again


# ---------------------------------------------------------------- a failing result of the expected structure

VALUES = [0.0, -0.0, 1.0, -1.0, 2.5, 1e-7, 5e-324, 1e300, -1e300, math.nan, math.inf, -math.inf]
SHAPES = [(), (0,), (3,), (2, 3), (1, 0)]


def _said(comparison: Comparison):
    """Everything a comparison says, NaN and all, in a form == can hold to."""
    return ([(m.where, m.problem, m.index, repr(m.expected), repr(m.got), repr(m.excess))
             for m in comparison.mismatches], repr(comparison.max_abs_err), repr(comparison.max_rel_err))


@st.composite
def _results(draw):
    """An expected tree (dicts and lists of arrays, some empty or 0-d), its scale (or none) and an answer of the
    same structure and shapes, each element the expected one, near it, far from it, or another special value."""
    def tree(depth):
        if depth < 2 and draw(st.booleans()):
            if draw(st.booleans()):
                return {f"k{i}": tree(depth + 1) for i in range(draw(st.integers(0, 3)))}
            return [tree(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        shape = draw(st.sampled_from(SHAPES))
        return np.array(draw(st.lists(st.sampled_from(VALUES), min_size=math.prod(shape),
                                      max_size=math.prod(shape))), dtype=np.float64).reshape(shape)

    def like(expected, make):
        if isinstance(expected, dict):
            return {key: like(value, make) for key, value in expected.items()}
        if isinstance(expected, list):
            return [like(value, make) for value in expected]
        return make(expected)

    def answer(array):
        moves = draw(st.lists(st.sampled_from(["same", "near", "far", "special"]), min_size=array.size,
                              max_size=array.size))
        out = array.copy().ravel()
        for k, move in enumerate(moves):
            if move == "near":
                out[k] = out[k] * (1 + 1e-9) + 1e-12
            elif move == "far":
                out[k] = out[k] * 1.5 + 0.25
            elif move == "special":
                out[k] = draw(st.sampled_from(VALUES))
        with np.errstate(over="ignore"):  # 1e300 as float32 is inf: one more special value
            return out.reshape(array.shape).astype(draw(st.sampled_from([np.float64, np.float32])))

    def scale_of(array):  # a case's stored scale: an array of the output's shape
        return np.array(draw(st.lists(st.sampled_from([0.0, 1e-3, 1.0, 1e10, math.nan, math.inf]),
                                      min_size=array.size, max_size=array.size)), dtype=np.float64).reshape(array.shape)

    expected = {f"k{i}": tree(1) for i in range(draw(st.integers(0, 3)))}  # a result is a dict
    scale = like(expected, scale_of) if draw(st.booleans()) else None
    return expected, scale, like(expected, answer)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_results(), st.sampled_from([(1e-3, 1e-6), (0.0, 0.0), (1e-9, 0.0)]))
def test_a_result_of_the_expected_structure_is_said_leaf_by_leaf_as_the_element_by_element_comparison_says_it(
        result, tolerance):
    expected, scale, got = result
    rtol, atol = tolerance
    case = _case(expected, scale, rtol, atol)
    by_element = _said(compare_structure("", expected, got, rtol, atol, scale))
    assert _said(compare_case_outputs(case, got, "float64")) == by_element
    assert _said(compare_case_outputs(case, FrozenResult(frozen(got)), "float64")) == by_element


def test_the_leaves_that_differ_are_named_in_order_each_with_its_finiteness_and_its_worst_element():
    expected = {"a": np.zeros(0), "b": np.array(2.0), "c": [np.array([[1.0, np.inf], [np.nan, 4.0]]), np.ones(0)],
                "d": np.array([1.0, 2.0, 3.0])}
    got = {"a": np.zeros(0), "b": np.array(2.5), "c": [np.array([[1.0, -np.inf], [np.nan, 9.0]]), np.ones(0)],
           "d": np.array([1.0, 2.0, 3.0])}
    comparison = compare_case_outputs(_case(expected, rtol=0.1, atol=0.0), got, "float64")
    assert [(m.where, m.index, m.problem.split(";")[0]) for m in comparison.mismatches] == [
        ("b", (), "|error| 0.5 > allowed 0.2"), ("c[0]", (0, 1), "finiteness differs"),
        ("c[0]", (1, 1), "|error| 5 > allowed 0.4")]
    assert comparison.mismatches[2].problem.endswith("1 of 4 elements outside tolerance")
    assert (comparison.mismatches[0].expected, comparison.mismatches[0].got, comparison.mismatches[0].excess) \
        == (2.0, 2.5, 2.5)
    assert comparison.max_abs_err == 5.0 and comparison.max_rel_err == 1.25


def test_a_result_of_another_structure_is_compared_element_by_element_with_the_cases_tolerance():
    expected = {"a": np.array([1.0, 2.0]), "b": np.array([[1.0]]), "c": np.array([4.0])}
    got = {"a": np.array([1.0, 2.5]), "b": np.array([1.0]), "d": np.array([4.0])}
    said = compare_case_outputs(_case(expected, rtol=0.1, atol=0.0), got, "float64").mismatches
    assert [(m.where, m.problem.split(";")[0]) for m in said] == [
        ("a", "|error| 0.5 > allowed 0.2"), ("b", "shape (1,), expected (1, 1)"), ("c", "missing"),
        ("d", "unexpected key")]
