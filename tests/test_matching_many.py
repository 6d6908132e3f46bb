"""The diagnosis compares an output with every mistake's outputs at once: it must find exactly what comparing
with each one alone finds, whatever the output holds (a near miss, NaN, infinities, a missing or misshapen key)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from optconform.harness.diagnosis import matching
from optconform.harness.diagnosis.matching import Flat, failing_against, failing_against_many
from optconform.harness.diagnosis.variants import variant_outputs
from optconform.reference.conventions import resolve
from optconform.reference.mistakes import mistakes_for
from optconform.vectors import load_suite

OPS = ("adam.update", "momentum.update", "rmsprop.update", "gd.update", "adam.init", "momentum.init",
       "adam.trajectory", "lr_decay.scheduled")


def _cases():
    suite = load_suite()
    picked = []
    for op in OPS:
        picked += [case for case in suite if case.op == op][:3]
    return picked


def _leaves(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


def _answers(case, outputs, rng):
    """What targets return: a mistake's output as it is, nudged at one element, with a NaN or an infinity, and
    the golden output with a key taken away or reshaped."""
    answers = [outputs[0], copy.deepcopy(case.expected)]
    for poison in (None, np.nan, np.inf, -np.inf):
        answer = copy.deepcopy(outputs[rng.integers(len(outputs))])
        arrays = [leaf for leaf in _leaves(answer) if isinstance(leaf, np.ndarray) and leaf.size]
        if arrays:
            target = arrays[rng.integers(len(arrays))]
            index = tuple(rng.integers(n) for n in target.shape)
            target[index] = target[index] * (1 + 1e-6) + 1e-9 if poison is None else poison
        answers.append(answer)
    if isinstance(case.expected, dict) and case.expected:
        first = next(iter(case.expected))
        missing = copy.deepcopy(case.expected)
        del missing[first]
        answers.append(missing)
        reshaped = copy.deepcopy(case.expected)
        leaf = reshaped[first]
        if isinstance(leaf, dict) and leaf:
            key = next(iter(leaf))
            leaf[key] = np.zeros((1,) + np.shape(leaf[key]))
            answers.append(reshaped)
    return answers


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case.id)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_all_at_once_finds_what_one_at_a_time_finds(case, dtype):
    if not case.runs_at(dtype):
        pytest.skip(f"{case.id} runs at float64 only")
    mistakes = mistakes_for(case.op, resolve(case.conventions), dtype)
    outputs = [out for mistake in mistakes for out in variant_outputs(case, mistake)]
    assert outputs, f"{case.id}: no mistake to compare with"
    outputs.append({"parameters": {"W1": np.zeros(3)}})  # an output of another structure: compared on its own
    rng = np.random.default_rng(len(case.id))
    matched = differed = 0
    for answer in _answers(case, outputs[:-1], rng):
        flat = Flat(answer, case.expected)
        alone = [failing_against(case, flat, dtype, out) for out in outputs]
        assert failing_against_many(case, flat, dtype, outputs) == alone
        assert failing_against_many(case, answer, dtype, outputs) == alone  # from the tree itself too
        matched += sum(not found for found in alone)
        differed += sum(bool(found) for found in alone)
    assert matched and differed  # both verdicts were reached: the comparison is not one-sided


def test_past_the_byte_budget_the_outputs_are_stacked_afresh_each_time(monkeypatch):
    case = next(c for c in load_suite() if c.op == "adam.update")
    outputs = [out for m in mistakes_for(case.op, resolve(case.conventions), "float64")
               for out in variant_outputs(case, m)]
    monkeypatch.setattr(matching, "STACKED_BYTES", 0)
    case.__dict__.pop("_stacked_outputs", None)
    flat = Flat(outputs[0], case.expected)
    first = failing_against_many(case, flat, "float64", outputs)
    assert not case.__dict__["_stacked_outputs"]  # nothing kept
    assert first == failing_against_many(case, flat, "float64", outputs) == \
        [failing_against(case, flat, "float64", out) for out in outputs]


def _synthetic(expected: dict, scale: dict | None, rtol: float = 1e-3, atol: float = 1e-6):
    """A case of known numbers: its expected output, its error scale (or none), its tolerance."""
    from types import SimpleNamespace

    tolerance = {"float64": {"rtol": rtol, "atol": atol}}
    if scale is not None:
        tolerance["scale"] = scale
    return SimpleNamespace(expected=expected, tolerance=tolerance)


def _both(case, got, outputs):
    alone = [failing_against(case, Flat(got, case.expected), "float64", out) for out in outputs]
    many = failing_against_many(case, got, "float64", outputs)
    assert many == alone
    return many


def test_without_a_case_scale_each_mistakes_own_magnitude_is_its_scale():
    case = _synthetic({"w": np.array([1.0, -2.0])}, None)
    mistake = {"w": np.array([-4.0, -8.0])}  # negative: its magnitude, not its sign, sets the allowed error
    near = {"w": np.array([-4.0 - 3e-3, -8.0 + 7e-3])}  # within rtol * |value| + atol of it
    assert _both(case, near, [mistake]) == [set()]
    far = {"w": np.array([-4.0, -8.0 + 9e-3])}
    assert _both(case, far, [mistake]) == [{"w"}]


def test_atol_is_added_where_the_scale_is_zero():
    case = _synthetic({"w": np.array([0.0, 1.0])}, {"w": np.array([0.0, 1.0])}, atol=1e-6)
    mistake = {"w": np.array([0.0, 1.0])}
    assert _both(case, {"w": np.array([5e-7, 1.0])}, [mistake]) == [set()]  # inside atol
    assert _both(case, {"w": np.array([2e-6, 1.0])}, [mistake]) == [{"w"}]  # outside it


def test_non_finite_scales_and_values_allow_nothing_but_themselves():
    case = _synthetic({"w": np.array([1.0, 2.0, 0.0, 3.0])}, {"w": np.array([np.inf, np.nan, np.nan, 1.0])},
                      atol=1e-6)
    mistake = {"w": np.array([np.inf, 2.0, 0.0, 3.0])}
    assert _both(case, {"w": np.array([np.inf, 2.0, 0.0, 3.0])}, [mistake]) == [set()]
    assert _both(case, {"w": np.array([-np.inf, 2.0, 0.0, 3.0])}, [mistake]) == [{"w"}]  # the other infinity
    # a NaN in the case's scale counts as 0: the mistake's own magnitude (8 * |2|) still widens it ...
    assert _both(case, {"w": np.array([np.inf, 2.0 + 1e-5, 0.0, 3.0])}, [mistake]) == [set()]
    # ... and where that is 0 too, only atol is left (never "anything goes")
    assert _both(case, {"w": np.array([np.inf, 2.0, 1e-4, 3.0])}, [mistake]) == [{"w"}]
    nan_mistake = {"w": np.array([np.nan, 2.0, 0.0, 3.0])}
    assert _both(case, {"w": np.array([np.nan, 2.0, 0.0, 3.0])}, [nan_mistake]) == [set()]
    assert _both(case, {"w": np.array([1.0, 2.0, 0.0, 3.0])}, [nan_mistake]) == [{"w"}]


def test_an_empty_leaf_never_fails_nor_passes_its_neighbours_verdict_on():
    expected = {"a": np.zeros(0), "b": np.array([1.0, 2.0]), "c": np.zeros((0, 3))}
    case = _synthetic(expected, {"a": np.zeros(0), "b": np.array([1.0, 1.0]), "c": np.zeros((0, 3))})
    mistake = {"a": np.zeros(0), "b": np.array([1.0, 2.0]), "c": np.zeros((0, 3))}
    assert _both(case, {**mistake, "b": np.array([9.0, 9.0])}, [mistake]) == [{"b"}]
    assert _both(case, dict(mistake), [mistake]) == [set()]


def test_a_kept_stack_is_reused_and_the_kept_stacks_stay_within_their_byte_budget(monkeypatch):
    want = Flat({"w": np.zeros(4)})
    first = _synthetic({"w": np.zeros(4)}, None)
    second = _synthetic({"w": np.zeros(4)}, None)
    outputs = [{"w": np.arange(4.0)}, {"w": -np.arange(4.0)}]
    one = 2 * 4 * 8 * 2  # two rows of four float64, and their allowed errors
    monkeypatch.setattr(matching, "_stacked_bytes", 0)
    monkeypatch.setattr(matching, "STACKED_BYTES", one)  # room for exactly one
    kept = matching._stacked(first, "float64", outputs, want)
    assert matching._stacked(first, "float64", outputs, want) is kept  # kept, not stacked again
    assert matching._stacked_bytes == one
    again = matching._stacked(second, "float64", outputs, want)
    assert not second._stacked_outputs and matching._stacked_bytes == one  # past the budget: made, not kept
    assert matching._stacked(second, "float64", outputs, want) is not again
    assert [r.tolist() for r in again[1]] == [r.tolist() for r in kept[1]]


def test_too_many_numbers_are_compared_one_output_at_a_time(monkeypatch):
    case = _synthetic({"w": np.zeros(4)}, None)
    outputs = [{"w": np.arange(4.0)}, {"w": -np.arange(4.0)}]
    monkeypatch.setattr(matching, "STACK_NUMBERS", 7)  # two outputs of four: 8 numbers
    assert matching._stack(case, "float64", outputs, Flat(case.expected)) is None
    assert _both(case, {"w": np.arange(4.0)}, outputs) == [set(), {"w"}]
    monkeypatch.setattr(matching, "STACK_NUMBERS", 8)
    assert matching._stack(case, "float64", outputs, Flat(case.expected))[0] == [0, 1]


def test_outputs_of_the_golden_structure_are_never_compared_one_at_a_time(monkeypatch):
    case = _synthetic({"w": np.zeros(3)}, {"w": np.ones(3)})
    outputs = [{"w": np.zeros(3)}, {"w": np.ones(3)}]

    def one_at_a_time(*args, **kwargs):
        raise AssertionError("an output of the golden structure was compared on its own")

    monkeypatch.setattr(matching, "failing_against", one_at_a_time)
    assert failing_against_many(case, {"w": np.ones(3)}, "float64", outputs) == [{"w"}, set()]


def test_what_cannot_be_stacked_is_remembered_and_costs_no_bytes(monkeypatch):
    case = _synthetic({"w": np.zeros(3)}, {"v": np.ones(3)})  # a scale of other leaves: never stacked
    outputs = [{"w": np.zeros(3)}]
    monkeypatch.setattr(matching, "_stacked_bytes", 0)
    monkeypatch.setattr(matching, "STACKED_BYTES", 0)
    assert matching._stacked(case, "float64", outputs, Flat(case.expected)) is None
    assert len(case._stacked_outputs) == 1 and matching._stacked_bytes == 0
