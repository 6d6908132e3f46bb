"""grade reads LMS exports: Gradescope, Canvas and Moodle zips, students named from the export."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from optconform.harness.grading.exports import ExportError, unpack

ROOT = Path(__file__).resolve().parent.parent
COURSE = (ROOT / "examples" / "course" / "course_2021.py").read_text()
BUGGY = (ROOT / "examples" / "buggy_submission.py").read_text()
HELPER = "import numpy as np\n\ndef sigmoid(x):\n    return 1 / (1 + np.exp(-x))\n"


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _grade(tmp_path: Path, export: Path) -> tuple[dict, subprocess.CompletedProcess]:
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(export), "--out",
                           str(tmp_path / "grades"), "--no-sandbox", "--ops", "momentum,adam"],
                          capture_output=True, text=True, timeout=600)
    with open(tmp_path / "grades" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}, done


def test_a_gradescope_export_names_students_from_its_metadata(tmp_path):
    export = _zip(tmp_path / "gradescope.zip", {
        "assignment_1_export/submission_metadata.yml": (
            "submission_101:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: '1'\n"
            "submission_102:\n  :submitters:\n  - :name: Alan Turing\n  - :name: Grace Hopper\n"),
        "assignment_1_export/submission_101/optimization.py": COURSE,
        "assignment_1_export/submission_101/helpers.py": HELPER,
        "assignment_1_export/submission_102/Optimization.ipynb.py": BUGGY,
        "assignment_1_export/submission_102/plot.png": "not code",
    })
    rows, done = _grade(tmp_path, export)
    assert done.returncode == 0, done.stderr
    assert set(rows) == {"Ada Lovelace", "Alan Turing + Grace Hopper"}
    assert rows["Ada Lovelace"]["score"] == rows["Ada Lovelace"]["max_score"]
    assert rows["Ada Lovelace"]["file"].endswith("submission_101/optimization.py")
    assert int(rows["Alan Turing + Grace Hopper"]["score"]) < int(rows["Alan Turing + Grace Hopper"]["max_score"])
    assert "Graded optimization.py, which defines 8 of the assignment's functions; set aside: helpers.py (0)" \
        in done.stderr  # a named skip, never a silent one
    assert "1 file(s) skipped, not .py or .ipynb (plot.png)" in done.stderr


@pytest.mark.parametrize("lms, members, students", [
    ("canvas", {"lovelaceada_12345_67890_Optimization_methods.py": COURSE,
                "turingalan_LATE_23456_78901_optimization.py": BUGGY}, ("lovelaceada", "turingalan")),
    ("moodle", {"Ada Lovelace_111_assignsubmission_file_/optimization.py": COURSE,
                "Alan Turing_222_assignsubmission_file_/work.py": BUGGY}, ("Ada Lovelace", "Alan Turing")),
])
def test_canvas_and_moodle_exports_name_students_from_file_and_folder_names(tmp_path, lms, members, students):
    rows, done = _grade(tmp_path, _zip(tmp_path / f"{lms}.zip", members))
    assert done.returncode == 0, done.stderr
    assert set(rows) == set(students)
    assert rows[students[0]]["score"] == rows[students[0]]["max_score"]
    assert int(rows[students[1]]["score"]) < int(rows[students[1]]["max_score"])


@pytest.mark.parametrize("members, message", [
    ({"../evil.py": "x = 1"}, "points outside the export"),
    ({"/etc/evil.py": "x = 1"}, "points outside the export"),
])
def test_an_export_that_climbs_out_is_refused(tmp_path, members, message):
    export = _zip(tmp_path / "bad.zip", members)
    with pytest.raises(ExportError, match=message):
        unpack(export, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_a_zip_bomb_and_a_broken_zip_are_refused(tmp_path, monkeypatch):
    from optconform.harness.grading import exports as lms

    monkeypatch.setattr(lms, "MAX_BYTES", 1000)
    with pytest.raises(ExportError, match="MiB unpacked"):
        unpack(_zip(tmp_path / "big.zip", {"a.py": "x" * 5000}), tmp_path / "out")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ExportError, match="not a readable zip"):
        unpack(tmp_path / "broken.zip", tmp_path / "out2")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(tmp_path / "broken.zip"),
                           "--out", str(tmp_path / "grades"), "--no-sandbox"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "not a readable zip" in done.stderr and "Traceback" not in done.stderr


# The columns each system documents for the file it imports grades from (written out here, not read from the code).
CANVAS_IMPORT = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]  # then one column per assignment
MOODLE_WORKSHEET = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                    "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
GRADESCOPE_ROSTER = ["Name", "SID", "Email"]  # then the score


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_grades_go_back_to_canvas(tmp_path):
    export = _zip(tmp_path / "canvas.zip", {"lovelaceada_12345_67890_Optimization_methods.py": COURSE,
                                           "turingalan_late_23456_78901_optimization.py": BUGGY})
    rows, done = _grade(tmp_path, export)
    assert done.returncode == 0, done.stderr
    assert (rows["lovelaceada"]["user_id"], rows["lovelaceada"]["late"], rows["lovelaceada"]["lms"]) == \
        ("12345", "no", "canvas")
    assert (rows["turingalan"]["user_id"], rows["turingalan"]["late"]) == ("23456", "yes")
    assert rows["lovelaceada"]["conforms"] == "yes" and rows["turingalan"]["conforms"] == "no"
    table = _rows(tmp_path / "grades" / "canvas_import.csv")
    assert table[0][:5] == CANVAS_IMPORT and len(table[0]) == 6
    assert table[1][0] == "Points Possible" and table[1][5] == rows["lovelaceada"]["max_score"]
    by_id = {row[1]: row for row in table[2:]}
    assert by_id["12345"][5] == rows["lovelaceada"]["score"] and by_id["23456"][5] == rows["turingalan"]["score"]


def test_grades_go_back_to_gradescope_one_row_per_group_member(tmp_path):
    export = _zip(tmp_path / "gradescope.zip", {
        "submission_metadata.yml": (
            "submission_101:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: 'A1'\n    :email: ada@example.edu\n"
            "submission_102:\n  :submitters:\n  - :name: Alan Turing\n    :sid: 'A2'\n    :email: alan@example.edu\n"
            "  - :name: Grace Hopper\n    :sid: 'A3'\n    :email: grace@example.edu\n"),
        "submission_101/optimization.py": COURSE,
        "submission_102/optimization.py": BUGGY,
    })
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(export), "--out",
                           str(tmp_path / "grades"), "--no-sandbox", "--ops", "momentum,adam"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    book = {row["sid"]: row for row in csv.DictReader(open(tmp_path / "grades" / "gradebook.csv", encoding="utf-8"))}
    assert set(book) == {"A1", "A2", "A3"}  # the group's two members each get the group's row
    assert book["A2"]["score"] == book["A3"]["score"] and book["A2"]["student"] == "Alan Turing + Grace Hopper"
    assert (book["A3"]["name"], book["A3"]["email"], book["A3"]["submission_id"]) == \
        ("Grace Hopper", "grace@example.edu", "102")
    table = _rows(tmp_path / "grades" / "gradescope_scores.csv")
    assert table[0][:3] == GRADESCOPE_ROSTER and len(table) == 4
    assert {row[1]: row[3] for row in table[1:]} == {sid: book[sid]["score"] for sid in book}


def test_grades_go_back_to_moodle_as_its_grading_worksheet(tmp_path):
    export = _zip(tmp_path / "moodle.zip", {"Ada Lovelace_111_assignsubmission_file_/optimization.py": COURSE,
                                           "Alan Turing_222_assignsubmission_file_/work.py": BUGGY})
    rows, done = _grade(tmp_path, export)
    assert done.returncode == 0, done.stderr
    table = _rows(tmp_path / "grades" / "moodle_grading_worksheet.csv")
    assert table[0] == MOODLE_WORKSHEET
    sheet = {row[0]: dict(zip(table[0], row)) for row in table[1:]}
    assert set(sheet) == {"Participant 111", "Participant 222"}
    assert sheet["Participant 111"]["Grade"] == rows["Ada Lovelace"]["score"]
    assert sheet["Participant 222"]["Maximum Grade"] == rows["Alan Turing"]["max_score"]
    assert sheet["Participant 222"]["Feedback comments"]  # the one-line diagnosis
