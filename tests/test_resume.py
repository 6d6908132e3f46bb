"""grade resumes: unchanged files keep their results, changed ones are graded again, gone ones are removed."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def grade(folder: Path, out: Path, *extra: str, stdout: list | None = None) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                           "--no-sandbox", "--ops", "momentum,adam", *extra], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    if stdout is not None:
        stdout.append(done.stdout)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return rows, done.stderr


def test_a_rerun_grades_only_what_changed_and_removes_who_left(tmp_path):
    folder, out = tmp_path / "class", tmp_path / "grades"
    folder.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "alice.py")
    shutil.copy(EXAMPLES / "buggy_submission.py", folder / "bob.py")
    shutil.copy(EXAMPLES / "course" / "course_2017.py", folder / "carol.py")
    first, said = grade(folder, out)
    assert "unchanged" not in said and sorted(p.name for p in (out / "results").iterdir()) == [
        "alice.json", "bob.json", "carol.json"]

    printed = []
    again, said = grade(folder, out, stdout=printed)
    assert "3 submission(s) unchanged since the last run" in said
    assert "nothing changed since the last run: 3 submissions kept: 3 ok" in printed[0]  # not "graded 3"
    assert "graded 3" not in printed[0]
    strip = lambda rows: {s: {k: v for k, v in r.items() if k != "seconds"} for s, r in rows.items()}  # noqa: E731
    assert strip(again) == strip(first)

    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "bob.py")  # bob fixes his code
    (folder / "carol.py").unlink()  # carol withdraws
    fixed, said = grade(folder, out, stdout=printed)
    assert "1 submission(s) unchanged" in said  # alice only
    assert "graded 1 submission (1 kept from the last run): 2 ok" in printed[1]
    assert fixed["bob"]["score"] == fixed["bob"]["max_score"] != first["bob"]["score"]
    assert set(fixed) == {"alice", "bob"}
    assert "removed the feedback of 1 student(s) no longer among the submissions: carol" in said
    assert not (out / "feedback" / "carol.txt").exists() and not (out / "results" / "carol.json").exists()

    _, said = grade(folder, out, "--force")
    assert "unchanged" not in said
    _, said = grade(folder, out, "--dtype", "float32")  # another set-up: nothing reused
    assert "unchanged" not in said


def test_a_result_file_that_does_not_read_is_graded_again(tmp_path):
    folder, out = tmp_path / "class", tmp_path / "grades"
    folder.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "alice.py")
    grade(folder, out)
    (out / "results" / "alice.json").write_text("{ not json")
    rows, said = grade(folder, out)
    assert "unchanged" not in said and rows["alice"]["score"] == rows["alice"]["max_score"]
