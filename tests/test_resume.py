"""grade resumes: unchanged files keep their results, changed ones are graded again, gone ones are removed."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
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


def test_an_interrupted_run_keeps_what_it_graded_and_the_same_command_grades_the_rest(tmp_path):
    folder, out = tmp_path / "class", tmp_path / "grades"
    folder.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "alice.py")
    shutil.copy(EXAMPLES / "buggy_submission.py", folder / "bob.py")
    hanging = (EXAMPLES / "course" / "course_2021.py").read_text(encoding="utf-8").replace(
        "def update_parameters_with_adam(", "def update_parameters_with_adam(*a, **k):\n    while True:\n"
        "        pass\n\n\ndef _unused_adam(", 1)
    (folder / "zed.py").write_text(hanging, encoding="utf-8")
    command = [sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out), "--no-sandbox",
               "--ops", "momentum,adam", "--jobs", "1", "--timeout", "30"]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group, as a terminal's Ctrl-C reaches it
    deadline = time.monotonic() + 300
    while not (out / "results" / "bob.json").exists():  # alice and bob are graded; zed hangs
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(running.pid, signal.SIGINT)
    _, said = running.communicate(timeout=120)
    assert running.returncode == 130, said
    assert "the results of 2 graded submission(s) are kept" in said and "the same command grades the rest" in said
    assert sorted(p.name for p in (out / "results").iterdir()) == ["alice.json", "bob.json"]
    assert (out / "feedback" / "alice.txt").exists() and not (out / "feedback" / "zed.txt").exists()

    (folder / "zed.py").write_text(hanging.replace("    while True:\n        pass\n", "    return None\n"),
                                   encoding="utf-8")
    rows, said = grade(folder, out, "--jobs", "1", "--timeout", "30")  # the same command
    assert "2 submission(s) unchanged since the last run" in said
    assert set(rows) == {"alice", "bob", "zed"} and rows["alice"]["score"] == rows["alice"]["max_score"]
