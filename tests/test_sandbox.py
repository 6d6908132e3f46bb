"""Hostile submissions through ``grade`` and ``check``, in the bubblewrap sandbox.

Each attack is a submission that tries to get marks without the math, forge the
gradebook, damage the grader or its files, leak the grader's secrets, or waste its
time; each test asserts that it gets nothing: no marks, no file outside its
scratch touched, no process left behind, the grader unharmed, the secret absent
from every output.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from optconform.harness.target.sandbox import probe

ROOT = Path(__file__).resolve().parents[1]
COURSE = (ROOT / "examples" / "course" / "course_2021.py").read_text(encoding="utf-8")
SECRET = "optconform-grader-secret-7f3a9"

# CI sets a sandbox up from its own install (.ci/run): there, a missing sandbox fails these tests, never skips them
pytestmark = pytest.mark.skipif(probe() is not None and not os.environ.get("CI"),
                                reason=f"no sandbox on this machine: {probe()}")


def cli(*args, env=None, timeout=600, cwd=None):
    return subprocess.run([sys.executable, "-m", "optconform.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)


def grade(tmp_path, submissions: dict[str, str], *options, env=None):
    """Grade ``{student: source}`` (adam.update only, for speed); the gradebook rows, the out dir, the run."""
    folder = tmp_path / "subs"
    folder.mkdir(exist_ok=True)
    for student, source in submissions.items():
        (folder / f"{student}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    out = tmp_path / "grades"
    done = cli("grade", folder, "--ops", "adam.update", "--out", out, "--timeout", "3", "--jobs", "2", *options,
               env=env)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return rows, out, done


def every_output(out: Path, done) -> str:
    return done.stdout + done.stderr + "".join(p.read_text(encoding="utf-8", errors="replace")
                                               for p in out.rglob("*") if p.is_file())


ADAM_HEADER = "import numpy as np\n"


def test_importing_the_reference_gives_no_marks(tmp_path):
    rows, out, done = grade(tmp_path, {"copycat": """
        try:
            from optconform.reference import *
        except ImportError:
            pass
        try:
            from optconform.reference.ops import adam_update
            def update_parameters_with_adam(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
                return adam_update(p, g, v, s, t, lr, b1, b2, eps)
        except ImportError:
            pass
    """})
    assert rows["copycat"]["score"] == "0", rows
    assert done.returncode == 0


def test_a_classmate_file_and_the_vectors_are_not_there_to_read(tmp_path):
    """Another submission, the repository, the shipped and a private vector set: none is visible inside."""
    private = tmp_path / "private-vectors"
    assert cli("generate", "--seed", "5", "--out", private).returncode == 0
    rows, out, done = grade(tmp_path, {
        "honest": COURSE,
        "snoop": ADAM_HEADER + f"""
import glob, os
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    found = []
    for top in ("/submission", "/opt", "/tmp", "/work", "/root", "/home", "/srv", "/mnt", "/var"):
        for name in ("honest.py", "adam.update.json", "mistakes.py", "catalogue.py", "gradebook.csv"):
            found += glob.glob(f"{{top}}/**/{{name}}", recursive=True)
    cmdline = open("/proc/1/cmdline", "rb").read().decode(errors="replace")
    raise RuntimeError("FOUND:" + repr(found) + " PRIVATE:" + str({str(private)!r} in cmdline))
"""}, "--vectors", private, "--visibility", "visible", "--timeout", "60")
    assert rows["snoop"]["score"] == "0"
    report = json.loads((out / "feedback" / "snoop.json").read_text(encoding="utf-8"))
    messages = {c["message"] for c in report["cases"]}
    assert messages and all("FOUND:[]" in m and "PRIVATE:False" in m for m in messages), messages
    assert rows["honest"]["score"] == rows["honest"]["max_score"]


def test_a_submission_convention_is_ignored_and_said_so(tmp_path):
    inside = COURSE.replace("(np.sqrt(s_corrected[\"dW\" + str(l)]) + epsilon)", "np.sqrt(s_corrected[\"dW\" + str(l)] + epsilon)")
    inside = inside.replace("(np.sqrt(s_corrected[\"db\" + str(l)]) + epsilon)", "np.sqrt(s_corrected[\"db\" + str(l)] + epsilon)")
    assert inside != COURSE
    rows, out, done = grade(tmp_path, {"declares": inside + '\nOPTCONFORM_CONVENTIONS = {"adam.epsilon": "inside_sqrt"}\n'})
    assert int(rows["declares"]["score"]) < int(rows["declares"]["max_score"])
    assert "epsilon-inside-sqrt" in rows["declares"]["diagnosis"]
    feedback = (out / "feedback" / "declares.txt").read_text(encoding="utf-8")
    assert "OPTCONFORM_CONVENTIONS; it was ignored" in feedback


def test_a_detached_process_cannot_forge_the_gradebook_or_outlive_the_sandbox(tmp_path):
    marker = f"optconform-forger-{os.getpid()}"
    rows, out, done = grade(tmp_path, {"forger": ADAM_HEADER + f"""
import os, subprocess, sys
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    code = ("import time, glob\\n"
            "time.sleep(4)\\n"
            "for path in glob.glob('/**/gradebook.csv', recursive=True):\\n"
            "    open(path, 'w').write('student,score\\\\nforger,999\\\\n')\\n")
    subprocess.Popen([sys.executable, "-c", code, "{marker}"], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raise RuntimeError("spawned")
"""})
    assert rows["forger"]["score"] == "0"
    before = (out / "gradebook.csv").read_text(encoding="utf-8")
    time.sleep(6)
    assert (out / "gradebook.csv").read_text(encoding="utf-8") == before
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a process of the submission outlived its sandbox"


def test_killing_its_parent_and_writing_everywhere_harms_nothing(tmp_path):
    home_marker = Path.home() / f"optconform-attack-{os.getpid()}"
    tmp_marker = Path("/tmp") / f"optconform-attack-{os.getpid()}"
    rows, out, done = grade(tmp_path, {
        "honest": COURSE,
        "vandal": ADAM_HEADER + f"""
import os, signal
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    for path in ({str(home_marker)!r}, {str(tmp_marker)!r}, os.path.expanduser("~/x"), "/tmp/x"):
        try:
            open(path, "w").write("vandal")
        except OSError:
            pass
    for target in (os.getppid(), 1):
        try:
            os.kill(target, signal.SIGSTOP)
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    raise RuntimeError("still here")
"""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert rows["honest"]["score"] == rows["honest"]["max_score"]
    assert rows["vandal"]["score"] == "0"
    assert not home_marker.exists() and not tmp_marker.exists()


def test_the_grader_environment_never_reaches_any_output(tmp_path):
    env = {**os.environ, "OPTCONFORM_TEST_SECRET": SECRET}
    rows, out, done = grade(tmp_path, {"leaker": ADAM_HEADER + """
import os
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    seen = dict(os.environ)
    for pid in ("1", str(os.getppid()), "self"):
        try:
            seen[pid] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as error:
            seen[pid] = str(error)
    raise RuntimeError(repr(seen))
"""}, env=env)
    assert rows["leaker"]["score"] == "0"
    assert SECRET not in every_output(out, done)


def test_a_submission_that_dies_on_every_call_is_capped(tmp_path):
    started = time.monotonic()
    rows, out, done = grade(tmp_path, {"crasher": ADAM_HEADER + """
import os
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    os._exit(3)
"""})
    elapsed = time.monotonic() - started
    report = json.loads((out / "feedback" / "crasher.json").read_text(encoding="utf-8"))
    messages = [c["message"] for c in report["cases"]]
    assert sum("ended the program 3 times in a row" in m for m in messages) == len(messages) - 3
    assert elapsed < 60, elapsed


def test_check_runs_a_file_in_the_sandbox(tmp_path):
    path = tmp_path / "whoami.py"
    path.write_text("import os\ndef initialize_velocity(parameters):\n"
                    "    raise RuntimeError(f'uid={os.getuid()} pid={os.getpid()}')\n", encoding="utf-8")
    done = cli("check", path, "--ops", "momentum.init", "--format", "json")
    report = json.loads(done.stdout)
    assert all("uid=65534" in c["message"] for c in report["cases"]), report["cases"][0]["message"]


def test_doctor_describes_the_sandbox():
    done = cli("doctor")
    assert done.returncode == 0 and "uid 65534" in done.stdout and "network" in done.stdout


def test_no_case_selected_is_a_usage_error_not_a_green_run(tmp_path):
    skip = tmp_path / "skip.txt"
    skip.write_text("adam.*\n", encoding="utf-8")
    target = tmp_path / "course.py"
    target.write_text(COURSE, encoding="utf-8")
    done = cli("check", target, "--ops", "adam", "--skip", skip)
    assert done.returncode == 2 and "no case selected" in done.stderr


def test_hidden_cases_never_show_a_value_in_any_output(tmp_path):
    """A private set is hidden: feedback and Gradescope output name the op, the verdict and the mistake only."""
    from optconform.vectors import load_suite

    private = tmp_path / "private"
    assert cli("generate", "--seed", "11", "--out", private).returncode == 0
    assert json.loads((private / "manifest.json").read_text(encoding="utf-8"))["visibility"] == "hidden"
    buggy = COURSE.replace(" / (1 - beta1 ** t)", "")
    assert buggy != COURSE
    rows, out, done = grade(tmp_path, {"buggy": buggy, "printer": ADAM_HEADER + """
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    print(repr(parameters), repr(grads))
    raise ValueError(repr(parameters) + repr(grads))
"""}, "--vectors", private)
    gradescope = tmp_path / "results.json"
    cli("check", tmp_path / "subs" / "printer.py", "--vectors", private, "--ops", "adam.update",
        "--format", "gradescope", "--output", gradescope)
    text = every_output(out, done) + gradescope.read_text(encoding="utf-8")
    secrets = set()  # every element of every array of every hidden Adam case, inputs and expected outputs

    def collect(tree):
        for value in tree.values():
            if isinstance(value, dict):
                collect(value)
            else:
                secrets.update(repr(float(x))[:12] for x in value.ravel() if abs(float(x)) > 1e-3)

    for case in load_suite(private):
        if case.op == "adam.update":
            collect({key: case.inputs[key] for key in ("parameters", "grads", "v", "s") if key in case.inputs})
            collect(case.expected)
    assert len(secrets) > 100 and not [value for value in secrets if value in text]
    assert "only-second-correction" in rows["buggy"]["diagnosis"], rows["buggy"]
    tests = json.loads(gradescope.read_text(encoding="utf-8"))["tests"]
    assert tests and all(test["visibility"] == "after_published" for test in tests)


ATTACKS_FOR_CHECK = {
    "copies the reference": """
        from optconform.reference import *
    """,
    "reads the grader's environment": """
        import os
        def initialize_velocity(parameters):
            raise RuntimeError(repr(dict(os.environ)) + open("/proc/1/environ", "rb").read().decode(errors="replace"))
    """,
    "declares a convention": """
        import numpy as np
        OPTCONFORM_CONVENTIONS = {"adam.epsilon": "inside_sqrt"}
        def initialize_velocity(parameters):
            return {"d" + k: np.ones_like(p) for k, p in parameters.items()}
    """,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS_FOR_CHECK))
def test_attacks_through_check_get_nothing(tmp_path, attack):
    path = tmp_path / "attack.py"
    path.write_text(textwrap.dedent(ATTACKS_FOR_CHECK[attack]), encoding="utf-8")
    env = {**os.environ, "OPTCONFORM_TEST_SECRET": SECRET}
    done = cli("check", path, "--ops", "momentum.init", "--format", "gradescope", "--output", tmp_path / "r.json",
               env=env)
    results = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert results["score"] == 0 and done.returncode != 0
    assert SECRET not in done.stdout + done.stderr + json.dumps(results)


def test_the_memory_limit_is_the_instructors_to_raise(tmp_path):
    hungry = COURSE + """

def initialize_velocity(parameters):
    ballast = np.empty(int(2.5e9 / 8))  # 2.5 GB of address space: over the default 2 GiB (never touched)
    return {"d" + k: np.zeros(p.shape) for k, p in parameters.items()} if ballast.size else None
"""
    (tmp_path / "default").mkdir()
    (tmp_path / "raised").mkdir()
    rows, out, done = grade(tmp_path / "default", {"hungry": hungry}, "--ops", "momentum.init")
    report = json.loads((out / "feedback" / "hungry.json").read_text(encoding="utf-8"))
    assert rows["hungry"]["score"] == "0" and "MemoryError" in report["cases"][0]["message"]
    rows, out, done = grade(tmp_path / "raised", {"hungry": hungry}, "--ops", "momentum.init", "--memory", "5000")
    assert rows["hungry"]["score"] == rows["hungry"]["max_score"]


def test_the_child_a_sandbox_runs_is_compiled_small_and_without_the_vectors_loader(tmp_path):
    """The staged child: every module compiled for this interpreter (a child may not write its own cache and
    would compile them at every start), the vectors package reduced to the codec, and a child serving a
    notebook imports neither nbformat, jsonschema nor the golden vectors' loader."""
    import importlib.util
    import struct

    from optconform.harness.target.staging import staged_child

    root = Path(staged_child())
    sources = sorted(root.rglob("*.py"))
    assert len(sources) >= 8
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        flags, mtime = struct.unpack("<II", cached.read_bytes()[4:12])
        assert flags == 0 and mtime == int(source.stat().st_mtime), source
    assert "load_suite" not in (root / "optconform" / "vectors" / "__init__.py").read_text(encoding="utf-8")
    notebook = ROOT / "examples" / "course" / "course_2018.ipynb"
    probe_child = ("import sys; sys.path[:] = [sys.argv[1], *sys.path, *sys.argv[3:]]; "
                   "from optconform.harness.target.child import main; "
                   "code = main([sys.argv[2]]); "
                   "print(sorted(m for m in ('nbformat', 'jsonschema', 'traceback', 'optconform.reference', "
                   "'pathlib', 'copy') if m in sys.modules), file=sys.stderr)")  # what no child needs costs each one
    from optconform.harness.target.staging import package_dirs

    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe_child, str(root), str(notebook), *package_dirs()],
                          input='{"id": 1, "op": "hello"}\n', capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": ""})
    assert '"ok":true' in done.stdout.replace(" ", ""), (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr


def test_the_sandbox_scratch_is_bounded(tmp_path):
    """/tmp and /dev/shm inside bubblewrap are tmpfs of a fixed size: a submission that writes file after file
    (each under the 64 MiB file limit) runs out of room there, not the grader out of memory."""
    rows, out, done = grade(tmp_path, {"filler": ADAM_HEADER + """
import os
def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    chunk = b"x" * (1 << 20)
    for folder in ("/tmp", "/dev/shm"):
        written = 0
        try:
            for index in range(12):
                with open(f"{folder}/fill{index}", "wb") as handle:
                    for _ in range(32):
                        handle.write(chunk)
                        written += 1
        except OSError as error:
            raise RuntimeError(f"{folder} full after {written} MiB: errno {error.errno}")
    raise RuntimeError("wrote 384 MiB in each")
"""}, "--timeout", "60")
    report = json.loads((out / "feedback" / "filler.json").read_text(encoding="utf-8"))
    messages = {c["message"].split(" (at ")[0] for c in report["cases"] if c["status"] == "error"}
    assert messages and all("full after" in m and "errno 28" in m for m in messages), messages
