"""The report formats (text, json, junit, gradescope), on RunReports built by hand."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from optconform.harness.checking.results import CaseResult, RunReport
from optconform.harness.diagnosis.settle import function_of
from optconform.harness.reporting import FORMATS, render
from optconform.harness.reporting.jsonsafe import to_json_safe
from optconform.harness.reporting.text import mistake_said, summary_line

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "gradescope_results.schema.json"

ODD_MESSAGE = "parameters['W1'][0,1]: expected 1.0 < 2.0 & \"quoted\" — ünïcødé ✓ 🙂"
ODD_DIAGNOSIS = "epsilon inside the square root (\"sqrt(s + eps)\" < & >)"


def make_report() -> RunReport:
    results = [
        CaseResult(
            id="mini_batches/structural/divisible",
            op="mini_batches",
            status="pass",
            message="",
            max_abs_err=0.0,
            max_rel_err=0.0,
            description="m = 128 divisible by size 64",
            why="an extra empty batch",
        ),
        CaseResult(
            id="mini_batches/structural/remainder",
            op="mini_batches",
            status="fail",
            message="batch count: expected 3, got 2",
            diagnosis="last batch dropped",
            description="m = 148, size 64: two full batches and one of 20",
            why="the last, partial batch forgotten",
            details=["expected sizes [64, 64, 20]", "got sizes [64, 64]"],
        ),
        CaseResult(
            id="momentum.update/ema/nondefault",
            op="momentum.update",
            status="pass",
            max_abs_err=1e-17,
            max_rel_err=2e-16,
            why="beta hard-coded",
        ),
        CaseResult(
            id="momentum.update/ema/beta-zero",
            op="momentum.update",
            status="fail",
            message="v['dW1'][0,0]: expected 0.5, got 5.0",
            max_abs_err=4.5,
            max_rel_err=9.0,
            diagnosis="heavy-ball momentum (v = beta*v + g)",
            why="the EMA form confused with heavy-ball",
            details=["v['dW1'] max abs err 4.5", "parameters['W1'] max abs err 0.045"],
        ),
        CaseResult(
            id="adam.update/inside_sqrt/odd",
            op="adam.update",
            status="fail",
            message=ODD_MESSAGE,
            max_abs_err=float("nan"),
            max_rel_err=float("inf"),
            diagnosis=ODD_DIAGNOSIS,
            description="odd <characters> & \"quotes\"",
            why="eps on the wrong side of sqrt \u2014 <see> & 'notes'",
            details=["got NaN where a number was expected", "control char here:\x01 end"],
        ),
        CaseResult(
            id="adam.update/outside_sqrt/t-1",
            op="adam.update",
            status="error",
            message="TypeError: update_parameters_with_adam() missing 1 required positional argument: 't'\nTraceback line 2",
            why="t counted from 1",
        ),
        CaseResult(
            id="adam.update/outside_sqrt/t-2",
            op="adam.update",
            status="fail",
            message="s['db1'][1,0]: expected 1e-06, got 1e-05",
            max_abs_err=9e-6,
            max_rel_err=9.0,
            diagnosis="beta1 and beta2 swapped",
            why="the two betas confused",
            xfail=True,
        ),
        CaseResult(
            id="adam.update/outside_sqrt/t-3",
            op="adam.update",
            status="pass",
            max_abs_err=0.0,
            max_rel_err=0.0,
            xfail=True,
        ),
        CaseResult(
            id="adam.init/one-layer-1x1",
            op="adam.init",
            status="not_implemented",
            message="initialize_adam is not defined",
        ),
        CaseResult(
            id="adam.init/one-layer-row",
            op="adam.init",
            status="not_implemented",
            message="initialize_adam is not defined",
        ),
        CaseResult(
            id="adam.init/one-layer-column",
            op="adam.init",
            status="not_implemented",
            message="initialize_adam is not defined",
        ),
    ]
    return RunReport(
        target="my_port.py",
        dtype="float64",
        conventions={"adam.epsilon": "outside_sqrt", "mini_batches.rng": "numpy_legacy"},
        results=results,
        target_name="my port",
        skipped=["momentum.trajectory/ema/course"],
        warnings=["the notebook's top-level training loop was not run"],
        diagnosis_summary=["momentum.update: 1 case fails, consistent with: heavy-ball momentum"],
    )


@pytest.fixture
def report() -> RunReport:
    return make_report()


# --------------------------------------------------------------------------- summary line


def test_summary_line(report):
    line = summary_line(report)
    assert "\n" not in line
    assert line.startswith("optconform: my_port.py at float64: ")
    # xfailed cases are counted apart from failures
    assert "3 passed, 3 failed, 1 error, 3 not implemented, 1 xfail" in line
    assert line.endswith("(score 3/11)")


def test_summary_line_example_shape():
    report = RunReport(
        target="my_port.py",
        dtype="float64",
        conventions={},
        results=[CaseResult(id=f"c{i}", op="adam.update", status="pass") for i in range(2)]
        + [CaseResult(id="x", op="adam.update", status="fail", message="m")],
    )
    assert summary_line(report) == (
        "optconform: my_port.py at float64: 2 passed, 1 failed, 0 errors, 0 not implemented (score 2/3)"
    )


# --------------------------------------------------------------------------- text


def test_text_summary_first(report):
    text = render(report, "text")
    lines = text.splitlines()
    assert lines[0] == summary_line(report)
    head = text.split("Failures and errors")[0]
    for expected in (
        "my_port.py",
        "float64",
        "adam.epsilon=outside_sqrt",
        "mini_batches.rng=numpy_legacy",
        "DOES NOT CONFORM",
        "3 passed, 3 failed, 1 error, 3 not implemented, 1 xfail",
        "momentum.update: 1 case fails, consistent with: heavy-ball momentum",
        "the notebook's top-level training loop was not run",
    ):
        assert expected in head, expected
    # the per-op table comes before any case
    for op in ("mini_batches", "momentum.update", "adam.init", "adam.update"):
        assert any(line.strip().startswith(op + " ") for line in head.splitlines()), op
    assert head.index("Diagnosis:") < head.index("Warnings:")


def test_text_lists_failures_with_message_and_diagnosis(report):
    text = render(report, "text")
    failures = text.split("Failures and errors")[1]
    for case in report.results:
        if case.status in ("fail", "error") and not case.xfail:
            assert case.id in failures
            assert _first(case.message) in failures
            if case.diagnosis:
                assert f"likely mistake: {mistake_said(case.diagnosis)}" in failures
            # a case's purpose is said only where no mistake is named and the values were wrong: beside a named
            # mistake it would contradict it, and an error's cause is the error
            assert (case.why in failures) == (case.status == "fail" and not case.diagnosis), case.id
    # the diagnosis has a line of its own, after the message
    lines = text.splitlines()
    i = lines.index("FAIL  momentum.update/ema/beta-zero")
    assert lines[i + 1].strip() == "v['dW1'][0,0]: expected 0.5, got 5.0"
    assert lines[i + 2].strip() == "likely mistake: heavy-ball momentum (v = beta*v + g)"
    # details are indented deeper than the message
    detail = next(line for line in lines if "v['dW1'] max abs err 4.5" in line)
    assert detail.startswith("      ")
    # the odd characters come through unharmed
    assert ODD_MESSAGE in text and ODD_DIAGNOSIS in text
    assert "max abs err nan, max rel err inf" in text


def test_text_hides_passing_cases_unless_verbose(report):
    text = render(report, "text")
    for case_id in ("mini_batches/structural/divisible", "momentum.update/ema/nondefault"):
        assert case_id not in text
    verbose = render(report, "text", verbose=True)
    assert "PASS  mini_batches/structural/divisible" in verbose
    assert "PASS  momentum.update/ema/nondefault" in verbose
    assert "momentum.trajectory/ema/course" in verbose  # the skipped ids


def test_text_groups_not_implemented_and_separates_xfail(report):
    text = render(report, "text")
    assert "adam.init: not implemented (3 cases)" in text
    assert "adam.init/one-layer-1x1" not in text
    failures = text.split("Failures and errors (4")[1].split("Not implemented:")[0]
    assert "adam.update/outside_sqrt/t-2" not in failures
    xfail = text.split("Expected failures")[1]
    assert "XFAIL adam.update/outside_sqrt/t-2" in xfail
    assert "beta1 and beta2 swapped" in xfail
    assert "XPASS adam.update/outside_sqrt/t-3" in xfail


def test_text_is_concise_by_default_and_verbose_lists_every_failure():
    same = "matches no bias correction [no-bias-correction]: the update uses v and s directly. Fix: correct them."
    results = [CaseResult(id=f"adam.update/outside_sqrt/case-{k}", op="adam.update", status="fail",
                          message=f"parameters.W1[0,0]: expected 1.0, got {k}.5", diagnosis=same, why="no correction",
                          details=[f"parameters.W1[0,0]: expected 1.0, got {k}.5"]) for k in range(10)]
    report = RunReport(target="t.py", dtype="float64", conventions={}, results=results)
    text = render(report, "text")
    assert text.count(mistake_said(same)) == 1 and "matches no bias" not in text  # the mistake said once ...
    assert text.count("likely mistake: as above [no-bias-correction]") == 2  # ... then named, for the others shown
    assert "case-2" in text and "case-3" not in text
    assert "... and 7 more failing adam.update cases" in text
    assert "-v lists every one" in text
    verbose = render(report, "text", verbose=True)
    assert all(f"case-{k}" in verbose for k in range(10)) and verbose.count(mistake_said(same)) == 10


def test_text_all_passing():
    report = RunReport(
        target="pkg.mod",
        dtype="float32",
        conventions={},
        results=[CaseResult(id="adam.update/x", op="adam.update", status="pass")],
    )
    text = render(report, "text")
    assert "CONFORMS" in text and "DOES NOT" not in text
    assert "Failures" not in text and "adam.update/x" not in text


# --------------------------------------------------------------------------- json


def test_json_parses_with_summary_and_cases(report):
    out = render(report, "json")
    assert ": NaN" not in out and "Infinity" not in out
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    summary = data["summary"]
    for key in ("passed", "failed", "errors", "not_implemented", "score", "max_score"):
        assert isinstance(summary[key], int), key
    assert summary["passed"] == 3
    assert summary["failed"] == 3  # the xfail case is counted apart
    assert summary["xfailed"] == 1
    assert summary["errors"] == 1
    assert summary["not_implemented"] == 3
    assert summary["score"] == 3 and summary["max_score"] == 11
    assert len(data["cases"]) == len(report.results)
    for entry, case in zip(data["cases"], report.results):
        for key in ("id", "op", "status", "max_abs_err", "max_rel_err", "message", "diagnosis"):
            assert key in entry, key
        assert entry["id"] == case.id and entry["op"] == case.op and entry["status"] == case.status
        assert entry["message"] == case.message and entry["diagnosis"] == case.diagnosis
    odd = next(entry for entry in data["cases"] if entry["id"] == "adam.update/inside_sqrt/odd")
    assert odd["max_abs_err"] == "nan" and odd["max_rel_err"] == "inf"
    assert odd["message"] == ODD_MESSAGE
    assert data["conforms"] is False


def test_json_is_exactly_the_result_model(report):
    report.results = [case for case in report.results if not any(
        isinstance(v, float) and not math.isfinite(v) for v in (case.max_abs_err, case.max_rel_err)
    )]
    assert json.loads(render(report, "json")) == report.to_json()


def test_to_json_safe():
    assert to_json_safe({"a": [float("nan"), float("-inf"), 1.5, (2, None)], 3: True}) == {
        "a": ["nan", "-inf", 1.5, [2, None]],
        "3": True,
    }
    import enum

    class Kind(str, enum.Enum):
        FAIL = "fail"

    odd = {"plain": [float("inf"), -0.0, 0, False, None, "x"], 2.5: {(1, 2)}, Kind.FAIL: np.float64("nan"),
           "numpy": [np.float32(-np.inf), np.int64(3), np.array([[1.0, np.nan]]), np.bool_(True)],
           "nested": {"t": ((float("nan"),),), "s": frozenset(["only"])}}
    safe = to_json_safe(odd)
    assert safe == {"plain": ["inf", -0.0, 0, False, None, "x"], "2.5": [[1, 2]], str(Kind.FAIL): "nan",
                    "numpy": ["-inf", 3, [[1.0, "nan"]], True], "nested": {"t": [["nan"]], "s": ["only"]}}
    assert math.copysign(1.0, safe["plain"][1]) == -1.0 and type(safe["numpy"][1]) is int
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe


# --------------------------------------------------------------------------- junit


def test_junit_parses_and_counts_match(report):
    out = render(report, "junit")
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["mini_batches", "momentum.update", "adam.init", "adam.update"]
    assert int(root.get("tests")) == len(report.results)
    assert int(root.get("failures")) == 2 + 0 + 1  # mini_batches, momentum, the odd adam case
    assert int(root.get("errors")) == 1
    assert root.get("skipped") is None  # the common JUnit schema has no skipped on <testsuites> ...
    assert sum(int(suite.get("skipped")) for suite in suites) == 3 + 1  # ... each suite counts its own
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(suite.get("errors")) == sum(1 for c in cases if c.find("error") is not None)
        assert int(suite.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
        for case in cases:
            assert case.get("classname") == suite.get("name")

    xml = JUnitXml.fromstring(out)
    assert (xml.tests, xml.failures, xml.errors) == (11, 3, 1)
    by_id = {case.name: case for suite in xml for case in suite}
    assert set(by_id) == {case.id for case in report.results}
    assert by_id["mini_batches/structural/divisible"].is_passed

    failure = by_id["momentum.update/ema/beta-zero"].result[0]
    assert isinstance(failure, Failure)
    assert failure.message == (
        "v['dW1'][0,0]: expected 0.5, got 5.0 — likely mistake: heavy-ball momentum (v = beta*v + g)"
    )
    assert "parameters['W1'] max abs err 0.045" in failure.text
    assert "the EMA form confused with heavy-ball" not in failure.text  # a named mistake is not contradicted

    odd = by_id["adam.update/inside_sqrt/odd"].result[0]
    assert isinstance(odd, Failure)
    assert odd.message == f"{ODD_MESSAGE} — likely mistake: {ODD_DIAGNOSIS}"
    assert "eps on the wrong side of sqrt" not in odd.text  # beside a named mistake, not said

    error = by_id["adam.update/outside_sqrt/t-1"].result[0]
    assert isinstance(error, Error)
    assert error.message.startswith("TypeError: update_parameters_with_adam()")
    assert "\n" not in error.message

    for case_id in ("adam.init/one-layer-1x1", "adam.init/one-layer-row", "adam.init/one-layer-column"):
        skipped = by_id[case_id].result[0]
        assert isinstance(skipped, Skipped) and skipped.message == "not implemented"

    xfail = by_id["adam.update/outside_sqrt/t-2"].result[0]
    assert isinstance(xfail, Skipped) and xfail.message.startswith("xfail: ")
    assert "beta1 and beta2 swapped" in xfail.message
    assert by_id["adam.update/outside_sqrt/t-3"].is_passed


JUNIT_SCHEMA = Path(__file__).parent / "schemas" / "junit.xsd"


def test_junit_validates_against_the_junit_schema(report):
    import xmlschema

    schema = xmlschema.XMLSchema(str(JUNIT_SCHEMA))
    schema.validate(render(report, "junit"))  # raises, naming the element, on any departure
    schema.validate(render(RunReport(target="t", dtype="float64", conventions={}), "junit"))
    # the schema is strict where the old report was wrong: a skipped count on <testsuites>
    broken = render(report, "junit").replace("<testsuites ", '<testsuites skipped="4" ', 1)
    assert not schema.is_valid(broken)


def test_junit_empty_report():
    report = RunReport(target="t", dtype="float64", conventions={})
    root = ET.fromstring(render(report, "junit"))
    assert root.tag == "testsuites" and root.get("tests") == "0"


# --------------------------------------------------------------------------- gradescope


def _validate_gradescope(data):
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)


def test_gradescope_validates_and_scores_add_up(report):
    out = render(report, "gradescope")
    data = json.loads(out)
    _validate_gradescope(data)
    assert data["visibility"] == "visible"
    assert data["output"].splitlines()[0] == summary_line(report)
    # one test per function the student wrote, a point per check
    by_function: dict = {}
    for case in report.results:
        by_function.setdefault(function_of(case.op), []).append(case)
    assert [t["name"] for t in data["tests"]] == list(by_function)
    assert sum(t["score"] for t in data["tests"]) == data["score"] == report.summary()["score"] == 3
    assert sum(t["max_score"] for t in data["tests"]) == data["max_score"] == len(report.results)
    for test in data["tests"]:
        cases = by_function[test["name"]]
        assert test["name_format"] == "text" and test["output_format"] == "text"
        assert test["max_score"] == len(cases) and test["score"] == sum(c.status == "pass" for c in cases)
        assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
        assert [c["id"] for c in test["extra_data"]["cases"]] == [c.id for c in cases]
        for case in [c for c in cases if c.status != "pass"][:3]:
            assert f"Check {case.id}:" in test["output"]
            if case.status == "fail":
                assert case.message in test["output"]
                assert (case.why in test["output"]) == (not case.diagnosis), case.id
    momentum = next(t for t in data["tests"] if t["name"] == "update_parameters_with_momentum")
    assert "Check momentum.update/ema/beta-zero:" in momentum["output"]
    missing = next(t for t in data["tests"] if t["name"] == "initialize_adam")
    assert "could not find initialize_adam" in missing["output"] and missing["score"] == 0


def test_gradescope_schema_rejects_bad_results():
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    good = {"score": 1, "tests": [{"name": "a", "score": 1, "max_score": 1, "status": "passed"}]}
    assert validator.is_valid(good)
    assert validator.is_valid({"tests": [{"score": 1}]})  # score on every test instead of the top
    assert not validator.is_valid({"tests": [{"name": "no score anywhere"}]})
    assert not validator.is_valid({"score": "1"})
    assert not validator.is_valid({"score": 1, "visibility": "sometimes"})
    assert not validator.is_valid({"score": 1, "tests": [{"score": 1, "status": "error"}]})
    assert not validator.is_valid({"score": 1, "tests": [{"score": 1, "output_format": "rtf"}]})
    assert not validator.is_valid({"score": 1, "tests": [{"score": 1, "maxscore": 1}]})


def test_gradescope_all_passing_and_empty():
    passing = RunReport(
        target="student.ipynb",
        dtype="float64",
        conventions={},
        results=[CaseResult(id=f"adam.update/{i}", op="adam.update", status="pass") for i in range(4)],
    )
    data = json.loads(render(passing, "gradescope"))
    _validate_gradescope(data)
    assert data["score"] == data["max_score"] == 4
    empty = json.loads(render(RunReport(target="x.py", dtype="float64", conventions={}), "gradescope"))
    _validate_gradescope(empty)
    assert empty["score"] == 0 and empty["tests"] == []


# --------------------------------------------------------------------------- all formats


def test_unknown_format(report):
    with pytest.raises(ValueError, match="text, json, junit, gradescope"):
        render(report, "html")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_string(report, fmt):
    out = render(report, fmt)
    assert isinstance(out, str) and out.strip()


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def test_each_case_records_its_duration_in_json_and_junit():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "optconform.reference", "--ops",
                           "adam.trajectory", "--format", "junit"], capture_output=True, text=True, timeout=300)
    times = [float(case.get("time")) for case in ET.fromstring(done.stdout).iter("testcase")]
    assert times and all(t > 0 for t in times)
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "optconform.reference", "--ops",
                           "adam.trajectory", "--format", "json"], capture_output=True, text=True, timeout=300)
    assert all(case["seconds"] > 0 for case in json.loads(done.stdout)["cases"])


# --------------------------------------------------------------------------- prairielearn


def test_prairielearn_results_have_the_external_graders_fields(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(root / "examples" / "buggy_submission.py"),
                           "--format", "prairielearn", "--no-sandbox", "--ops", "momentum,adam"],
                          capture_output=True, text=True, timeout=300)
    results = json.loads(done.stdout)
    assert set(results) == {"gradable", "score", "message", "output", "tests"} and results["gradable"] is True
    assert 0 < results["score"] < 1
    tests = {test["name"]: test for test in results["tests"]}
    assert tests["momentum.update"]["points"] == tests["momentum.update"]["max_points"] > 0
    adam = tests["adam.update"]
    assert adam["points"] < adam["max_points"] and "no-bias-correction" in adam["output"]
    assert all(set(t) == {"name", "description", "points", "max_points", "message", "output"} for t in tests.values())
    total = sum(t["points"] for t in tests.values()) / sum(t["max_points"] for t in tests.values())
    assert results["score"] == pytest.approx(total, abs=1e-6)


def test_markdown_pages_carry_student_text_as_text():
    """A file name, a student's name or an exception may hold a tag, a link or an image: the Markdown page
    shows them as written, as the HTML page does (a viewer that renders HTML in Markdown runs nothing)."""
    from optconform.harness.reporting.pages import to_markdown

    hostile = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) ![t](http://tracker/p.png) **x** `y`"
    page = to_markdown([("h1", f"Feedback for {hostile}"), ("p", f"ValueError: {hostile}"),
                        ("table", ("part", "note"), [(hostile, "a|b")]), ("figure", hostile, None, ("s",), [(1,)])])
    assert "<" not in page and "](" not in page and "![" not in page and "**" not in page
    assert page.count("&lt;img src=x onerror=alert\\(1\\)&gt;") == 4


def test_a_float32_run_says_which_cases_float32_cannot_hold_and_what_it_cannot_tell_apart(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "examples/course/course_2021.py",
                           "--dtype", "float32", "--no-sandbox", "--ops", "adam,momentum", "-v"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Skipped (--skip)" not in done.stdout  # nobody asked for these to be skipped
    assert "Not run at float32 (float64 only: values float32 cannot hold): 5 cases" in done.stdout
    assert "  adam.update/outside_sqrt/subnormal: run at float64 only:" in done.stdout
    assert "cannot tell them apart" in done.stdout and "check at float64" in done.stdout
    skip = tmp_path / "skip.txt"
    skip.write_text("adam.update/outside_sqrt/t-1\n")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "examples/course/course_2021.py",
                           "--no-sandbox", "--ops", "adam", "--skip", str(skip)], capture_output=True, text=True,
                          timeout=300)
    assert "Skipped (--skip): 1 case" in done.stdout and "Not run at float32" not in done.stdout
    assert "cannot tell them apart" not in done.stdout  # float64 tells them apart
