"""The assignment file (optconform.toml): settings, points per op and tag, partial credit, init."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optconform.harness.checking.points import Points
from optconform.harness.checking.results import CaseResult

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optconform.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture()
def course(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", subs / "alice.py")
    shutil.copy(EXAMPLES / "buggy_submission.py", subs / "bob.py")
    return tmp_path


def _rows(out: Path) -> dict:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def test_init_writes_a_commented_file_that_grading_reads(course):
    assert run(course, "init").returncode == 0
    assert "# " in (course / "optconform.toml").read_text()
    again = run(course, "init")
    assert again.returncode == 2 and "exists: pass --force" in again.stderr
    assert run(course, "init", "--force").returncode == 0
    done = run(course, "grade", "subs", "--out", "grades", "--no-sandbox")
    assert done.returncode == 0, done.stderr
    rows = _rows(course / "grades")
    assert rows["alice"]["score"] == "100.0" and rows["alice"]["max_score"] == "100"
    for op, most in (("mini_batches", "20"), ("momentum", "20"), ("adam", "40"), ("gd", "5"), ("lr_decay", "15")):
        assert rows["alice"][f"{op} max"] == most and float(rows["alice"][op]) == float(most)
    bob = rows["bob"]
    assert float(bob["momentum"]) == 20.0 and 0 < float(bob["adam"]) < 40  # his momentum is right, Adam is not
    assert float(bob["score"]) == pytest.approx(sum(float(bob[op]) for op in ("mini_batches", "momentum", "adam",
                                                                               "gd", "lr_decay")), abs=0.02)
    assert "no-bias-correction" in bob["mistakes"]
    book = json.loads((course / "grades" / "gradebook.json").read_text())
    assert book["assignment_file"] == "optconform.toml" and book["points"]["ops"]["adam"] == 40
    assert book["optconform_version"]


def test_all_or_nothing_and_tag_points_and_the_command_line_wins(course):
    (course / "optconform.toml").write_text(
        'ops = ["momentum", "adam"]\ndtype = "float32"\n'
        '[points]\npartial_credit = "all_or_nothing"\n[points.ops]\nmomentum = 30\nadam = 60\n'
        '[points.tags]\nedge = 10\n')
    done = run(course, "grade", "subs", "--out", "grades", "--no-sandbox", "--dtype", "float64")
    assert done.returncode == 0, done.stderr
    rows = _rows(course / "grades")
    assert rows["bob"]["adam"] == "0.0" and rows["bob"]["momentum"] == "30.0"  # Adam wrong somewhere: nothing
    assert rows["alice"]["score"] == "100.0" and rows["alice"]["edge max"] == "10"
    assert "mini_batches" not in rows["alice"]  # the file's ops
    book = json.loads((course / "grades" / "gradebook.json").read_text())
    assert book["dtype"] == "float64"  # the command line over the file's float32


def test_check_reads_the_file_and_scores_in_points(course):
    (course / "optconform.toml").write_text('ops = "lr_decay"\n[points.ops]\nlr_decay = 7\n')
    done = run(course, "check", str(EXAMPLES / "course" / "course_2021.py"), "--no-sandbox", "-q")
    assert done.returncode == 0 and done.stdout.strip().endswith("(score 7/7)")  # whole points said whole


def test_pyproject_table_is_read(course):
    (course / "pyproject.toml").write_text('[tool.optconform]\nops = "gd"\n')
    done = run(course, "check", str(EXAMPLES / "course" / "course_2021.py"), "--no-sandbox", "--format", "json")
    assert {case["op"] for case in json.loads(done.stdout)["cases"]} == {"gd.update"}


@pytest.mark.parametrize("text, message", [
    ('opps = "adam"\n', "unknown key 'opps'"),
    ('timeout = "ten"\n', "timeout must be int or float"),
    ('[points]\npartial_credit = "half"\n', "points.partial_credit must be one of proportional, all_or_nothing"),
    ('[points.ops]\nadamm = 3\n', "points.ops"),
    ('[points.ops]\nadam = -1\n', "points.ops.adam must be a number of points >= 0"),
    ("ops = [\n", "not valid TOML"),
])
def test_a_malformed_file_is_one_line_and_exit_2(course, text, message):
    (course / "optconform.toml").write_text(text)
    done = run(course, "grade", "subs", "--out", "grades", "--no-sandbox")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and message in line and "optconform.toml" in line


def test_points_by_group():
    results = [CaseResult("adam.update/a", "adam.update", "pass", tags=("edge",)),
               CaseResult("adam.update/b", "adam.update", "fail"),
               CaseResult("adam.trajectory/c", "adam.trajectory", "pass", tags=("edge",)),
               CaseResult("gd.update/d", "gd.update", "pass")]
    points = Points(ops={"adam": 30, "gd.update": 10, "rmsprop": 50}, tags={"edge": 6})
    assert points.score(results) == (20.0 + 10.0 + 6.0, 46)  # rmsprop has no case here: not counted
    assert Points(ops={"adam": 30}, partial_credit="all_or_nothing").score(results) == (0.0, 30)


def test_the_course_version_names_the_functions_every_student_must_write(course):
    """A correct 2017 solution (no gradient descent, no decays) scores full marks when the assignment says 2017;
    with no version given, grade says, before grading, which version and functions it holds the class to."""
    shutil.copy(EXAMPLES / "course" / "course_2017.py", course / "subs" / "carol.py")
    (course / "optconform.toml").write_text('course = "2017"\n', encoding="utf-8")
    done = run(course, "grade", "subs", "--out", "g17", "--no-sandbox")
    assert done.returncode == 0, done.stderr
    rows = _rows(course / "g17")
    assert rows["carol"]["score"] == rows["carol"]["max_score"] and rows["carol"]["conforms"] == "yes"
    assert json.loads((course / "g17" / "gradebook.json").read_text())["course"] == "2017"
    feedback = (course / "g17" / "feedback" / "carol.txt").read_text(encoding="utf-8")
    assert "This assignment checks: random_mini_batches, initialize_velocity" in feedback
    assert "update_lr" not in feedback.split("\n\n")[0]
    (course / "optconform.toml").unlink()
    unstated = run(course, "grade", "subs", "--out", "g21", "--no-sandbox")
    assert "grading the 2021+ version" in unstated.stderr and "schedule_lr_decay" in unstated.stderr
    assert _rows(course / "g21")["carol"]["conforms"] == "no"
    (course / "optconform.toml").write_text('course = "2018"\nops = ["adam"]\n', encoding="utf-8")
    both = run(course, "grade", "subs", "--out", "gx", "--no-sandbox")
    assert both.returncode == 2 and "course or ops, not both" in both.stderr


def test_init_says_which_version_it_chose(tmp_path):
    done = run(tmp_path, "init")
    assert done.returncode == 0 and "2021+ version" in done.stdout and 'course = "2017" or "2018"' in done.stdout
    assert 'course = "2021"' in (tmp_path / "optconform.toml").read_text(encoding="utf-8")
