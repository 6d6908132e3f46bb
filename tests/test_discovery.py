"""Finding a class's submissions, as a hostile student or a hostile export would have it found.

A symlink to a classmate's file, two students sharing one file, names alike in their first hundred characters,
a zip in a class folder, an export member no file system can hold: each costs at most its own row, a student is
never dropped in silence, and grading always ends with a gradebook for everyone.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from optconform.harness.grading.submissions import expand_submissions, safe_name

ROOT = Path(__file__).resolve().parent.parent
COURSE = (ROOT / "examples" / "course" / "course_2021.py").read_text(encoding="utf-8")


def _grade(folder: Path, out: Path) -> tuple[dict, subprocess.CompletedProcess]:
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                           "--no-sandbox", "--ops", "adam.init"], capture_output=True, text=True, timeout=300)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}, done


def test_a_symlink_to_a_classmates_file_takes_nothing_and_drops_no_one(tmp_path):
    (tmp_path / "class" / "zoe").mkdir(parents=True)
    (tmp_path / "class" / "zoe" / "hw.py").write_text(COURSE, encoding="utf-8")
    (tmp_path / "class" / "aaron").mkdir()
    (tmp_path / "class" / "aaron" / "hw.py").symlink_to("../zoe/hw.py")
    (tmp_path / "class" / "mallory.py").symlink_to("zoe/hw.py")
    rows, done = _grade(tmp_path / "class", tmp_path / "grades")
    assert done.returncode == 0, done.stderr
    assert rows["zoe"]["score"] == rows["zoe"]["max_score"] != "0"
    for cheat in ("aaron", "mallory"):
        assert rows[cheat]["score"] == "0" and rows[cheat]["status"] == "load_error", rows[cheat]
        assert "symbolic link" in rows[cheat]["diagnosis"]


def test_two_students_sharing_one_file_are_both_flagged(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "bob.py").write_text(COURSE, encoding="utf-8")
    os.link(folder / "bob.py", folder / "carol.py")  # one file, two names
    found, errors = expand_submissions([str(folder)])
    by_student = {s.student: s for s in found}
    assert set(by_student) == {"bob", "carol"} and not errors
    assert "same file as carol's" in by_student["bob"].problem
    assert "same file as bob's" in by_student["carol"].problem


def test_names_alike_in_their_first_hundred_characters_are_graded_apart(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    stem = "a" * 120
    for suffix in ("1", "2"):
        (folder / f"{stem}{suffix}.py").write_text(COURSE, encoding="utf-8")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / f"{stem}1.py").write_text(COURSE, encoding="utf-8")  # a namesake: -2
    found, _ = expand_submissions([str(folder), str(tmp_path / "other")])
    names = [safe_name(s.student) for s in found]
    assert len(found) == 3 and len(set(n.lower() for n in names)) == 3 and all(len(n) <= 100 for n in names)
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), str(tmp_path / "other"),
                           "--out", str(tmp_path / "grades"), "--no-sandbox", "--ops", "adam.init"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "grades" / "feedback").glob("*.txt"))) == 3


def test_a_zip_in_a_class_folder_is_that_students_files(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(COURSE, encoding="utf-8")
    with zipfile.ZipFile(folder / "bob.zip", "w") as archive:
        archive.writestr("work/optimization.py", COURSE)
        archive.writestr("work/notes.txt", "done")
    with zipfile.ZipFile(folder / "carol.zip", "w") as archive:
        archive.writestr("notes.txt", "I did not finish")
    rows, done = _grade(folder, tmp_path / "grades")
    assert done.returncode == 0, done.stderr
    assert rows["bob"]["score"] == rows["bob"]["max_score"] == rows["alice"]["score"]
    assert rows["carol"]["status"] == "load_error" and "no .py or .ipynb file" in rows["carol"]["diagnosis"]


def test_an_export_member_no_file_system_can_hold_costs_only_itself(tmp_path):
    export = tmp_path / "canvas.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("lovelaceada_12345_67890_optimization.py", COURSE)
        archive.writestr("turingalan_23456_78901_" + "é" * 150 + ".py", COURSE)  # 300 bytes of UTF-8
        archive.writestr("hopper_34567_89012_a", "a file ...")
        archive.writestr("hopper_34567_89012_a/b.py", COURSE)  # ... and a folder of the same name
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(export), "--out",
                           str(tmp_path / "grades"), "--no-sandbox", "--ops", "adam.init"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "cannot be unpacked" in done.stderr
    with open(tmp_path / "grades" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert rows["lovelaceada"]["score"] == rows["lovelaceada"]["max_score"]
