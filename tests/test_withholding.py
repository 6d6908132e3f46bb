"""Hidden means hidden: no value of a hidden case reaches any output, whatever the submission does.

In process and through an unconfined child (no sandbox needed: what is withheld is decided by the grader,
whichever engine ran the submission). Each submission tries to smuggle the case's inputs into what the grader
says: an exception class named like the grader's own words, a builtin exception carrying the values, an extra
result key named after a value, an exit code made of a value, its printed output. Every element of every array
of every hidden case is then looked for in every report format.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from optconform.harness.checking.results import CaseResult
from optconform.harness.checking.runner import run_cases, withheld
from optconform.harness.checking.selection import CaseIdList, select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting import FORMATS, render
from optconform.harness.target.contract import CallFailed, ended, raised, unreadable
from optconform.harness.target.session import InProcessSession, ProcessSession, child_argv
from optconform.reference import ops
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite

OPS = ["adam.update", "momentum.update"]


@pytest.fixture(scope="module")
def hidden_cases():
    return [c for c in load_suite(visibility="hidden") if c.op in OPS][:12]


def _values(cases) -> set[str]:
    """Every element of the cases' input arrays, as a report could print it (only forms long enough to be telling;
    the scalars, a case's hyperparameters, are the catalogue's and named in its public description)."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, np.ndarray):
            for x in value.ravel().tolist():
                if abs(x) > 1e-3:
                    found.update({repr(x), f"{x:.6g}", f"{x:.5g}", repr(float(np.float32(x)))})

    for case in cases:
        walk(case.inputs)
    return {text for text in found if len(text.lstrip("-")) >= 6}


def _run(session, cases):
    conventions = resolve({})
    selection = select(cases, conventions, "float64", None, CaseIdList([]), CaseIdList([]), session.info.ops)
    try:
        return run_cases(session, selection, "float64", conventions, "student.py", diagnoser=Diagnoser())
    finally:
        session.close()


def _every_output(report) -> str:
    return "\n".join(render(report, fmt, verbose=True) if fmt == "text" else render(report, fmt) for fmt in FORMATS)


def _smuggler(kind: str):
    """A namespace whose Adam and momentum updates each try to carry the inputs out, as ``kind`` says."""
    def leak(parameters):
        return " ".join(repr(float(x)) for x in parameters["W1"].ravel())

    def act(parameters, result):
        if kind == "class named like the grader":
            raise type("not run", (Exception,), {})(leak(parameters))
        if kind == "builtin exception":
            raise ValueError(leak(parameters))
        if kind == "extra key":
            return ({**result[0], leak(parameters)[:40]: parameters["W1"]}, *result[1:])
        raise AssertionError(kind)

    def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                    epsilon=1e-8):
        return act(parameters, ops.adam_update(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon))

    def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
        return act(parameters, ops.momentum_update(parameters, grads, v, beta, learning_rate))

    return {"update_parameters_with_adam": update_parameters_with_adam,
            "update_parameters_with_momentum": update_parameters_with_momentum}


@pytest.mark.parametrize("kind", ["class named like the grader", "builtin exception", "extra key"])
def test_no_value_of_a_hidden_case_reaches_any_format_in_process(hidden_cases, kind):
    report = _run(InProcessSession(_smuggler(kind), "student"), hidden_cases)
    assert report.results and all(r.status in ("fail", "error") for r in report.results)
    text = _every_output(report)
    leaked = [value for value in _values(hidden_cases) if value in text]
    assert not leaked, leaked[:5]
    if kind == "builtin exception":
        assert "ValueError was raised (hidden case" in text  # a builtin type is the grader's to name
    if kind == "class named like the grader":
        assert "an exception was raised (hidden case" in text and "not run:" not in text
    if kind == "extra key":
        assert "holds a key the reference does not" in text


SMUGGLING_PROGRAM = """
import os, sys
import numpy as np

def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    values = " ".join(repr(float(x)) for x in parameters["W1"].ravel())
    print(values)
    sys.stdout.flush()
    print(values, file=sys.stderr)
    os._exit(int(abs(parameters["W1"].ravel()[0]) * 1000) % 250 + 3)
"""


def test_an_exit_code_and_printed_output_of_a_hidden_case_are_withheld(hidden_cases, tmp_path):
    path = tmp_path / "student.py"
    path.write_text(textwrap.dedent(SMUGGLING_PROGRAM), encoding="utf-8")
    cases = [c for c in hidden_cases if c.op == "adam.update" and c.conventions["adam.epsilon"] == "outside_sqrt"][:3]
    report = _run(ProcessSession(child_argv(str(path)), "student.py", timeout=30, sandbox=False), cases)
    assert len(report.results) >= 2 and all(r.status == "error" for r in report.results)
    text = _every_output(report)
    assert "exited with code" not in text and "after writing" not in text and "stderr" not in text
    assert "the program ended during the call (hidden case: how is withheld)" in text
    assert not [value for value in _values(cases) if value in text]


@pytest.mark.parametrize("failure, kept, gone", [
    (raised("not run: 0.123456789 (at x.py:3, in f)"), "an exception was raised", "0.123456789"),
    (raised("KeyError: 'dW1' 0.987654321"), "KeyError was raised", "0.987654321"),
    (ended("the program exited with code 77 during the call, after writing '0.5'"), "ended during the call", "77"),
    (unreadable("protocol error: key '0.31415926' is not an array"), "protocol error", "0.31415926"),
    (CallFailed("no answer within 2 s (timed out; the program was restarted)"), "no answer within 2 s", None),
])
def test_a_hidden_error_keeps_only_the_graders_words(failure, kept, gone):
    result = CaseResult("adam.update/x/y", "adam.update", "error", str(failure), details=["detail"])
    outcome = type("Outcome", (), {"withheld": failure.withheld, "comparison": None})()
    shown = withheld(result, outcome)
    assert kept in shown.message and shown.details == [] and shown.hidden
    if gone is not None:
        assert gone not in json.dumps(shown.to_json())


def test_a_hidden_failure_keeps_no_error_size_no_series_and_only_the_references_key():
    from optconform.harness.checking.compare import Comparison, Mismatch

    result = CaseResult("adam.trajectory/x/y", "adam.trajectory", "fail", "parameters.W1[0,1]: expected 0.25, got 0.5",
                        max_abs_err=0.25, max_rel_err=1.0, details=["steps[3]: 0.5"],
                        series={"where": "parameters.W1[0,1]", "expected": [0.25], "got": [0.5], "first_wrong": 1})
    comparison = Comparison([Mismatch("parameters.W1", "value", (0, 1), 0.25, 0.5, 3.0),
                             Mismatch("0.123456", "unexpected key")])
    shown = withheld(result, type("Outcome", (), {"withheld": "", "comparison": comparison})())
    assert (shown.max_abs_err, shown.max_rel_err, shown.series, shown.details) == (None, None, None, [])
    assert shown.message == "the result differs from the reference in parameters.W1 (hidden case: values withheld)"
    alone = Comparison([Mismatch("0.123456", "unexpected key")])
    shown = withheld(CaseResult("a/b/c", "adam.update", "fail", "0.123456"),
                     type("Outcome", (), {"withheld": "", "comparison": alone})())
    assert shown.message == "the result differs from the reference (the result holds a key the reference does not) " \
                            "(hidden case: values withheld)"
    passed = withheld(CaseResult("a/b/c", "adam.update", "pass", "", max_abs_err=1e-17), None)
    assert passed.status == "pass" and passed.message == "" and passed.max_abs_err is None and passed.hidden
