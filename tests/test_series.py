"""The series behind a failing trajectory's plot: taken a whole step at a time, it is what the leaf-by-leaf
reading says, on answers with NaN, infinities, exact zeros, far and near misses, and short or odd runs."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from optconform.harness.checking import series as plot
from optconform.harness.checking.outcome import Outcome
from optconform.vectors import load_suite


@pytest.fixture(scope="module")
def trajectories():
    suite = load_suite()
    return [case for op in ("adam.trajectory", "momentum.trajectory") for case in suite if case.op == op][:6]


def _answers(case, rng):
    """Free runs a student might send: the reference's own steps changed here and there."""
    steps = [{tree: {key: np.array(value, dtype=np.float64) for key, value in arrays.items()}
              for tree, arrays in step.items()} for step in case.expected["steps"]]
    for kind in ("far", "near", "nan", "inf", "zero", "late", "short", "float32"):
        run = copy.deepcopy(steps)
        for k, step in enumerate(run):
            for arrays in step.values():
                for key, value in arrays.items():
                    pick = rng.random(value.shape) < 0.3
                    if kind == "far":
                        value[pick] = value[pick] * 1.5 + 0.1
                    elif kind == "near":
                        value[pick] = value[pick] * (1 + 1e-12)
                    elif kind in ("nan", "inf") and k >= 2:
                        value[pick] = np.nan if kind == "nan" else -np.inf
                    elif kind == "zero":
                        value[pick] = 0.0
                    elif kind == "late" and k >= len(run) - 2:
                        value[pick] = value[pick] + 1.0
                    elif kind == "float32":
                        arrays[key] = value.astype(np.float32)
        yield kind, run[: len(run) // 2] if kind == "short" else run


def _counted(monkeypatch) -> list:
    """The runs series() hands to the leaf-by-leaf reading."""
    handed, leaf_by_leaf = [], plot._series_by_leaf
    monkeypatch.setattr(plot, "_series_by_leaf", lambda case, run, dtype: handed.append(run) or leaf_by_leaf(
        case, run, dtype))
    return handed


def test_a_whole_step_at_a_time_says_what_leaf_by_leaf_says(trajectories, monkeypatch):
    rng, compared = np.random.default_rng(7), 0
    leaf_by_leaf = plot._series_by_leaf
    handed = _counted(monkeypatch)
    for case in trajectories:
        for kind, run in _answers(case, rng):
            outcome = Outcome("fail", got={"steps": run})
            fast = plot.series(case, outcome, "float64")
            slow = leaf_by_leaf(case, run, "float64")
            assert json.dumps(fast) == json.dumps(slow), (case.id, kind)
            compared += fast is not None
    assert compared >= len(trajectories) * 5  # most runs leave the reference, and are plotted
    assert not handed  # each of them a whole step at a time


def test_steps_of_another_structure_are_read_leaf_by_leaf(trajectories, monkeypatch):
    handed = _counted(monkeypatch)
    case = trajectories[0]
    run = [{tree: dict(arrays) for tree, arrays in step.items()} for step in case.expected["steps"]]
    for step in run:
        step["parameters"] = {key: np.asarray(value) + 1.0 for key, value in step["parameters"].items()}
        step["extra"] = {"x": np.zeros(1)}  # a tree the reference has not: ignored, as leaf by leaf it is
    shown = plot.series(case, Outcome("fail", got={"steps": run}), "float64")
    assert shown is not None and shown["first_wrong"] == 1 and shown["where"].startswith("parameters.")
    assert handed == [run]
    assert json.dumps(shown) == json.dumps(plot._series_by_leaf(case, run, "float64"))


def test_leaf_errors_are_every_element_of_a_result_of_the_expected_structure_and_nothing_else(trajectories):
    from optconform.harness.checking.compare import leaf_errors

    case = trajectories[0]
    expected, scale = case.expected["steps"][0], case.tolerance["scale"]["steps"][0]
    got = {tree: {key: np.asarray(value) * 2.0 for key, value in arrays.items()} for tree, arrays in expected.items()}
    flat, apart, error = leaf_errors(case, got, "float64", expected, scale)
    values = np.concatenate([np.ravel(value) for arrays in expected.values() for value in arrays.values()])
    assert flat.paths == [f"{tree}.{key}" for tree, arrays in expected.items() for key in arrays]
    assert np.array_equal(error, np.abs(values)) and not apart.any() and flat.bounds[-1] == values.size
    tree = next(iter(got))
    got[tree] = {**got[tree], next(iter(got[tree])): np.array([np.nan])}  # another shape
    assert leaf_errors(case, got, "float64", expected, scale) is None
    assert leaf_errors(case, {}, "float64", {}, None) is None  # no arrays: nothing to say
