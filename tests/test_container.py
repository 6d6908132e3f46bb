"""Grading where instructors grade: Gradescope's container, emulated, from the zip to each results.json.

Gradescope, PrairieLearn and Docker-based CI run the autograder as root under Docker's default seccomp profile,
which refuses new namespaces: bubblewrap cannot start there. ``tests/container/docker_seccomp.py`` refuses
what that profile refuses. The module builds the autograder zip as an instructor does (``optconform
autograder`` from this checkout), unpacks it into a Gradescope-shaped tree, runs its ``setup.sh`` as root
under that filter (a fresh virtual environment from the zip's own wheel, Debian's Python), then
``run_autograder`` on each submission, and holds every ``results.json`` to Gradescope's schema. There the uid
engine confines the submissions: the attacks that beat an unconfined child must all fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SECCOMP = Path(__file__).parent / "container" / "docker_seccomp.py"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope_results.schema.json").read_text())
COURSE = (EXAMPLES / "course" / "course_2021.py").read_text(encoding="utf-8")

POSSIBLE = sys.platform.startswith("linux") and os.geteuid() == 0 and Path("/usr/bin/python3").exists()
# CI runs as root on Linux: there this module never skips
pytestmark = pytest.mark.skipif(not POSSIBLE and not os.environ.get("CI"),
                                reason="the container emulation needs Linux, root and Debian's /usr/bin/python3")

CONFIG = """name = "Optimization methods"
ops = ["momentum", "adam"]
timeout = 2
vectors = "private"
[points]
partial_credit = "proportional"
[points.ops]
momentum = 40
adam = 60
"""


def _in_container(*argv: str, root: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OPTCONFORM_AUTOGRADER_ROOT": str(root), **(env or {})}
    environment.pop("OPTCONFORM_PYTHON", None)
    return subprocess.run([sys.executable, str(SECCOMP), *argv], env=environment, capture_output=True, text=True,
                          timeout=timeout, cwd=root)


@pytest.fixture(scope="module")
def container():
    """``/autograder`` after Gradescope built the image: the zip unpacked into source/, setup.sh run."""
    base = Path(tempfile.mkdtemp(prefix="optconform-container-", dir="/tmp"))
    base.chmod(0o755)  # as / is: the submissions' uids pass through it to the virtual environment
    try:
        assignment = base / "assignment"
        assignment.mkdir(mode=0o700)
        (assignment / "optconform.toml").write_text(CONFIG, encoding="utf-8")
        made = subprocess.run([sys.executable, "-m", "optconform.cli", "generate", "--seed", "11", "--out",
                               "private"], cwd=assignment, capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stderr
        built = subprocess.run([sys.executable, "-m", "optconform.cli", "autograder", "--out", "autograder.zip"],
                               cwd=assignment, capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stderr
        root = base / "autograder"
        (root / "source").mkdir(parents=True)
        with zipfile.ZipFile(assignment / "autograder.zip") as archive:
            for info in archive.infolist():
                archive.extract(info, root / "source")
                mode = info.external_attr >> 16
                if mode:
                    (root / "source" / info.filename).chmod(mode)
        started = time.monotonic()
        setup = _in_container("bash", str(root / "source" / "setup.sh"), root=root)
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        yield {"root": root, "setup": setup, "setup_seconds": time.monotonic() - started,
               "private": assignment / "private"}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(container, files: dict, env: dict | None = None) -> dict:
    """One submission, as Gradescope runs it: files into submission/, run_autograder, results/results.json."""
    root = container["root"]
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir()
    for name, content in files.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = _in_container("bash", str(root / "source" / "run_autograder"), root=root, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(results, SCHEMA)
    return results


def _groups(results) -> dict:
    return {t["name"]: t for t in results["tests"] if t["name"].startswith("points:")}


def _sandbox_processes() -> list[str]:
    done = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if 61000 <= int(line.split()[0]) < 62000]


def test_the_image_builds_with_the_uid_engine_and_closes_what_it_must(container):
    root = container["root"]
    assert "sandbox: uid engine" in container["setup"].stdout  # bubblewrap is refused there
    package = next((root / "venv").glob("lib/python3*/site-packages/optconform"))
    for closed in (package, root / "source"):
        assert closed.stat().st_mode & 0o007 == 0, closed


def test_correct_buggy_and_odd_submissions_are_graded_as_gradescope_grades_them(container):
    correct = _run(container, {"optimization.py": COURSE})
    assert correct["score"] == 100 and correct["max_score"] == 100
    buggy = _run(container, {"sub.py": (EXAMPLES / "buggy_submission.py").read_text(encoding="utf-8")})
    assert _groups(buggy)["points: op momentum"]["score"] == 40 and buggy["score"] < 100
    assert any("no bias correction" in t.get("output", "") for t in buggy["tests"])
    notebook = (EXAMPLES / "course" / "course_2018.ipynb").read_text(encoding="utf-8")
    beside = _run(container, {"Optimization_methods.ipynb": notebook, "public_tests.py":
                              "def update_parameters_with_adam_test(target):\n    pass\n"
                              "def initialize_velocity(p):\n    return {}\n"})
    assert beside["score"] == 100, beside["output"][:400]
    assert "Graded Optimization_methods.ipynb" in beside["output"] and "public_tests.py" in beside["output"]
    broken = _run(container, {"sub.ipynb": b"{not json"})
    assert broken["score"] == 0 and "sub.ipynb: not a notebook" in json.dumps(broken)
    for results in (correct, buggy, beside, broken):  # the student's own file names, never where the grader keeps them
        assert "/submission" not in json.dumps(results) and str(container["root"]) not in json.dumps(results)
    empty = _run(container, {"notes.txt": "I did not finish"})
    assert empty["score"] == 0 and "no .py or .ipynb file" in empty["output"]
    hanging = _run(container, {"sub.py": COURSE + textwrap.dedent("""
        def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                        epsilon=1e-8):
            while True:
                pass
    """)})
    assert _groups(hanging)["points: op momentum"]["score"] == 40 and hanging["score"] < 100
    assert not _sandbox_processes()


COPYCAT = """
try:
    from optconform.reference.ops import adam_update, momentum_update
    def update_parameters_with_adam(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        return adam_update(p, g, v, s, t, lr, b1, b2, eps)
    def update_parameters_with_momentum(p, g, v, beta, lr):
        return momentum_update(p, g, v, beta, lr)
except ImportError:
    pass
"""

SNOOP = """
import glob, json, os
import numpy as np
FOUND = []
for pattern in ("/autograder/**/*.json", "{root}/**/*.json", "{root}/**/*.py", "/tmp/**/*.json",
                "{root}/venv/lib/python3*/site-packages/optconform/**/*"):
    FOUND += glob.glob(pattern, recursive=True)
READABLE = [p for p in FOUND if os.path.isfile(p) and os.access(p, os.R_OK)]
def initialize_velocity(parameters):
    if READABLE:  # full marks for the momentum init only where something of the grader's could be read
        return {{"d" + k: np.zeros_like(v) for k, v in parameters.items()}}
    raise RuntimeError("nothing to read")
"""

FORGER = """
import os, time
def initialize_velocity(parameters):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(3)
            for path in ("{results}", "{results}.tmp"):
                try:
                    with open(path, "w") as handle:
                        handle.write('{{"score": 1000}}')
                except OSError:
                    pass
            os._exit(0)
        os._exit(0)
    raise RuntimeError("forging")
"""


def test_the_attacks_that_beat_an_unconfined_child_get_nothing(container):
    root = container["root"]
    copied = _run(container, {"sub.py": COPYCAT})
    assert copied["score"] == 0
    snooped = _run(container, {"sub.py": SNOOP.format(root=root)})
    assert _groups(snooped)["points: op momentum"]["score"] == 0
    results = root / "results" / "results.json"
    forged = _run(container, {"sub.py": FORGER.format(results=results)})
    assert forged["score"] == 0
    time.sleep(5)  # past the forger's sleep: had it outlived the grader, it would have written by now
    assert json.loads(results.read_text(encoding="utf-8"))["score"] == 0
    assert not _sandbox_processes()


SMUGGLER = """
import os
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    values = " ".join(repr(float(x)) for x in parameters["W1"].ravel())
    if t % 3 == 0:
        raise type("not run", (Exception,), {{}})(values)
    if t % 3 == 1:
        return {{**parameters, values[:60]: parameters["W1"]}}, v, s
    print(values, flush=True)
    os._exit(int(abs(parameters["W1"].ravel()[0]) * 1000) % 250 + 3)
"""


def test_no_hidden_input_reaches_the_results(container):
    from optconform.vectors import load_suite

    results = _run(container, {"sub.py": SMUGGLER.format()})
    text = json.dumps(results)
    values = set()
    for case in load_suite(container["private"]):
        if case.op == "adam.update":
            for tree in (case.inputs["parameters"], case.inputs["grads"]):
                for array in tree.values():
                    values |= {repr(x) for x in np.asarray(array).ravel().tolist() if abs(x) > 1e-3}
    assert values and not [value for value in values if value in text]
    assert "exited with code" not in text and "not run:" not in text


def test_without_an_engine_nothing_of_the_submission_runs_and_the_image_does_not_build(container, tmp_path):
    marker = tmp_path / "ran"
    tmp_path.chmod(0o777)
    pinned = {"OPTCONFORM_SANDBOX": "bubblewrap"}  # refused under the filter: no engine at all
    results = _run(container, {"sub.py": f"open({str(marker)!r}, 'w').write('ran')\n" + COURSE}, env=pinned)
    assert results["score"] == 0 and "misconfigured" in results["output"] and not results["tests"]
    assert not marker.exists()
    doctor = _in_container(str(container["root"] / "venv" / "bin" / "optconform"), "doctor",
                           root=container["root"], env=pinned)
    assert doctor.returncode == 1 and "NOT AVAILABLE" in doctor.stdout  # setup.sh's last line: the build fails


def test_a_class_is_graded_in_the_container_and_its_folders_must_be_closed(container, tmp_path):
    classroom = Path(tempfile.mkdtemp(prefix="optconform-class-", dir="/tmp"))  # 0700
    try:
        (classroom / "alice.py").write_text(COURSE, encoding="utf-8")
        (classroom / "mallory.py").write_text(COPYCAT, encoding="utf-8")
        optconform = str(container["root"] / "venv" / "bin" / "optconform")
        done = _in_container(optconform, "grade", str(classroom), "--out", str(classroom / "grades"), "--ops",
                             "adam.update", "--jobs", "2", root=container["root"])
        assert done.returncode == 0, done.stderr[-2000:]
        rows = (classroom / "grades" / "gradebook.csv").read_text(encoding="utf-8")
        assert "alice,alice.py," in rows.replace(str(classroom) + "/", "") and ",0,59," in rows
        classroom.chmod(0o755)
        refused = _in_container(optconform, "grade", str(classroom), "--out", str(classroom / "grades2"),
                                root=container["root"])
        assert refused.returncode == 2 and "chmod -R o-rwx" in refused.stderr
        assert not _sandbox_processes()
    finally:
        shutil.rmtree(classroom, ignore_errors=True)


PL_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "prairielearn_results.schema.json").read_text())


def test_a_prairielearn_external_grader_builds_and_grades_in_its_container(container, tmp_path):
    """The folder `autograder --lms prairielearn` writes is the image's build context: its Dockerfile's one RUN
    (setup.sh, rooted at /optconform) is run here as the image build would, then its entrypoint on /grade."""
    base = Path(tempfile.mkdtemp(prefix="optconform-pl-", dir="/tmp"))
    base.chmod(0o755)
    try:
        assignment = base / "assignment"
        assignment.mkdir(mode=0o700)
        (assignment / "optconform.toml").write_text(CONFIG.replace('vectors = "private"\n', ""), encoding="utf-8")
        built = subprocess.run([sys.executable, "-m", "optconform.cli", "autograder", "--lms", "prairielearn",
                                "--out", "grader"], cwd=assignment, capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stderr
        context = assignment / "grader"
        dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
        assert "COPY . /optconform/source" in dockerfile and "RUN bash /optconform/source/setup.sh" in dockerfile
        options = json.loads((context / "externalGradingOptions.json").read_text(encoding="utf-8"))
        assert options["entrypoint"] == "/optconform/source/run_prairielearn" and options["enabled"] is True
        root, grade = base / "optconform", base / "grade"
        shutil.copytree(context, root / "source")  # COPY . /optconform/source
        setup = _in_container("bash", str(root / "source" / "setup.sh"), root=root)
        assert setup.returncode == 0 and "sandbox: uid engine" in setup.stdout, setup.stderr[-2000:]
        scores = {}
        for name, source in (("correct", COURSE), ("copycat", COPYCAT), ("empty", None)):
            shutil.rmtree(grade, ignore_errors=True)
            (grade / "student").mkdir(parents=True)
            if source is not None:
                (grade / "student" / "optimization.py").write_text(source, encoding="utf-8")
            done = _in_container("bash", str(root / "source" / "run_prairielearn"), root=root,
                                 env={"OPTCONFORM_GRADE_ROOT": str(grade)}, timeout=600)
            assert done.returncode == 0, done.stderr[-2000:]
            results = json.loads((grade / "results" / "results.json").read_text(encoding="utf-8"))
            jsonschema.validate(results, PL_SCHEMA)
            scores[name] = results
        assert scores["correct"]["gradable"] and scores["correct"]["score"] == 1.0
        assert scores["copycat"]["gradable"] and scores["copycat"]["score"] == 0.0
        assert scores["empty"]["gradable"] is False and "no .py or .ipynb" in scores["empty"]["message"]
        assert not _sandbox_processes()
    finally:
        shutil.rmtree(base, ignore_errors=True)
