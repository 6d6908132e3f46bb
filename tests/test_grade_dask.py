"""grade --executor dask: the same folder graded on a Dask cluster gives the same gradebook as the local pool."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import distributed  # noqa: F401
except ImportError:  # .ci/run installs the [dask] extra: there, a missing Dask fails rather than skips
    if os.environ.get("CI"):
        raise
    pytest.skip("the [dask] extra is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _rows(out: Path) -> list[dict]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def _grade(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                           "--no-sandbox", "--ops", "momentum,adam,mini_batches", *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from distributed import LocalCluster

    scratch = tmp_path_factory.mktemp("dask")  # the workers' scratch space, in pytest's temporary folder
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(scratch)) as local:
        yield local.scheduler_address
    assert not (Path.cwd() / "dask-scratch-space").exists()


def test_dask_grades_a_folder_to_the_same_gradebook_as_the_local_pool(tmp_path, cluster):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(EXAMPLES / "course" / "course_2021.py", folder / "alice.py")
    shutil.copy(EXAMPLES / "buggy_submission.py", folder / "bob.py")
    (folder / "carol.py").write_text("def random_mini_batches(X, Y:\n")  # a syntax error: nothing defined
    local = _grade(folder, tmp_path / "local")
    on_dask = _grade(folder, tmp_path / "dask", "--executor", "dask", "--scheduler", cluster)
    assert local.returncode == on_dask.returncode == 0, on_dask.stderr
    rows = _rows(tmp_path / "dask")
    assert rows == _rows(tmp_path / "local")
    by_student = {row["student"]: row for row in rows}
    assert by_student["alice"]["status"] == "ok" and by_student["alice"]["score"] == by_student["alice"]["max_score"]
    assert by_student["bob"]["status"] == "ok" and int(by_student["bob"]["score"]) < int(by_student["bob"]["max_score"])
    assert by_student["carol"]["score"] == "0"  # nothing defined: every case not implemented
    feedback = sorted(p.name for p in (tmp_path / "dask" / "feedback").iterdir())
    assert feedback == sorted(p.name for p in (tmp_path / "local" / "feedback").iterdir())
    assert (tmp_path / "dask" / "feedback" / "bob.txt").read_text() == \
        (tmp_path / "local" / "feedback" / "bob.txt").read_text()


def test_dask_without_a_scheduler_or_with_a_dead_one_is_a_usage_error(tmp_path):
    shutil.copy(EXAMPLES / "buggy_submission.py", tmp_path / "bob.py")
    done = _grade(tmp_path / "bob.py", tmp_path / "out", "--executor", "dask")
    assert done.returncode == 2 and "--executor dask needs --scheduler" in done.stderr
    done = _grade(tmp_path / "bob.py", tmp_path / "out2", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
