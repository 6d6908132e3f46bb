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
