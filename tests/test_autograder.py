"""The Gradescope autograder: built by `optconform autograder`, run as Gradescope runs it, on good, buggy,
broken and hanging submissions; results.json is always written and always valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope_results.schema.json").read_text())

CONFIG = """ops = ["momentum", "adam"]
timeout = 1
[points]
partial_credit = "proportional"
[points.ops]
momentum = 40
adam = 60
"""

HANGING = (EXAMPLES / "course" / "course_2021.py").read_text() + """

def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    while True:
        pass
"""


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assignment")
    (folder / "optconform.toml").write_text(CONFIG)
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "autograder", "--out", "autograder.zip"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "autograder.zip"


def _grade(autograder: Path, tmp_path: Path, files: dict) -> dict:
    """Unpack the zip into a tree shaped like Gradescope's, put the submission in, run run_autograder."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(root / "source")
    (root / "submission").mkdir()
    for name, content in files.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    env = {**os.environ, "OPTCONFORM_AUTOGRADER_ROOT": str(root), "OPTCONFORM_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root / "source", env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    return results


def test_the_zip_holds_what_gradescope_needs(autograder):
    with zipfile.ZipFile(autograder) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "optconform.toml"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert "optconform" in setup and "bubblewrap" in setup


def test_a_correct_submission_scores_full_points(autograder, tmp_path):
    results = _grade(autograder, tmp_path, {"optimization.py": (EXAMPLES / "course" / "course_2021.py").read_text()})
    assert results["score"] == 100 and results["max_score"] == 100
    groups = {t["name"]: t for t in results["tests"] if t["name"].startswith("points:")}
    assert groups["points: op momentum"]["score"] == 40 and groups["points: op adam"]["score"] == 60


def test_a_buggy_notebook_in_a_folder_is_found_and_its_mistake_named(autograder, tmp_path):
    notebook = (EXAMPLES / "course" / "course_2018.ipynb").read_text().replace("/ (1 - beta1**t)", "")
    notebook = notebook.replace("/(1-beta1**t)", "").replace("/ (1 - np.power(beta1, t))", "")
    results = _grade(autograder, tmp_path, {"work/Optimization.ipynb": notebook, "work/helpers.py": "X = 1\n"})
    assert 40 <= results["score"] < 100
    assert "Graded work/Optimization.ipynb" in results["output"] and "set aside: work/helpers.py (0)" in results["output"]
    adam = next(t for t in results["tests"] if t["name"] == "update_parameters_with_adam")
    # the first correction removed: the function's test names that mistake, once
    assert "match a known mistake: only the second bias correction" in adam["output"]
    assert adam["output"].count("[only-second-correction]") == 1


def test_a_broken_or_missing_submission_still_gets_a_results_file(autograder, tmp_path):
    broken = _grade(autograder, tmp_path / "a", {"sub.ipynb": b"{not json"})
    assert broken["score"] == 0 and "not a notebook" in json.dumps(broken)
    empty = _grade(autograder, tmp_path / "b", {"notes.txt": "I did not finish"})
    assert empty["score"] == 0 and "no .py or .ipynb file" in empty["output"]
    assert empty["max_score"] == 100  # the LMS still sees the assignment's total, and what it asks for
    functions = {t["name"] for t in empty["tests"] if not t["name"].startswith("points:")}
    assert {"update_parameters_with_adam", "initialize_velocity"} <= functions


def test_a_hanging_submission_is_cut_short_and_graded(autograder, tmp_path):
    results = _grade(autograder, tmp_path, {"sub.py": HANGING})
    groups = {t["name"]: t for t in results["tests"] if t["name"].startswith("points:")}
    assert groups["points: op momentum"]["score"] == 40  # momentum right ...
    assert groups["points: op adam"]["score"] < 60  # ... every Adam update timed out or was capped (init passes)
    assert results["score"] == groups["points: op momentum"]["score"] + groups["points: op adam"]["score"]
    assert any("timed out" in t.get("output", "") for t in results["tests"])
    assert results["execution_time"] < 120
