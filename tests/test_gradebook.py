"""The gradebook from graded reports, in process: the row per person, the parts, the scores, the cells a
spreadsheet would run, and the JSON beside the CSV. Fast enough to run against every mutant of the gradebook."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from optconform.harness.checking.points import Points
from optconform.harness.checking.results import CaseResult, RunReport
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import CaseIdList, select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.grading.gradebook import make_row, summary_table, write_gradebook
from optconform.harness.grading.graded import Graded
from optconform.harness.grading.identity import Identity, Member
from optconform.harness.grading.submissions import Submission
from optconform.harness.selftest import course_namespace, reference_functions
from optconform.harness.target.session import InProcessSession
from optconform.reference import mistakes
from optconform.reference.conventions import DEFAULTS
from optconform.vectors import load_suite

OPS = ["gd.update", "lr_decay.inverse_time"]


@pytest.fixture(scope="module")
def cases():
    return [case for case in load_suite() if case.op in OPS]


def _report(cases, functions: dict, points=None):
    session = InProcessSession(course_namespace({**reference_functions(), **functions}, DEFAULTS), "student.py")
    selection = select(cases, DEFAULTS, "float64", OPS, CaseIdList([]), CaseIdList([]), session.info.ops)
    report = run_cases(session, selection, "float64", DEFAULTS, "student.py", diagnoser=Diagnoser(graded=True))
    report.points = points
    return report


def _mistake(op: str):
    return next(m for m in mistakes.MISTAKES if m.op == op)


@pytest.fixture(scope="module")
def graded(cases, tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    wrong_gd = _mistake("gd.update")
    pair = Identity(lms="gradescope", members=(Member("Ada Lovelace", sid="1", email="ada@example.org"),
                                               Member("Alan Turing", sid="2")), late=True, submission_id="101")
    return [
        Graded(Submission("ada", folder / "ada.py", "ada/ada.py"), "ok", _report(cases, {}), seconds=1.2345),
        Graded(Submission("=HYPERLINK(\"x\")", folder / "b.py", "b/b.py", identity=pair), "ok",
               _report(cases, {"gd_update": wrong_gd.fn})),
        Graded(Submission("carl", folder / "c.py", "c/c.py"), "load_error", reason="line 3: invalid syntax"),
    ]


@pytest.fixture(scope="module")
def written(graded, tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    rows = [make_row(g, default_max=19) for g in graded]
    write_gradebook(out, rows, graded, {"assignment": "optimizers"})
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    return rows, table, json.loads((out / "gradebook.json").read_text(encoding="utf-8")), out


def test_a_correct_submission_scores_every_case_and_conforms(written, cases):
    rows, table, _, _ = written
    assert rows[0]["score"] == rows[0]["max_score"] == len(cases) and rows[0]["percent"] == 100.0
    assert rows[0]["conforms"] == "yes" and rows[0]["status"] == "ok" and rows[0]["mistakes"] == ""
    assert (rows[0]["passed"], rows[0]["failed"], rows[0]["errors"]) == (len(cases), 0, 0)
    assert table[0]["gd.update"] == table[0]["gd.update max"] == str(sum(c.op == "gd.update" for c in cases))


def test_a_mistake_loses_its_op_and_is_named(written, cases):
    rows, _, _, _ = written
    lr_cases = sum(c.op == "lr_decay.inverse_time" for c in cases)
    gd_cases = len(cases) - lr_cases
    assert rows[1]["score"] < rows[1]["max_score"] and rows[1]["conforms"] == "no"
    assert rows[1]["parts"]["lr_decay.inverse_time"] == (lr_cases, lr_cases)
    assert rows[1]["parts"]["gd.update"][1] == gd_cases and rows[1]["parts"]["gd.update"][0] < gd_cases
    assert rows[1]["failed"] + rows[1]["errors"] == rows[1]["max_score"] - rows[1]["score"]
    assert rows[1]["percent"] == round(100.0 * rows[1]["score"] / rows[1]["max_score"], 1)
    assert rows[1]["mistakes"] and "update_parameters_with_gd" in rows[1]["diagnosis"]


def test_an_ungraded_submission_scores_zero_of_the_default_with_its_reason(written):
    rows, _, document, _ = written
    assert (rows[2]["score"], rows[2]["max_score"], rows[2]["percent"]) == (0, 19, 0.0)
    assert (rows[2]["passed"], rows[2]["failed"], rows[2]["errors"], rows[2]["not_implemented"]) == (0, 0, 0, 0)
    assert rows[2]["status"] == "load_error" and rows[2]["conforms"] == "no" and rows[2]["parts"] == {}
    assert rows[2]["diagnosis"] == "line 3: invalid syntax"
    assert document["submissions"][2]["reason"] == "line 3: invalid syntax"
    assert "reason" not in document["submissions"][0]


def test_a_group_is_a_row_per_member_with_its_identity(written):
    _, table, document, _ = written
    pair = [row for row in table if row["submission_id"] == "101"]
    assert [(r["name"], r["sid"], r["email"], r["late"], r["lms"]) for r in pair] == [
        ("Ada Lovelace", "1", "ada@example.org", "yes", "gradescope"), ("Alan Turing", "2", "", "yes", "gradescope")]
    assert pair[0]["score"] == pair[1]["score"] and len(table) == 4
    solo = table[0]
    assert (solo["name"], solo["sid"], solo["late"], solo["lms"]) == ("ada", "", "", "")
    assert document["submissions"][1]["identity"]["members"][1]["name"] == "Alan Turing"


def test_cells_a_spreadsheet_would_run_are_quoted(written):
    _, table, document, _ = written
    assert table[1]["student"] == table[2]["student"] == "'=HYPERLINK(\"x\")"
    assert document["submissions"][1]["student"] == "=HYPERLINK(\"x\")"  # JSON keeps the name as it is


def test_the_json_holds_what_the_csv_does_and_more(written, cases):
    rows, _, document, out = written
    entries = document["submissions"]
    assert document["assignment"] == "optimizers" and len(entries) == 3
    assert [e["score"] for e in entries] == [r["score"] for r in rows]
    assert entries[0]["parts"]["gd.update"]["points"] == entries[0]["parts"]["gd.update"]["max"]
    assert entries[0]["ops"]["gd.update"]["pass"] == sum(c.op == "gd.update" for c in cases)
    assert entries[1]["ops"]["gd.update"]["fail"] + entries[1]["ops"]["gd.update"]["error"] > 0
    assert entries[0]["seconds"] == 1.23 and entries[0]["feedback"] == "feedback/ada.txt"
    assert entries[1]["diagnosis_summary"] and entries[1]["warnings"] == []
    assert entries[2]["diagnosis_summary"] == [] and entries[2]["ops"] == {}
    assert sorted(p.name for p in out.iterdir()) == ["gradebook.csv", "gradebook.json"]


def test_points_from_the_assignment_make_the_parts(cases):
    points = Points(ops={"gd.update": 30, "lr_decay.inverse_time": 10})
    wrong = Graded(Submission("b", Path("b.py"), "b.py"), "ok",
                   _report(cases, {"lr_inverse_time": _mistake("lr_decay.inverse_time").fn}, points))
    row = make_row(wrong, default_max=100)
    assert row["max_score"] == 40 and row["parts"]["gd.update"] == (30, 30)
    assert row["parts"]["lr_decay.inverse_time"][1] == 10 and row["parts"]["lr_decay.inverse_time"][0] < 10
    assert row["score"] == pytest.approx(30 + row["parts"]["lr_decay.inverse_time"][0])


def test_the_summary_table_lists_each_student_and_score(graded):
    rows = [make_row(g, default_max=19) for g in graded]
    lines = summary_table(rows).splitlines()
    assert len(lines) == 4 and lines[0].split()[:3] == ["student", "score", "%"]
    assert lines[1].split()[:3] == ["ada", f"{rows[0]['score']}/{rows[0]['max_score']}", "100.0"]
    assert "load_error" in lines[3] and "invalid syntax" in lines[3]


def test_the_csv_columns_are_the_fixed_ones_then_each_part_once_then_identity(written):
    *_, out = written
    header = (out / "gradebook.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == [
        "student", "file", "score", "max_score", "percent", "conforms", "gd.update", "gd.update max",
        "lr_decay.inverse_time", "lr_decay.inverse_time max", "passed", "failed", "errors", "not_implemented",
        "status", "diagnosis", "mistakes", "name", "sid", "email", "user_id", "lms", "submission_id", "late"]


def test_errors_not_implemented_and_expected_failures_are_counted_apart(tmp_path):
    results = [CaseResult("gd.update/a", "gd.update", "pass"), CaseResult("gd.update/b", "gd.update", "error", "x"),
               CaseResult("gd.update/e", "gd.update", "error", "z"),
               CaseResult("gd.update/c", "gd.update", "fail", "y", xfail=True),
               CaseResult("gd.update/d", "gd.update", "pass", xfail=True),
               CaseResult("adam.update/a", "adam.update", "not_implemented")]
    report = RunReport("s.py", "float64", DEFAULTS, results=results, warnings=["line 9: skipped"],
                       diagnosis_summary=["gd.update: one error"])
    graded = [Graded(Submission("dora", tmp_path / "d.py", "d.py"), "ok", report)]
    row = make_row(graded[0], default_max=0)
    assert (row["passed"], row["failed"], row["errors"], row["not_implemented"]) == (2, 0, 2, 1)
    assert (row["score"], row["max_score"]) == (2, 6) and row["percent"] == 33.3
    write_gradebook(tmp_path, [row], graded, {})
    entry = json.loads((tmp_path / "gradebook.json").read_text(encoding="utf-8"))["submissions"][0]
    assert entry["ops"]["gd.update"] == {"pass": 2, "fail": 0, "error": 2, "not_implemented": 0, "xfail": 1}
    assert entry["ops"]["adam.update"]["not_implemented"] == 1
    assert entry["warnings"] == ["line 9: skipped"] and entry["diagnosis_summary"] == ["gd.update: one error"]


def test_a_class_with_nothing_to_score_has_percent_zero(tmp_path):
    row = make_row(Graded(Submission("eve", tmp_path / "e.py", "e.py"), "grader_error", reason="no sandbox"), 0)
    assert (row["score"], row["max_score"], row["percent"]) == (0, 0, 0.0)


def test_a_long_name_is_cut_to_forty_columns_in_the_summary_table(graded):
    rows = [make_row(g, default_max=19) for g in graded]
    rows[0] = {**rows[0], "student": "x" * 60}
    lines = summary_table(rows).splitlines()
    assert lines[1].startswith("x" * 40 + "  ") and "x" * 41 not in lines[1]
    assert lines[0].startswith("student" + " " * 33 + "  ")


def test_scores_are_said_alike_whole_or_with_one_decimal(graded):
    from optconform.harness.reporting.text import points_text

    assert [points_text(x) for x in (0, 0.0, 30.01, 30.5, 6.86, 40)] == ["0", "0", "30", "30.5", "6.9", "40"]
    rows = [make_row(g, default_max=19) for g in graded]
    rows[0] = {**rows[0], "score": 30.01, "max_score": 100.0}
    rows[1] = {**rows[1], "score": 0.0, "max_score": 100}
    lines = summary_table(rows).splitlines()
    assert "30/100" in lines[1] and "0/100" in lines[2] and "0.0/" not in lines[2]


def test_credit_by_mistake_where_it_is_all_a_part_gets_wrong(cases):
    wrong_sign = next(m for m in mistakes.MISTAKES if m.op == "gd.update" and m.name == "wrong-sign")
    points = Points(ops={"gd.update": 30, "lr_decay.inverse_time": 10}, mistakes={"wrong-sign": 0.5})
    report = _report(cases, {"gd_update": wrong_sign.fn}, points)
    groups = {g["group"]: g for g in report.summary()["points"]}
    gd = groups["gd.update"]
    assert gd["passed"] < gd["cases"] and gd["points"] == 15.0 and "wrong-sign" in gd["credit"]
    assert "credit" not in groups["lr_decay.inverse_time"] and groups["lr_decay.inverse_time"]["points"] == 10
    # without the credit, the share of checks that pass; and a mistake the assignment does not credit earns none
    plain = _report(cases, {"gd_update": wrong_sign.fn}, Points(ops={"gd.update": 30}))
    assert plain.summary()["points"][0]["points"] < 15 and "credit" not in plain.summary()["points"][0]
    other = _report(cases, {"gd_update": wrong_sign.fn}, Points(ops={"gd.update": 30}, mistakes={"float32": 0.9}))
    assert "credit" not in other.summary()["points"][0]
    from optconform.harness.reporting.text import group_said

    assert group_said(gd).endswith("credit for a known mistake, wrong-sign: the one mistake here, worth 50% of these "
                                   "points: 15 of 30 points")


@pytest.mark.parametrize("table, said", [
    ('[points.mistakes]\n"no-such-mistake" = 0.5\n', "no known mistake is named 'no-such-mistake'"),
    ('[points.mistakes]\n"wrong-sign" = 1.5\n', "must be a share of the points, 0 to 1"),
])
def test_the_assignment_file_refuses_credit_for_an_unknown_mistake_or_share(tmp_path, table, said):
    from optconform.harness.grading.assignment import AssignmentError, load

    path = tmp_path / "optconform.toml"
    path.write_text("[points.ops]\ngd = 10\n" + table, encoding="utf-8")
    with pytest.raises(AssignmentError, match=said):
        load(path)
