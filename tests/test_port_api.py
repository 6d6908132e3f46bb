"""The public port API (``optconform.port``), the conventions ports need, and the conformance matrix.

A port written with only the API's helpers conforms; each helper keeps the contract it documents; each
new convention is told apart from its neighbours by the cases; and the matrix reports what a run shows.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from optconform import port
from optconform.harness import matrix
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import FLUSHED_PLATFORM, select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.target.session import InProcessSession
from optconform.reference import ops
from optconform.reference.conventions import ConventionError, for_call, resolve
from optconform.vectors import load_suite

CASES = load_suite()


def _check(namespace, dtype="float64", ops_wanted=None):
    session = InProcessSession(namespace, "port")
    conventions = resolve(session.info.conventions)
    selection = select(CASES, conventions, dtype, ops=ops_wanted, optional=())
    return selection, run_cases(session, selection, dtype, conventions, "port", diagnoser=Diagnoser())


# ---------------------------------------------------------------- a port written with the helpers alone


def _scaled_momentum_port():
    """A port whose library keeps Keras's state ``m = -v`` (``m = beta*m - lr*g; p = p + m``), written with
    ``per_slot`` and declared ``momentum.form=lr_scaled``: the sign is the port's business, and exact."""
    def update(parameters, grads, v, beta, learning_rate):
        def step(name, p, g, velocity):
            m = beta * -velocity - learning_rate * g
            return p + m, -m

        return port.per_slot(step, parameters, grads, v)

    return types.SimpleNamespace(OPTCONFORM_CONVENTIONS=port.declare({"momentum.form": "lr_scaled"}),
                                 initialize_velocity=port.zeros_like, update_parameters_with_momentum=update)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_port_written_with_the_helpers_conforms_under_its_convention(dtype):
    selection, report = _check(_scaled_momentum_port(), dtype, ["momentum"])
    assert len(report.results) >= 40
    assert all(r.status == "pass" for r in report.results), [r.message for r in report.results if r.status != "pass"]
    assert {case.conventions.get("momentum.form") for case in selection.run} == {"lr_scaled", None}


def test_the_same_port_under_the_course_convention_is_named_as_a_scaled_state():
    namespace = _scaled_momentum_port()
    namespace.OPTCONFORM_CONVENTIONS = port.declare({"momentum.form": "ema"})
    _, report = _check(namespace, "float64", ["momentum.update"])
    failing = [r for r in report.results if r.status == "fail"]
    assert failing and all("[velocity-lr-scaled]" in (r.diagnosis or "") for r in failing), failing[0].diagnosis


def test_per_slot_returns_fresh_arrays_in_each_parameters_dtype_in_course_order():
    parameters = {"W1": np.ones((2, 3), np.float32), "b1": np.ones((2, 1), np.float32)}
    grads = {"dW1": np.full((2, 3), 2.0), "db1": np.full((2, 1), 2.0)}
    seen = []

    def step(name, p, g):
        seen.append(name)
        p -= g  # the step may change what it is given: those are copies
        return (p,)

    (new,) = port.per_slot(step, parameters, grads)
    assert seen == ["W1", "b1"]
    assert new["W1"].dtype == np.float32 and np.all(new["W1"] == -1.0)
    assert np.all(parameters["W1"] == 1.0) and np.all(grads["dW1"] == 2.0)
    with pytest.raises(RuntimeError, match="returned 2 arrays, not 1"):
        port.per_slot(lambda name, p, g: (p, g), parameters, grads)


def test_declare_checks_names_and_values_where_the_port_is_imported():
    assert port.declare({"adam.epsilon": "epsilon_hat"})["adam.epsilon"] == "epsilon_hat"
    with pytest.raises(ConventionError, match="unknown convention"):
        port.declare({"adam.epsilom": "inside_sqrt"})
    with pytest.raises(ConventionError, match="must be one of"):
        port.declare({"rmsprop.epsilon": "epsilon_hat"})  # epsilon hat is Adam's alone


def test_cut_batches_follows_the_order_and_keeps_the_rest_last():
    X, Y = np.arange(10.0).reshape(1, 10), -np.arange(1.0, 11.0).reshape(1, 10)
    batches = port.cut_batches(X, Y, np.arange(10)[::-1], 4)
    assert [b[0].shape[1] for b in batches] == [4, 4, 2]
    assert batches[0][0].tolist() == [[9.0, 8.0, 7.0, 6.0]] and batches[2][1].tolist() == [[-2.0, -1.0]]


def test_subnormals_tells_a_flushing_platform_from_ieee_arithmetic():
    assert port.subnormals(lambda a, b: a * b) == "kept"
    flushed = lambda a, b: np.where(np.abs(a) < np.finfo(np.float64).tiny, 0.0, a) * b  # noqa: E731
    assert port.subnormals(flushed) == "flushed"


# ---------------------------------------------------------------- the conventions


def test_rmsprop_epsilon_follows_adam_epsilon_unless_declared():
    assert resolve({"adam.epsilon": "inside_sqrt"})["rmsprop.epsilon"] == "inside_sqrt"
    assert resolve({"adam.epsilon": "epsilon_hat"})["rmsprop.epsilon"] == "outside_sqrt"
    assert resolve({"adam.epsilon": "inside_sqrt", "rmsprop.epsilon": "outside_sqrt"})["rmsprop.epsilon"] == \
        "outside_sqrt"
    assert resolve({}, {"adam.epsilon": "inside_sqrt"})["rmsprop.epsilon"] == "inside_sqrt"


def test_a_call_carries_only_the_conventions_of_its_op():
    conventions = resolve({"adam.epsilon": "inside_sqrt", "platform.subnormals": "flushed"})
    assert for_call("rmsprop.update", conventions) == {"rmsprop.epsilon": "inside_sqrt"}
    assert for_call("adam.trajectory", conventions) == {"adam.epsilon": "inside_sqrt"}
    assert for_call("gd.update", conventions) == {}
    assert set(for_call("mini_batches", conventions)) == {"mini_batches.rng", "mini_batches.y_rows"}


def test_a_flushing_platform_skips_exactly_the_subnormal_cases_and_says_why():
    kept = select(CASES, resolve({}), "float64")
    flushed = select(CASES, resolve({"platform.subnormals": "flushed"}), "float64")
    dropped = {c.id for c in kept.run} - {c.id for c in flushed.run}
    assert dropped and all("/subnormal" in case_id for case_id in dropped)
    assert {entry.split(": ", 1)[0] for entry in flushed.skipped} == dropped
    assert all(entry.endswith(FLUSHED_PLATFORM) for entry in flushed.skipped)


#: For each family: the course function computing it, the reference op, that op's keyword, and the init.
FAMILY_FUNCTIONS = {
    "adam.epsilon": ("update_parameters_with_adam", ops.adam_update, "epsilon_placement", "initialize_adam"),
    "momentum.form": ("update_parameters_with_momentum", ops.momentum_update, "form", "initialize_velocity"),
    "rmsprop.epsilon": ("update_parameters_with_rmsprop", ops.rmsprop_update, "epsilon_placement",
                        "initialize_rmsprop"),
}


@pytest.mark.parametrize("op, family", [("adam.update", "adam.epsilon"), ("momentum.update", "momentum.form"),
                                        ("rmsprop.update", "rmsprop.epsilon"), ("adam.trajectory", "adam.epsilon"),
                                        ("momentum.trajectory", "momentum.form")])
def test_each_convention_value_is_told_apart_from_every_other_by_its_cases(op, family):
    """The reference computing one value of the family fails some case of every other value."""
    import optconform.reference as course

    name, fn, keyword, init = FAMILY_FUNCTIONS[family]
    by_value = {}
    for case in (c for c in CASES if c.op == op):
        by_value.setdefault(case.conventions[family], []).append(case)
    assert set(by_value) == set(resolve.__globals__["CONVENTIONS"][family]["values"])
    for value, cases in by_value.items():
        for other in set(by_value) - {value}:
            computing = types.SimpleNamespace(**{name: lambda *a, _o=other, **k: fn(*a, **{**k, keyword: _o}),
                                                 init: getattr(course, init)})
            conventions = resolve({family: value})
            report = run_cases(InProcessSession(computing, other), select(cases, conventions, "float64"), "float64",
                               conventions, other)
            assert any(r.status == "fail" for r in report.results), (value, other)


# ---------------------------------------------------------------- the matrix


def test_the_matrix_row_of_the_reference_passes_every_op_it_has():
    row = matrix.run_port(matrix.Port("optconform.reference", ("numpy",)), "float64", matrix.docs_folder().parent)
    assert row["status"] == "ran" and row["versions"]["numpy"] == np.__version__
    assert all(entry["verdict"] == "pass" for entry in row["ops"].values())
    assert row["deviations"] == []


def test_the_matrix_groups_a_deviation_by_its_named_mistake_with_evidence_and_source(monkeypatch):
    buggy = types.ModuleType("buggy_port")
    buggy.OPTCONFORM_CONVENTIONS = port.declare({})
    buggy.update_lr = lambda learning_rate0, epoch_num, decay_rate: learning_rate0 * decay_rate**epoch_num
    buggy.OPTCONFORM_DEVIATIONS = {"exponential-decay": "buggy.py line 3"}
    monkeypatch.setitem(__import__("sys").modules, "buggy_port", buggy)
    row = matrix.run_port(matrix.Port("buggy_port", ()), "float64", matrix.docs_folder().parent)
    assert row["ops"]["lr_decay.inverse_time"]["verdict"] == "fail"
    assert row["ops"]["adam.update"]["verdict"] == "not implemented"
    (found,) = row["deviations"]
    assert found["mistake"] == "exponential-decay" and found["source"] == "buggy.py line 3"
    assert "expected" in found["evidence"] and "got" in found["evidence"]
    text = matrix.render_markdown({"ops": list(row["ops"]), "rows": [row]})
    assert "buggy_port** at float64, `lr_decay.inverse_time`: exponential-decay" in text
    assert "Source: buggy.py line 3." in text


def test_matrix_check_fails_when_a_verdict_changes_and_not_on_versions(tmp_path, monkeypatch):
    row = matrix.run_port(matrix.Port("optconform.reference", ("numpy",)), "float64", matrix.docs_folder().parent)
    document = {"optconform": "x", "ops": list(row["ops"]), "rows": [row]}
    monkeypatch.setattr(matrix, "build_matrix", lambda root: json.loads(json.dumps(document)))
    docs = tmp_path / "docs"
    monkeypatch.setattr(matrix, "docs_folder", lambda: docs)
    assert matrix.run_matrix(None, check=False) == 0
    assert json.loads((docs / "matrix.json").read_text())["rows"][0]["target"] == "optconform.reference"
    assert matrix.run_matrix(None, check=True) == 0
    changed = json.loads(json.dumps(document))
    changed["rows"][0]["versions"]["numpy"] = "0.0"
    (docs / "matrix.json").write_text(json.dumps(changed))
    assert matrix.run_matrix(None, check=True) == 0  # a version alone is not a regression
    changed["rows"][0]["ops"]["adam.update"]["verdict"] = "fail"
    (docs / "matrix.json").write_text(json.dumps(changed))
    assert matrix.run_matrix(None, check=True) == 1
