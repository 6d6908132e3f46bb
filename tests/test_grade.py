"""``optconform grade``: a directory of student submissions into a gradebook and feedback.

One run grades six submissions at once (correct, the seed notebook, a buggy one,
a syntax error, a hanging one and a broken notebook), restricted to the Adam
update and a few of its cases to stay fast.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from optconform.cli import main
from optconform.harness.grading.submissions import expand_submissions, safe_name

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

CORRECT = (EXAMPLES / "course_submission.py").read_text(encoding="utf-8")
BUGGY = (CORRECT.replace("v_corrected[key] = v[key] / (1 - beta1 ** t)", "v_corrected[key] = v[key]")
         .replace("s_corrected[key] = s[key] / (1 - beta2 ** t)", "s_corrected[key] = s[key]"))
SYNTAX_ERROR = """import numpy as np


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01)
    return parameters, v, s
"""
HANGING = """import numpy as np


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,
                                beta1=0.9, beta2=0.999, epsilon=1e-8):
    while True:
        pass
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grade")
    subs = base / "submissions"
    subs.mkdir()
    assert BUGGY != CORRECT
    (subs / "correct.py").write_text(CORRECT, encoding="utf-8")
    shutil.copy(EXAMPLES / "seed_notebook.ipynb", subs / "seed.ipynb")
    (subs / "buggy.py").write_text(BUGGY, encoding="utf-8")
    (subs / "syntax_error.py").write_text(SYNTAX_ERROR, encoding="utf-8")
    (subs / "hanging.py").write_text(HANGING, encoding="utf-8")
    (subs / "broken_nb.ipynb").write_text('{"cells": [', encoding="utf-8")
    (subs / "notes.txt").write_text("not a submission", encoding="utf-8")
    skip = base / "skip.txt"
    skip.write_text("# the sweep adds nothing these tests need\nadam.update/outside_sqrt/sweep-*\n", encoding="utf-8")
    out = base / "grades"
    code = main(["grade", str(subs), "--ops", "adam.update", "--skip", str(skip), "--timeout", "1",
                 "--jobs", "4", "--out", str(out)])
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return code, out, rows


def test_every_submission_graded_exit_0(graded):
    code, out, rows = graded
    assert code == 0
    assert set(rows) == {"correct", "seed", "buggy", "syntax_error", "hanging", "broken_nb"}
    assert list(rows) == sorted(rows, key=str.lower)
    for row in rows.values():
        assert int(row["max_score"]) > 0
        assert row["status"] in ("ok", "load_error")


def test_scores_order_correct_above_buggy(graded):
    _, _, rows = graded
    correct, buggy, seed = rows["correct"], rows["buggy"], rows["seed"]
    assert correct["status"] == "ok" and correct["score"] == correct["max_score"]
    assert float(correct["percent"]) == 100.0 and correct["diagnosis"] == ""
    assert buggy["status"] == "ok" and int(buggy["score"]) < int(correct["score"])
    assert int(buggy["failed"]) > 0
    assert seed["status"] == "ok" and int(seed["score"]) < int(correct["score"])
    assert "bias correction" in buggy["diagnosis"]
    assert "epsilon" in seed["diagnosis"]


def test_load_errors_score_zero_with_a_reason(graded):
    _, out, rows = graded
    syntax, broken = rows["syntax_error"], rows["broken_nb"]
    for row in (syntax, broken):
        assert row["score"] == "0" and row["percent"] == "0.0"
    assert broken["status"] == "load_error"
    assert "broken_nb.ipynb" in broken["diagnosis"] and "notebook" in broken["diagnosis"]
    # a syntax error costs its own block, and the function lost with it says where
    assert syntax["status"] == "ok"
    assert "syntax_error.py line 4: syntax error" in syntax["diagnosis"]
    feedback = (out / "feedback" / "syntax_error.txt").read_text(encoding="utf-8")
    assert "could not load update_parameters_with_adam" in feedback and "line 4" in feedback


def test_hanging_submission_times_out_without_stopping_the_others(graded):
    _, out, rows = graded
    hanging = rows["hanging"]
    assert hanging["status"] == "ok" and hanging["score"] == "0"
    assert int(hanging["errors"]) == int(hanging["max_score"])
    assert "timed out" in hanging["diagnosis"]
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    entry = next(e for e in book["submissions"] if e["student"] == "hanging")
    assert entry["seconds"] < 30  # a few timeouts, not one per case


def test_gradebook_json_has_per_op_counts(graded):
    _, out, rows = graded
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    entries = {e["student"]: e for e in book["submissions"]}
    assert set(entries) == set(rows)
    correct = entries["correct"]
    assert correct["ops"]["adam.update"]["pass"] > 0 and correct["ops"]["adam.update"]["fail"] == 0
    assert sum(c["pass"] for c in correct["ops"].values()) == correct["score"]
    assert entries["buggy"]["ops"]["adam.update"]["fail"] > 0
    assert entries["syntax_error"]["ops"]["adam.update"]["not_implemented"] > 0
    assert entries["broken_nb"]["ops"] == {} and "notebook" in entries["broken_nb"]["reason"]
    for student, row in rows.items():
        assert str(entries[student]["score"]) == row["score"]


def test_feedback_names_the_mistakes(graded):
    _, out, rows = graded
    feedback = out / "feedback"
    for student in rows:
        assert (feedback / f"{student}.txt").is_file()
        json.loads((feedback / f"{student}.json").read_text(encoding="utf-8"))
    buggy = (feedback / "buggy.txt").read_text(encoding="utf-8")
    assert buggy.startswith("Feedback for buggy (buggy.py)")
    assert "Your update_parameters_with_adam" in buggy and "FAIL" in buggy
    assert "bias correction" in buggy.split("=" * 72)[0]  # named in the header, before the full report
    assert "Well done" in (feedback / "correct.txt").read_text(encoding="utf-8")
    syntax = (feedback / "syntax_error.txt").read_text(encoding="utf-8")
    assert "could not load update_parameters_with_adam" in syntax and "syntax_error.py line 4" in syntax
    broken = (feedback / "broken_nb.txt").read_text(encoding="utf-8")
    assert "could not be graded" in broken
    assert "timed out" in (feedback / "hanging.txt").read_text(encoding="utf-8")
    report = json.loads((feedback / "buggy.json").read_text(encoding="utf-8"))
    assert report["summary"]["failed"] > 0 and report["cases"]
    assert json.loads((feedback / "broken_nb.json").read_text(encoding="utf-8"))["status"] == "load_error"


def test_nonexistent_path_is_a_usage_error(tmp_path, capsys):
    code = main(["grade", str(tmp_path / "nobody.py"), "--out", str(tmp_path / "grades")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nobody.py: no such file or directory" in err
    assert not (tmp_path / "grades" / "gradebook.csv").exists()


def test_expand_directories_and_names(tmp_path):
    root = tmp_path / "export"
    (root / "Ann Lee_123").mkdir(parents=True)
    (root / "Ann Lee_123" / "homework.ipynb").write_text("{}", encoding="utf-8")
    (root / "two").mkdir()
    (root / "two" / "a.py").write_text("", encoding="utf-8")
    (root / "two" / "b.py").write_text("", encoding="utf-8")
    (root / "empty").mkdir()
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "x.ipynb").write_text("{}", encoding="utf-8")
    (root / "bob.py").write_text("", encoding="utf-8")
    (root / "grades").mkdir()
    (root / "grades" / "ignored.py").write_text("", encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    (other / "bob.py").write_text("", encoding="utf-8")
    found, errors = expand_submissions([str(root), str(other), str(root / "bob.py"), "missing.py",
                                        str(root / "empty")], exclude=root / "grades")
    names = {s.student: s for s in found}
    assert set(names) == {"Ann Lee_123", "two", "bob", "bob-2", "empty"}
    assert "no .py or .ipynb file" in names["empty"].problem  # a student is never dropped in silence
    assert names["Ann Lee_123"].path.name == "homework.ipynb"
    assert names["two"].path.name == "a.py" and not names["two"].problem  # one file chosen, the other named
    assert errors[0] == "missing.py: no such file or directory"
    assert any("empty" in e for e in errors)
    assert safe_name("Ann Lee_123") == "Ann_Lee_123"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("...") == "student"


def test_symlink_loops_and_undecodable_names_get_their_own_rows(tmp_path):
    subs = tmp_path / "export"
    subs.mkdir()
    (subs / "loop.py").symlink_to("loop.py")
    (subs / "a.py").symlink_to("b.py")
    (subs / "b.py").symlink_to("a.py")
    odd = os.fsdecode(b"stud\xe9nt.py")
    (subs / odd).write_text(CORRECT, encoding="utf-8")
    out = tmp_path / "grades"
    code = main(["grade", str(subs), "--ops", "adam.init", "--out", str(out), "--no-sandbox"])
    assert code == 0
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"loop", "a", "b", "stud\ufffdnt"}
    assert all(rows[name]["status"] == "load_error" and "symbolic link" in rows[name]["diagnosis"]
               for name in ("loop", "a", "b"))
    assert rows["stud\ufffdnt"]["score"] == rows["stud\ufffdnt"]["max_score"]


def test_grade_shows_progress_on_a_terminal_only(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / f"{name}.py")
    argv = [sys.executable, "-m", "optconform.cli", "grade", str(folder), "--no-sandbox", "--ops", "gd"]
    primary, secondary = pty.openpty()
    process = subprocess.Popen([*argv, "--out", str(tmp_path / "tty")], stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    out, _ = process.communicate(timeout=300)
    os.close(primary)
    assert process.returncode == 0 and "submission" in shown.decode(errors="replace")  # tqdm's bar and unit
    assert b"graded 3 submissions" in out  # the final table stays, on stdout
    piped = subprocess.run([*argv, "--out", str(tmp_path / "pipe")], capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == "" and "graded 3 submissions" in piped.stdout


def test_workers_grade_with_the_graders_vectors_and_a_conforming_class_needs_no_diagnosis(tmp_path):
    """Forked workers use the vectors the grader loaded (each loading them again cost 150 ms a worker), and a
    class that conforms never imports the diagnosis, jsonschema or nbformat (the child reads its notebook)."""
    import subprocess
    import sys

    subs = tmp_path / "subs"
    subs.mkdir()
    for index in range(3):
        (subs / f"s{index}.py").write_text(CORRECT, encoding="utf-8")
    shutil.copy(EXAMPLES / "course" / "course_2018.ipynb", subs / "nb.ipynb")
    calls = tmp_path / "prepared-in.txt"
    probe = textwrap.dedent(f"""
        import os, sys
        from optconform.harness.checking import run
        from optconform.harness.grading import executors, grade
        original = run.prepare
        def prepare(settings):
            with open({str(calls)!r}, "a") as handle:
                handle.write(f"{{os.getpid()}}\\n")
            return original(settings)
        run.prepare = grade.prepare = executors.prepare = prepare
        from optconform.cli import main
        code = main(["grade", {str(subs)!r}, "--out", {str(tmp_path / "out")!r}, "--jobs", "2", "--ops", "adam.update",
                     "--no-sandbox"])
        print(code, os.getpid(), sorted(m for m in ("optconform.harness.diagnosis.cases", "jsonschema", "nbformat")
                                        if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    code, pid, imported = done.stdout.strip().splitlines()[-1].split(" ", 2)
    assert code == "0", done.stdout + done.stderr
    assert calls.read_text().split() == [pid]  # the grader's own process, once; no worker again
    assert imported == "[]"
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and all(row["score"] == row["max_score"] != "0" for row in rows), rows


def test_a_path_that_does_not_exist_is_said_once(tmp_path):
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(tmp_path / "no_such_dir"), "--out",
                           str(tmp_path / "grades"), "--no-sandbox"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("optconform: error:") == 1 and "no_such_dir: no such file or directory" in done.stderr


def test_a_students_feedback_never_shows_where_the_grader_keeps_the_file(tmp_path):
    folder = tmp_path / "instructor_private_folder"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "buggy_submission.py", folder / "ada.py")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(tmp_path / "g"),
                           "--no-sandbox", "--ops", "adam"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for page in (tmp_path / "g" / "feedback").iterdir():
        assert "instructor_private_folder" not in page.read_text(encoding="utf-8"), page.name
    assert "instructor_private_folder" in (tmp_path / "g" / "gradebook.csv").read_text()  # the grader's own file
