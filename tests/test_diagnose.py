"""Diagnosis: every known mistake is named when made, and a correct output is never diagnosed.

The buggy outputs here are made by calling each mistake's ``fn`` directly on a
case's inputs (and, for trajectories, by a loop of this file's own), by
independent re-implementations (another evaluation order, another RNG), and, at
the end, by buggy course-style submissions checked through ``optconform check``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from optconform.harness.checking.compare import compare_case_outputs
from optconform.harness.checking.results import CaseResult, mistake_names
from optconform.harness.diagnosis.cases import diagnose, diagnose_case
from optconform.harness.diagnosis.errors import diagnose_error
from optconform.harness.diagnosis.summary import summarize
from optconform.reference import ops
from optconform.reference.conventions import resolve
from optconform.reference.mistakes import MISTAKES, combined, get, step_op
from optconform.vectors import load_suite

KEY = lambda mistake: f"{mistake.op}:{mistake.name}"  # noqa: E731


@pytest.fixture(scope="module")
def suite():
    return load_suite()


@pytest.fixture(scope="module")
def by_id(suite):
    return {case.id: case for case in suite}


# ---------------------------------------------------------------- outputs, made here


def call(op, fn, inputs, conventions):
    """``fn`` (a reference op or a mistake's) on a case's inputs, in the vectors' output shape.

    Arguments the case leaves out are left out of the call: ``fn``'s own defaults apply.
    """
    names = {"mini_batches": ("X", "Y", "mini_batch_size", "seed"), "momentum.init": ("parameters",),
             "adam.init": ("parameters",), "momentum.update": ("parameters", "grads", "v", "beta", "learning_rate"),
             "adam.update": ("parameters", "grads", "v", "s", "t", "learning_rate", "beta1", "beta2", "epsilon"),
             "gd.update": ("parameters", "grads", "learning_rate"), "rmsprop.init": ("parameters",),
             "rmsprop.update": ("parameters", "grads", "s", "beta2", "learning_rate", "epsilon"),
             "lr_decay.inverse_time": ("learning_rate0", "epoch_num", "decay_rate"),
             "lr_decay.scheduled": ("learning_rate0", "epoch_num", "decay_rate", "time_interval")}
    given = {name: inputs[name] for name in names[op] if name in inputs}
    if op == "mini_batches":
        return {"batches": [[x, y] for x, y in fn(**given)]}
    if op == "momentum.init":
        return {"v": fn(**given)}
    if op == "adam.init":
        return dict(zip(("v", "s"), fn(**given)))
    if op == "momentum.update":
        return dict(zip(("parameters", "v"), fn(**given, form=conventions["momentum.form"])))
    if op == "adam.update":
        return dict(zip(("parameters", "v", "s"), fn(**given, epsilon_placement=conventions["adam.epsilon"])))
    if op == "gd.update":
        return {"parameters": fn(**given)}
    if op == "rmsprop.init":
        return {"s": fn(**given)}
    if op == "rmsprop.update":
        return dict(zip(("parameters", "s"), fn(**given, epsilon_placement=conventions["rmsprop.epsilon"])))
    if op.startswith("lr_decay."):
        return {"learning_rate": np.asarray(fn(**given), dtype=np.float64)}
    raise AssertionError(op)


def free_run(case, fn, conventions):
    """A trajectory as the harness runs it free: zeros in, each step's own outputs carried, t = 1 ... N."""
    adam = case.op == "adam.trajectory"
    parameters = case.inputs["parameters"]
    state = {"v": ops.momentum_init(parameters)} | ({"s": ops.momentum_init(parameters)} if adam else {})
    hyper = ("learning_rate", "beta1", "beta2", "epsilon") if adam else ("beta", "learning_rate")
    steps = []
    with np.errstate(all="ignore"):
        for index, grads in enumerate(case.inputs["grads"]):
            inputs = {"parameters": parameters, "grads": grads, **state, **{k: case.inputs[k] for k in hyper}}
            inputs["t"] = index + 1
            out = call("adam.update" if adam else "momentum.update", fn, inputs, conventions)
            steps.append(out)
            parameters = out["parameters"]
            state = {k: out[k] for k in state}
    return {"steps": steps}


REFERENCE = {"mini_batches": ops.mini_batches, "momentum.init": ops.momentum_init, "adam.init": ops.adam_init,
             "momentum.update": ops.momentum_update, "adam.update": ops.adam_update, "gd.update": ops.gd_update,
             "rmsprop.init": ops.rmsprop_init, "rmsprop.update": ops.rmsprop_update,
             "lr_decay.inverse_time": ops.lr_inverse_time, "lr_decay.scheduled": ops.lr_scheduled}


def output(case, fn=None):
    conventions = resolve(case.conventions)
    if case.op.endswith("trajectory"):
        return free_run(case, fn or REFERENCE[case.op.replace("trajectory", "update")], conventions)
    with np.errstate(all="ignore"):
        return call(case.op, fn or REFERENCE[case.op], case.inputs, conventions)


def legacy(case) -> bool:
    return resolve(case.conventions).get("mini_batches.rng") == "numpy_legacy"


def differs_from_reference(case, got) -> bool:
    expected = output(case) if case.op == "mini_batches" else None
    return not compare_case_outputs(case, got, "float64", expected=expected).ok


# ---------------------------------------------------------------- every mistake is named


def _named_alone_once_settled(mistake, suite) -> bool:
    """Whether a run of the mistake, as a target, names it alone once settled: a mistake that agrees with another
    wherever it is wrong (``round`` and ``ceil`` for ``floor``) is told by the checks it passes."""
    from optconform.harness.checking.runner import run_cases
    from optconform.harness.checking.selection import Selection
    from optconform.harness.diagnosis import Diagnoser
    from optconform.harness.selftest import OP_FUNCTIONS, course_namespace, reference_functions
    from optconform.harness.target.session import InProcessSession

    conventions = resolve(dict(mistake.when))
    functions = {**reference_functions(), OP_FUNCTIONS[mistake.op][0]: mistake.fn}
    selection = Selection()
    selection.run = [c for c in suite if c.op == mistake.op and mistake.applies(c.conventions, "float64")
                     and (c.op != "mini_batches" or legacy(c))]
    report = run_cases(InProcessSession(course_namespace(functions, conventions), mistake.name), selection,
                       "float64", conventions, mistake.name, diagnoser=Diagnoser())
    said = {tuple(mistake_names(r.diagnosis)) for r in report.results if r.status == "fail"}
    return said == {(mistake.name,)}


@pytest.mark.parametrize("mistake", MISTAKES, ids=KEY)
def test_each_mistake_is_named(mistake, suite):
    """On the cases where the mistake changes the output, the diagnosis names it, and alone on some case."""
    named, alone, trajectory_checked = 0, False, False
    for case in suite:
        if step_op(case.op) != mistake.op:
            continue
        if not mistake.applies(case.conventions, "float64"):
            continue
        if case.op == "mini_batches" and not legacy(case):
            continue  # structural cases: see test_structural_mini_batch_mistakes_are_named
        if mistake.float64_declared and not case.runs_at("float32"):
            continue  # float32 arithmetic cannot be told from another bug where float32 cannot carry the case
        is_trajectory = case.op.endswith("trajectory")
        if is_trajectory and trajectory_checked:
            continue
        if not is_trajectory and named >= 4 and alone:
            continue
        got = output(case, mistake.fn)
        if not differs_from_reference(case, got):
            continue
        diagnosis = diagnose(case, got, "float64")
        assert diagnosis is not None and mistake.name in mistake_names(diagnosis), (case.id, diagnosis)
        assert diagnosis.startswith("matches "), (case.id, diagnosis)
        named += 1
        alone = alone or mistake_names(diagnosis) == [mistake.name]
        trajectory_checked = trajectory_checked or is_trajectory
    assert named, f"{KEY(mistake)}: no shipped case where it changes the output"
    alone = alone or _named_alone_once_settled(mistake, suite)
    assert alone, f"{KEY(mistake)}: always named together with another mistake"
    # trajectories hold no subnormal numbers, so flushing them to zero changes nothing there
    # (nor do default arguments: a trajectory passes every hyperparameter)
    if mistake.op in ("momentum.update", "adam.update") and mistake.name != "subnormals-flushed" and (
            "default" not in mistake.name):
        assert trajectory_checked, f"{KEY(mistake)}: never diagnosed on a trajectory"


def _other_rng_batches(X, Y, size, seed, bug):
    """Mini-batches from another generator (not NumPy's legacy one), with one bug."""
    m = X.shape[1]
    generator = np.random.default_rng(seed + 777)
    perm = generator.permutation(m)
    Xs, Ys = X[:, perm], Y[:, perm]
    if bug == "xy-different-permutations":
        Ys = Y[:, generator.permutation(m)]
    elif bug == "unshuffled-x":
        Xs = X
    elif bug == "no-shuffle":
        Xs, Ys = X, Y
    batches = [[Xs[:, k:k + size], Ys[:, k:k + size]] for k in range(0, m, size)]
    rest = m % size
    if bug == "last-batch-dropped" and rest:
        batches.pop()
    if bug == "last-batch-misaligned" and rest:
        batches[-1] = [Xs[:, :rest], Ys[:, :rest]]
    if bug == "every-batch-from-start":
        batches = [[Xs[:, :min(size, m - k)], Ys[:, :min(size, m - k)]] for k in range(0, m, size)]
    if bug == "with-replacement":
        drawn = generator.integers(0, m, size=m)
        drawn[:2] = drawn[0]  # at least one column twice
        batches = [[X[:, drawn][:, k:k + size], Y[:, drawn][:, k:k + size]] for k in range(0, m, size)]
    return {"batches": batches}


STRUCTURAL = ["last-batch-dropped", "last-batch-misaligned", "xy-different-permutations", "unshuffled-x", "no-shuffle",
              "every-batch-from-start", "with-replacement"]


@pytest.mark.parametrize("bug", STRUCTURAL)
def test_structural_mini_batch_mistakes_are_named(bug, suite):
    """Under mini_batches.rng=structural the target's RNG is its own: the mistake is named from the structure."""
    named = 0
    for case in suite:
        if case.op != "mini_batches" or legacy(case):
            continue
        i = case.full_inputs
        m, size = i["X"].shape[1], i["mini_batch_size"]
        if bug.startswith("last-batch") and (m % size == 0 or (bug == "last-batch-misaligned" and m < size)):
            continue
        if bug == "every-batch-from-start" and m < 2 * size:
            continue  # with one full batch it is the misaligned last batch (both are named)
        if bug == "with-replacement" and m < 2:
            continue
        if bug != "last-batch-dropped" and bug != "last-batch-misaligned" and m < 8:
            continue
        got = _other_rng_batches(i["X"], i["Y"], size, i["seed"], bug)
        diagnosis = diagnose(case, got, "float64")
        assert diagnosis and mistake_names(diagnosis)[0] == bug, (case.id, diagnosis)
        named += 1
    assert named >= 5


def test_a_last_batch_at_a_fixed_offset_or_empty_is_named_misaligned(suite):
    """``shuffled_X[:, 2 * size : m * size]``, right only for the notebook's m = 148: named from the boundaries."""
    named = 0
    for case in suite:
        if case.op != "mini_batches" or legacy(case):
            continue
        i = case.full_inputs
        X, Y, size = i["X"], i["Y"], i["mini_batch_size"]
        m = X.shape[1]
        if m % size == 0 or m // size == 2:
            continue
        perm = np.random.default_rng(3).permutation(m)
        full = m // size
        batches = [[X[:, perm[k * size:(k + 1) * size]], Y[:, perm[k * size:(k + 1) * size]]] for k in range(full)]
        batches.append([X[:, perm[2 * size:m * size]], Y[:, perm[2 * size:m * size]]])
        diagnosis = diagnose(case, {"batches": batches}, "float64")
        assert mistake_names(diagnosis) == ["last-batch-misaligned"], (case.id, diagnosis)
        named += 1
    assert named >= 5


def test_seed_ignored_is_named_on_structural_cases(suite):
    seed_zero = get("mini_batches", "seed-ignored")
    named = 0
    for case in suite:
        if case.op != "mini_batches" or legacy(case) or case.full_inputs["seed"] == 0 or case.inputs["X"].shape[1] < 8:
            continue
        diagnosis = diagnose(case, output(case, seed_zero.fn), "float64")
        assert diagnosis and mistake_names(diagnosis) == ["seed-ignored"], (case.id, diagnosis)
        named += 1
    assert named >= 5


def test_a_valid_shuffle_in_another_order_is_named_under_numpy_legacy(by_id):
    case = by_id["mini_batches/numpy_legacy/pairing"]
    i = case.full_inputs
    diagnosis = diagnose(case, _other_rng_batches(i["X"], i["Y"], i["mini_batch_size"], i["seed"], None), "float64")
    assert mistake_names(diagnosis) == ["other-generator"], diagnosis
    assert "mini_batches.rng=structural" in diagnosis


# ---------------------------------------------------------------- a correct output is never diagnosed


def test_the_reference_is_never_diagnosed(suite):
    checked = 0
    for case in suite:
        got = output(case)
        for dtype in ("float64", "float32"):
            if case.runs_at(dtype):
                assert diagnose(case, got, dtype) is None, (case.id, dtype)
                assert diagnose_case(case, got, dtype) is None, (case.id, dtype)
                checked += 1
    assert checked > len(suite)


def test_teacher_forced_reference_steps_are_never_diagnosed(suite):
    for case in suite:
        if case.op.endswith("trajectory"):
            assert diagnose(case, {"steps": case.expected["steps"]}, "float64") is None, case.id


def test_a_correct_shuffle_from_another_generator_is_never_diagnosed_under_structural(suite):
    for case in suite:
        if case.op == "mini_batches" and not legacy(case):
            i = case.full_inputs
            got = _other_rng_batches(i["X"], i["Y"], i["mini_batch_size"], i["seed"], None)
            assert diagnose(case, got, "float64") is None, case.id


def test_a_correct_float32_implementation_is_not_diagnosed_at_float32(suite):
    float32 = get("adam.update", "float32").fn
    for case in suite:
        if case.op == "adam.update" and case.runs_at("float32"):
            got = output(case, float32)
            if compare_case_outputs(case, got, "float32").ok:
                assert diagnose(case, got, "float32") is None, case.id


# ---------------------------------------------------------------- independent implementations


def _adam_inputs(case):
    i = case.full_inputs
    return i["parameters"], i["grads"], i["v"], i["s"], i["t"], i["learning_rate"], i["beta1"], i["beta2"], i["epsilon"]


def test_a_mistake_evaluated_in_another_order_still_matches(by_id):
    """No square root, written as a student might: the rounding differs from the variant's, the name does not."""
    case = by_id["adam.update/outside_sqrt/nondefault"]
    parameters, grads, v, s, t, lr, b1, b2, eps = _adam_inputs(case)
    out = {"parameters": {}, "v": {}, "s": {}}
    for key in parameters:
        g = grads["d" + key]
        v1 = v["d" + key] + (1 - b1) * (g - v["d" + key])
        s1 = s["d" + key] * b2 + g * g * (1 - b2)
        out["v"]["d" + key], out["s"]["d" + key] = v1, s1
        out["parameters"][key] = parameters[key] - lr * (v1 / (1 - b1 ** t)) * (1.0 / (s1 / (1 - b2 ** t) + eps))
    assert mistake_names(diagnose(case, out, "float64")) == ["no-sqrt"]


def test_float32_arithmetic_is_named_when_float64_is_declared(by_id):
    """PyTorch's order of operations, in float32: only float32 precision agrees."""
    case = by_id["adam.update/outside_sqrt/sweep-03"]
    parameters, grads, v, s, t, lr, b1, b2, eps = _adam_inputs(case)
    f = np.float32
    out = {"parameters": {}, "v": {}, "s": {}}
    for key in parameters:
        g, v0, s0 = grads["d" + key].astype(f), v["d" + key].astype(f), s["d" + key].astype(f)
        v1 = v0 + (g - v0) * f(1 - b1)
        s1 = s0 * f(b2) + g * g * f(1 - b2)
        step = f(lr / (1 - b1 ** t))
        den = np.sqrt(s1) / f(math.sqrt(1 - b2 ** t)) + f(eps)
        out["parameters"][key] = parameters[key].astype(f) - step * v1 / den
        out["v"]["d" + key], out["s"]["d" + key] = v1, s1
    assert compare_case_outputs(case, out, "float32").ok
    assert mistake_names(diagnose(case, out, "float64")) == ["float32"]
    assert diagnose(case, out, "float32") is None


@pytest.mark.parametrize("variant", ["epsilon added to the step", "epsilon added to s before the correction",
                                     "Keras epsilon-hat with epsilon 1e-7"])
def test_small_float64_errors_are_not_called_float32(variant, by_id):
    """A small error whose values are not float32 numbers is not float32 arithmetic, whatever its size."""
    case = by_id["adam.update/outside_sqrt/course-defaults-t-7"]
    parameters, grads, v, s, t, lr, b1, b2, eps = _adam_inputs(case)
    out = {"parameters": {}, "v": {}, "s": {}}
    for key in parameters:
        g, v0, s0 = grads["d" + key], v["d" + key], s["d" + key]
        v1, s1 = b1 * v0 + (1 - b1) * g, b2 * s0 + (1 - b2) * g * g
        c1, c2 = 1 - b1**t, 1 - b2**t
        if variant == "epsilon added to the step":
            step = lr * (v1 / c1) / np.sqrt(s1 / c2) + eps
        elif variant == "epsilon added to s before the correction":
            step = lr * (v1 / c1) / (np.sqrt((s1 + eps) / c2) + eps)
        else:
            step = lr * math.sqrt(c2) / c1 * v1 / (np.sqrt(s1) + 1e-7)
        out["parameters"][key] = parameters[key] - step
        out["v"]["d" + key], out["s"]["d" + key] = v1, s1
    assert not compare_case_outputs(case, out, "float64").ok
    diagnosis = diagnose(case, out, "float64")
    assert "float32" not in mistake_names(diagnosis), diagnosis


def test_an_error_from_the_loop_variable_after_the_loop_is_named(by_id):
    case = by_id["mini_batches/structural/m-smaller-than-size"]
    message = ("UnboundLocalError: cannot access local variable 'k' where it is not associated with a value "
               "(at sub.py:20, in random_mini_batches)")
    assert mistake_names(diagnose_error(case, message)) == ["last-batch-from-loop-variable"]
    assert diagnose_error(by_id["mini_batches/structural/remainder"], message) is None  # m >= size: not this
    assert diagnose_error(case, "ValueError: cannot reshape array of size 120 into shape (1,40)") is None


# ---------------------------------------------------------------- per key and per layer


def test_one_layer_skipped_is_named_by_its_keys(by_id):
    case = by_id["adam.update/outside_sqrt/four-layers"]
    parameters, grads, v, s, t, lr, b1, b2, eps = _adam_inputs(case)
    p1, v1, s1 = ops.adam_update(parameters, grads, v, s, t, lr, b1, b2, eps)
    for key in ("W2", "b2"):
        p1[key], v1["d" + key], s1["d" + key] = parameters[key], v["d" + key], s["d" + key]
    found = diagnose_case(case, {"parameters": p1, "v": v1, "s": s1}, "float64")
    assert found.kind == "partial"
    assert found.text.startswith("W2 and b2 only: looks like layer 2 was skipped"), found.text


def test_some_keys_matching_a_mistake_are_named(by_id):
    case = by_id["adam.update/outside_sqrt/four-layers"]
    inputs = _adam_inputs(case)
    right = ops.adam_update(*inputs)
    wrong = get("adam.update", "abs-for-square").fn(*inputs)
    p, v, s = right
    p["W1"], s["dW1"] = wrong[0]["W1"], wrong[2]["dW1"]
    diagnosis = diagnose(case, {"parameters": p, "v": v, "s": s}, "float64")
    assert diagnosis.startswith("parameters.W1 and s.dW1 only match"), diagnosis
    assert mistake_names(diagnosis) == ["abs-for-square"], diagnosis


def test_two_mistakes_at_once_are_named_as_a_pair(by_id):
    case = by_id["adam.update/outside_sqrt/nondefault"]
    parameters, grads, v, s, t, lr, b1, b2, eps = _adam_inputs(case)
    # epsilon inside the root and s left uncorrected, as real code writes it
    both = combined(get("adam.update", "epsilon-inside-sqrt"), get("adam.update", "only-first-correction"))
    got = dict(zip(("parameters", "v", "s"), both.fn(parameters, grads, v, s, t, lr, b1, b2, eps)))
    found = diagnose_case(case, got, "float64")
    assert found.kind == "match" and sorted(found.mistakes[0].name.split("+")) == [
        "epsilon-inside-sqrt", "only-first-correction"], found.text
    assert " and " in found.text.split(" [")[0], found.text
    # no correction at all with epsilon hard-coded to the course's value
    buggy = get("adam.update", "no-bias-correction").fn(parameters, grads, v, s, t, lr, b1, b2, 1e-8)
    found = diagnose_case(case, dict(zip(("parameters", "v", "s"), buggy)), "float64")
    assert sorted(found.mistakes[0].name.split("+")) == ["hardcoded-epsilon", "no-bias-correction"], found.text


def test_nothing_known_is_said_once_per_op_without_a_guess(by_id):
    case = by_id["adam.update/outside_sqrt/nondefault"]
    right = output(case)
    off = {k: {n: a + 1e-3 * np.sign(a) for n, a in tree.items()} for k, tree in right.items()}
    assert diagnose(case, off, "float64") is None
    results = [types.SimpleNamespace(op="adam.update", status="fail", diagnosis=None, id=f"adam.update/x/{n}",
                                     message=f"parameters.W1[0,0]: expected 1.0, got 1.{n} (|error| ...)")
               for n in range(3)]
    lines = summarize(results)
    assert len(lines) == 1 and "3 not matched to any known mistake" in lines[0]
    assert "first: adam.update/x/0: parameters.W1[0,0]: expected 1.0, got 1.0" in lines[0]
    assert "nearest" not in lines[0] and "consistent with" not in lines[0]


def test_unrelated_garbage_gets_no_diagnosis(by_id):
    case = by_id["adam.update/outside_sqrt/nondefault"]
    right = output(case)
    assert diagnose(case, {k: {n: a * 1.7 for n, a in tree.items()} for k, tree in right.items()}, "float64") is None
    assert diagnose(case, None, "float64") is None
    assert diagnose(case, {"parameters": 3}, "float64") is None


def test_a_case_the_dtype_does_not_run_at_is_not_diagnosed(suite):
    case = next(c for c in suite if not c.runs_at("float32"))
    assert diagnose(case, {"parameters": {}}, "float32") is None


# ---------------------------------------------------------------- summary


def _result(op, diagnosis, status="fail"):
    return CaseResult(id=f"{op}/x", op=op, status=status, diagnosis=diagnosis)


def test_summary_names_what_all_failures_share(by_id):
    no_bias = get("adam.update", "no-bias-correction")
    results = []
    for case_id in ("adam.update/outside_sqrt/nondefault", "adam.update/outside_sqrt/t-1",
                    "adam.trajectory/outside_sqrt/deep"):
        case = by_id[case_id]
        results.append(_result(case.op, diagnose(case, output(case, no_bias.fn), "float64")))
    results.append(_result("adam.update", None, status="pass"))
    assert summarize(results) == [
        "adam.update: 2 cases fail, all consistent with: no bias correction",
        "adam.trajectory: 1 case fails, all consistent with: no bias correction",
    ]


def test_summary_of_mixed_failures():
    heavy = get("momentum.update", "heavy-ball")
    text = f"matches {heavy.title} [{heavy.name}]: {heavy.explanation} Fix: {heavy.fix}"
    results = [_result("momentum.update", text), _result("momentum.update", text),
               _result("momentum.update", "W2 and b2 only: looks like layer 2 was skipped (as in nothing updated "
                                          "[nothing-updated]); they come back unchanged."),
               _result("momentum.update", None), _result("momentum.update", None, status="error")]
    assert summarize(results) == [
        "momentum.update: 4 cases fail; 2 consistent with: heavy-ball momentum instead of EMA; "
        "1 consistent with: W2 and b2 only: looks like layer 2 was skipped; 1 not matched to any known mistake "
        "(first: momentum.update/x: )"]
    assert summarize([_result("adam.update", None, status="pass")]) == []


# ---------------------------------------------------------------- end to end: optconform check




PRELUDE = """
import math
import numpy as np

def initialize_velocity(parameters):
    return {"d" + k: np.zeros_like(p) for k, p in parameters.items()}

def initialize_adam(parameters):
    return initialize_velocity(parameters), initialize_velocity(parameters)

def _layers(parameters):
    return range(1, len(parameters) // 2 + 1)
"""

CORRECT_MOMENTUM = """
def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    for l in _layers(parameters):
        for p in ("W", "b"):
            k = "d" + p + str(l)
            v[k] = beta * v[k] + (1 - beta) * grads[k]
            parameters[p + str(l)] = parameters[p + str(l)] - learning_rate * v[k]
    return parameters, v
"""

CORRECT_ADAM = """
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    for l in _layers(parameters):
        for p in ("W", "b"):
            k = "d" + p + str(l)
            v[k] = beta1 * v[k] + (1 - beta1) * grads[k]
            s[k] = beta2 * s[k] + (1 - beta2) * np.square(grads[k])
            v_hat = v[k] / (1 - beta1 ** t)
            s_hat = s[k] / (1 - beta2 ** t)
            parameters[p + str(l)] = parameters[p + str(l)] - learning_rate * v_hat / (np.sqrt(s_hat) + epsilon)
    return parameters, v, s
"""

CORRECT_BATCHES = """
def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    np.random.seed(seed)
    m = X.shape[1]
    permutation = list(np.random.permutation(m))
    shuffled_X, shuffled_Y = X[:, permutation], Y[:, permutation]
    batches = []
    complete = math.floor(m / mini_batch_size)
    for k in range(complete):
        batches.append((shuffled_X[:, k * mini_batch_size:(k + 1) * mini_batch_size],
                        shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size]))
    if m % mini_batch_size != 0:
        batches.append((shuffled_X[:, complete * mini_batch_size:], shuffled_Y[:, complete * mini_batch_size:]))
    return batches
"""


def _check(tmp_path, name, source, *options):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(PRELUDE + source), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(path), "--format", "json", *options],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout)


def _failing(report, op_prefix):
    return [c for c in report["cases"] if c["status"] == "fail" and c["op"].startswith(op_prefix)]


def _assert_named(report, op_prefix, name, at_least=1):
    failing = _failing(report, op_prefix)
    assert len(failing) >= at_least, report["summary"]
    named = [c for c in failing if name in mistake_names(c["diagnosis"])]
    assert named, [c["diagnosis"] for c in failing][:5]
    return failing, named


def test_end_to_end_correct_submission_gets_no_diagnosis(tmp_path):
    report = _check(tmp_path, "correct", CORRECT_MOMENTUM + CORRECT_ADAM + CORRECT_BATCHES)
    assert report["summary"]["failed"] == 0, [c["id"] for c in report["cases"] if c["status"] == "fail"]
    assert all(c["diagnosis"] is None for c in report["cases"])
    assert report["diagnosis_summary"] == []


def test_end_to_end_no_bias_correction(tmp_path):
    source = CORRECT_ADAM.replace("/ (1 - beta1 ** t)", "").replace("/ (1 - beta2 ** t)", "")
    report = _check(tmp_path, "no_bias", source, "--ops", "adam")
    failing, named = _assert_named(report, "adam", "no-bias-correction", at_least=10)
    assert len(named) == len(failing)
    assert any(line.startswith("adam.update:") and line.endswith("all consistent with: no bias correction")
               for line in report["diagnosis_summary"]), report["diagnosis_summary"]


def test_end_to_end_seed_notebook_epsilon_inside_the_root(tmp_path):
    source = CORRECT_ADAM.replace("(np.sqrt(s_hat) + epsilon)", "np.sqrt(s_hat + epsilon)").replace(
        "update_parameters_with_adam", "update_parameters_Adam")
    report = _check(tmp_path, "inside", source, "--ops", "adam.update")
    failing, named = _assert_named(report, "adam.update", "epsilon-inside-sqrt", at_least=10)
    assert len(named) == len(failing)
    assert "adam.epsilon=inside_sqrt" in named[0]["diagnosis"]


def test_end_to_end_heavy_ball_momentum(tmp_path):
    source = CORRECT_MOMENTUM.replace("(1 - beta) * grads[k]", "grads[k]")
    report = _check(tmp_path, "heavy", source, "--ops", "momentum")
    failing, named = _assert_named(report, "momentum", "heavy-ball", at_least=10)
    assert len(named) == len(failing)


def test_end_to_end_last_layer_skipped(tmp_path):
    source = CORRECT_MOMENTUM.replace("for l in _layers(parameters):", "for l in range(1, len(parameters) // 2):")
    report = _check(tmp_path, "skip", source, "--ops", "momentum.update")
    _assert_named(report, "momentum.update", "last-layer-skipped", at_least=10)


def test_end_to_end_v_and_s_aliased_is_not_named_on_thin_evidence(tmp_path):
    """Aliasing v and s turns most Adam checks into NaN, which the catalogue's variant does not model: its name
    fits one check of dozens, which a coincidence would too, so the run names no mistake, and no other."""
    source = CORRECT_ADAM.replace("    for l in _layers(parameters):", "    s = v\n    for l in _layers(parameters):", 1)
    report = _check(tmp_path, "aliased", source, "--ops", "adam.update")
    failing = _failing(report, "adam")
    assert len(failing) >= 10 and all(c["diagnosis"] is None for c in failing)


def test_end_to_end_float32_arithmetic(tmp_path):
    source = CORRECT_ADAM.replace("    for l in _layers(parameters):", (
        "    cast = lambda tree: {k: a.astype(np.float32) for k, a in tree.items()}\n"
        "    parameters, grads, v, s = cast(parameters), cast(grads), cast(v), cast(s)\n"
        "    for l in _layers(parameters):"), 1)
    report = _check(tmp_path, "float32", source, "--ops", "adam.update")
    _assert_named(report, "adam.update", "float32", at_least=10)


def test_end_to_end_last_mini_batch_dropped(tmp_path):
    source = CORRECT_BATCHES.replace("    if m % mini_batch_size != 0:", "    if False:")
    report = _check(tmp_path, "dropped", source, "--ops", "mini_batches")
    failing, named = _assert_named(report, "mini_batches", "last-batch-dropped", at_least=10)
    assert len(named) == len(failing)


def test_end_to_end_x_and_y_shuffled_apart(tmp_path):
    source = CORRECT_BATCHES.replace("shuffled_Y = X[:, permutation], Y[:, permutation]",
                                     "shuffled_Y = X[:, permutation], Y[:, list(np.random.permutation(m))]")
    report = _check(tmp_path, "apart", source, "--ops", "mini_batches",
                    "--convention", "mini_batches.rng=numpy_legacy")
    _assert_named(report, "mini_batches", "xy-different-permutations", at_least=10)


# ---------------------------------------------------------------- bounded work


def test_a_run_stops_searching_a_function_the_settling_can_no_longer_name(monkeypatch):
    """Once more than a quarter of a function's cases went unexplained, no mistake can be named for it (the
    settling needs three in four of its failing cases explained): its later cases are not searched."""
    from optconform.harness import diagnosis
    from optconform.harness.diagnosis import cases as diagnosis_cases

    suite = [c for c in load_suite() if c.op == "gd.update"][:8]
    calls = []

    def unexplained(case, got, dtype, pairs_seen, search_pairs, only=None):
        calls.append((case.id, search_pairs))
        return None

    monkeypatch.setattr(diagnosis_cases, "diagnose_case", unexplained)
    diagnoser = diagnosis.Diagnoser()
    diagnoser.plan(suite)
    said = [diagnoser.case(case, {"parameters": {"W1": np.full((2, 2), float(k))}}, "float64", [])
            for k, case in enumerate(suite)]
    assert said == [None] * 8
    assert len(calls) == 3  # 3 > 8 / 4: the fourth on is beyond naming
    assert [search for _, search in calls] == [True, True, True]


def test_the_pair_search_stops_after_a_few_fruitless_tries_and_an_answer_is_diagnosed_once(monkeypatch):
    from optconform.harness import diagnosis
    from optconform.harness.diagnosis import cases as diagnosis_cases
    from optconform.harness.diagnosis.matching import Diagnosis

    suite = [c for c in load_suite() if c.op == "adam.update"]
    calls = []

    def partial(case, got, dtype, pairs_seen, search_pairs, only=None):
        calls.append(search_pairs)
        return Diagnosis("partial", [], "parameters.W1 only match something [x]")

    monkeypatch.setattr(diagnosis_cases, "diagnose_case", partial)
    diagnosis._remembered.clear()
    diagnoser = diagnosis.Diagnoser()
    diagnoser.plan(suite)
    for k, case in enumerate(suite[:6]):
        diagnoser.case(case, {"parameters": {"W1": np.full((2, 2), float(k))}}, "float64", [])
    assert calls == [True] * diagnosis.PAIR_SEARCHES + [False] * (6 - diagnosis.PAIR_SEARCHES)
    again = diagnosis.Diagnoser()
    again.plan(suite)
    again.case(suite[0], {"parameters": {"W1": np.full((2, 2), 0.0)}}, "float64", [])
    assert len(calls) == 6  # the same answer to the same case: remembered
    again.case(suite[0], {"parameters": {"W1": np.full((2, 2), 0.5)}}, "float64", [])
    assert len(calls) == 7  # another answer: diagnosed


def test_a_failing_trajectory_is_diagnosed_after_its_steps_cases_and_not_when_none_was_explained(monkeypatch):
    from optconform.harness import diagnosis
    from optconform.harness.diagnosis import cases as diagnosis_cases
    from optconform.harness.diagnosis.matching import Diagnosis

    suite = load_suite()
    updates = [c for c in suite if c.op == "adam.update"][:4]
    trajectory = next(c for c in suite if c.op == "adam.trajectory")
    calls = []

    def named_or_not(explain):
        def diagnose_case(case, got, dtype, pairs_seen, search_pairs, only=None):
            calls.append(case.op)
            return Diagnosis("match", [], "matches x [no-bias-correction]: y. Fix: z.") if explain else None
        return diagnose_case

    for explain in (True, False):
        calls.clear()
        diagnosis._remembered.clear()
        monkeypatch.setattr(diagnosis_cases, "diagnose_case", named_or_not(explain))
        diagnoser = diagnosis.Diagnoser()
        diagnoser.plan([*updates, trajectory] * 10)
        assert diagnoser.case(trajectory, {"steps": []}, "float64", []) is None  # first in the run: deferred
        said = [diagnoser.case(case, {"parameters": {"W1": np.full((1, 1), float(k))}}, "float64", [])
                for k, case in enumerate(updates)]
        results = [CaseResult(c.id, c.op, "fail", diagnosis=d) for c, d in zip([*updates, trajectory], [*said, None])]
        diagnoser.settle(results, [*updates, trajectory])
        assert calls.count("adam.trajectory") == (1 if explain else 0)
        assert (results[-1].diagnosis is not None) == explain


def test_once_a_function_matched_mistakes_whole_later_cases_try_those_first(monkeypatch):
    from optconform.harness import diagnosis
    from optconform.harness.diagnosis import cases as diagnosis_cases

    suite = [c for c in load_suite() if c.op == "adam.update"][:5]
    wrong = get("adam.update", "no-bias-correction")
    tried = []
    real = diagnosis_cases.diagnose_case

    def watched(case, got, dtype, pairs_seen, search_pairs, only=None):
        tried.append(only)
        return real(case, got, dtype, pairs_seen, search_pairs, only)

    monkeypatch.setattr(diagnosis_cases, "diagnose_case", watched)
    diagnosis._remembered.clear()
    diagnoser = diagnosis.Diagnoser()
    diagnoser.plan(suite)
    said = [diagnoser.case(case, output(case, wrong.fn), "float64", []) for case in suite]
    assert tried[0] is None and all(only for only in tried[1:])  # the first searched everything
    assert all(mistake_names(text)[0] == "no-bias-correction" for text in said)
    # the shortcut names exactly what the full search names: the intersection is the same
    full = [mistake_names(real(case, output(case, wrong.fn), "float64").text) for case in suite]
    common = set.intersection(*(set(names) for names in full))
    assert set(diagnoser.common["update_parameters_with_adam"]) == common
