"""Warm starts: sandboxed children forked by one zygote, each as alone as a fresh sandbox's.

Every test here drives real sessions in the bubblewrap sandbox. A child reports what it finds
through the one channel a call has back, its error message.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from optconform.harness.target import bubblewrap, warm
from optconform.harness.target.contract import CallFailed
from optconform.harness.target.program import Started
from optconform.harness.target.sandbox import engine
from optconform.harness.target.session import file_session

ROOT = Path(__file__).resolve().parents[1]

# CI sets bubblewrap up (.ci/run): there, a missing sandbox fails these tests, never skips them
pytestmark = [pytest.mark.skipif(engine()[0] != "bubblewrap" and not os.environ.get("CI"),
                                 reason=f"no bubblewrap sandbox here: {engine()}"),
              # JAX, imported by an earlier test of the run, warns at every fork: subprocess execs at once
              pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")]

ARGS = {"parameters": {"W1": np.ones((2, 2)), "b1": np.zeros((2, 1))},
        "grads": {"dW1": np.ones((2, 2)), "db1": np.ones((2, 1))}, "learning_rate": 0.1}


def reported(folder: Path, name: str, body: str) -> str:
    """What a submission's ``update_parameters_with_gd`` finds (``body`` sets ``found``), from its own sandbox."""
    path = folder / f"{name}.py"
    path.write_text("import os, signal, subprocess, sys, time\n"
                    "def update_parameters_with_gd(parameters, grads, learning_rate):\n"
                    + textwrap.indent(textwrap.dedent(body), "    ")
                    + "    raise RuntimeError('found: ' + repr(found))\n", encoding="utf-8")
    session = file_session(str(path), 10.0, "required")
    try:
        session.call("gd.update", ARGS)
    except CallFailed as failure:
        return str(failure)
    finally:
        session.close()
    raise AssertionError("the probe returned instead of reporting")


@pytest.fixture()
def zygotes():
    """This process's zygotes, none at the start and none after (nor any count of those lost)."""
    warm.close_all()
    warm._REFUSED.clear()
    warm._LOST.clear()
    yield warm._ZYGOTES
    warm.close_all()
    warm._REFUSED.clear()
    warm._LOST.clear()


def test_children_are_forked_from_one_warm_zygote_and_answer_as_fresh_ones(tmp_path, zygotes, monkeypatch):
    source = (ROOT / "examples" / "course" / "course_2021.py").read_text(encoding="utf-8")
    answers, kinds, parents = [], [], set()
    for name in ("first", "second"):
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
        session = file_session(str(tmp_path / f"{name}.py"), 10.0, "required")
        kinds.append(type(session.program.process))
        parents.add(id(session.program.process.zygote))
        answers.append(session.call("gd.update", ARGS)[0])
        session.close()
    monkeypatch.setenv("OPTCONFORM_WARM_START", "0")
    fresh = file_session(str(tmp_path / "first.py"), 10.0, "required")
    kinds.append(type(fresh.program.process))
    answers.append(fresh.call("gd.update", ARGS)[0])
    fresh.close()
    assert kinds == [warm.Forked, warm.Forked, Started]
    assert len(parents) == 1
    for answer in answers[1:]:
        for key in answer["parameters"]:
            assert np.array_equal(answer["parameters"][key], answers[0]["parameters"][key])


def test_what_a_child_leaves_behind_is_gone_before_the_next_child(tmp_path, zygotes, started):
    left = reported(tmp_path, "litterer", """
        code = "import time\\nwhile True:\\n    open('/tmp/spy', 'a').write('x')\\n    time.sleep(0.01)\\n"
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        os.mkdir("/tmp/deep")
        os.chdir("/tmp/deep")
        for _ in range(300):  # deeper than Python may recurse
            os.mkdir("d")
            os.chdir("d")
        os.chdir("/tmp")
        os.chmod("/tmp/deep", 0)
        for path in ("/tmp/left", "/dev/shm/left", "/submission/left"):
            open(path, "w").write("left")
        refused = []
        for path in ("/left", "/dev/left", "/opt/left", "/etc/ld.so.preload"):
            try:
                open(path, "w").write("/tmp/spy.so\\n")
            except OSError:
                refused.append(path)
        time.sleep(0.1)
        found = (sorted(os.listdir("/tmp")), refused)
    """)
    assert "spy" in left and "left" in left  # what the first child did, it could do
    assert "['/left', '/dev/left', '/opt/left', '/etc/ld.so.preload']" in left  # the rest is read-only
    found = reported(tmp_path, "next", """
        time.sleep(0.1)
        found = ([n for n in os.listdir("/proc") if n.isdigit() and int(n) not in (1, os.getpid(), os.getppid())],
                 [p for p in ("/tmp/spy", "/tmp/left", "/tmp/deep", "/dev/shm/left", "/submission/left")
                  if os.path.lexists(p)], sorted(os.listdir("/submission")))
    """)
    assert "found: ([], [], ['next.py'])" in found
    assert len(started) == 1  # swept, not ended: the next child had the same warm start


def test_a_child_cannot_reach_the_zygotes_memory_or_descriptors(tmp_path, zygotes):
    found = reported(tmp_path, "prober", """
        zygote, found = f"/proc/{os.getppid()}", []
        for reach in (lambda: open(zygote + "/mem", "r+b").read(1), lambda: open(zygote + "/environ", "rb").read(1),
                      lambda: open(zygote + "/maps", "rb").read(1), lambda: os.readlink(zygote + "/cwd"),
                      *[lambda fd=fd: os.readlink(f"{zygote}/fd/{fd}") for fd in os.listdir(zygote + "/fd")],
                      *[lambda fd=fd: open(f"{zygote}/fd/{fd}", "rb") for fd in os.listdir(zygote + "/fd")]):
            try:
                reach()
                found.append("reached")
            except OSError as error:
                found.append(type(error).__name__)
    """)
    reaches = eval(found[found.index("found: ") + 7:found.index("]") + 1])  # our own repr of a list
    assert len(reaches) >= 4 + 2 * 4 and set(reaches) == {"PermissionError"}, found


@pytest.fixture()
def started(monkeypatch):
    """Every zygote started during the test, in order."""
    made, start = [], warm.Zygote.__init__

    def recorded(self, *args, **kwargs):
        made.append(self)
        start(self, *args, **kwargs)

    monkeypatch.setattr(warm.Zygote, "__init__", recorded)
    return made


def test_a_child_that_ends_the_zygote_costs_only_the_warm_start(tmp_path, zygotes, started):
    ended = reported(tmp_path, "killer", """
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(1)
        found = "the zygote lives"
    """)
    assert "killed by SIGKILL during the call" in ended
    found = reported(tmp_path, "after", "found = sorted(os.listdir('/submission'))\n")
    assert "found: ['after.py']" in found
    assert len(started) >= 2 and all(zygote.process.poll() is not None for zygote in started[:-1])


def test_zygotes_that_keep_ending_leave_the_rest_to_fresh_sandboxes(tmp_path, zygotes, started):
    for _ in range(warm.MAX_LOST):
        assert "killed by SIGKILL" in reported(tmp_path, "killer", "os.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(5)\n")
    assert os.getpid() in warm._REFUSED and len(started) >= warm.MAX_LOST
    before = len(started)
    found = reported(tmp_path, "after", "found = (os.getppid(), sorted(os.listdir('/submission')))\n")
    assert "found: (1, ['after.py'])" in found  # a fresh sandbox's child: its parent is the sandbox's init
    assert len(started) == before


#: what a child leaves that the zygote cannot put back: (the leaver's code, the next child's test that it is there)
LEFT_UNSWEPT = {
    "a System V segment": ("import ctypes\nfound = ctypes.CDLL(None).shmget(0, 4096, 0o1600)\n",
                           "found = len(open('/proc/sysvipc/shm').read().splitlines()) > 1\n"),
    "a folder the sandbox was made with, opened to all": ("os.chmod('/tmp', 0o777)\nfound = 1\n",
                                                          "found = os.stat('/tmp').st_mode & 0o777 == 0o777\n"),
    "folders deeper than a path": (("os.chdir('/tmp')\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n"
                                    "found = 1\n"), "found = 'd' in os.listdir('/tmp')\n"),
}


@pytest.mark.parametrize("leftover", sorted(LEFT_UNSWEPT))
def test_what_cannot_be_put_back_ends_its_sandbox(tmp_path, zygotes, started, leftover):
    leave, look = LEFT_UNSWEPT[leftover]
    made = reported(tmp_path, "leaver", leave)
    assert "found: -1" not in made and "found: " in made  # it was made
    found = reported(tmp_path, "after", look)
    assert "found: False" in found  # gone with the old sandbox
    assert len(started) == 2 and started[0].process.poll() is not None


#: a key in the user's keyring (``add_key``), which expires in 5 s (``keyctl(KEYCTL_SET_TIMEOUT)``)
KEY = ("import ctypes\nfound = ctypes.CDLL(None).syscall(248, b'user', b'note', b'to the next', 11, -4)\n"
       "ctypes.CDLL(None).syscall(250, 15, found, 5)\n")


@pytest.mark.skipif(not bubblewrap._prologue() and not os.environ.get("CI"), reason="no seccomp filter here")
def test_a_key_for_the_next_submission_is_refused(tmp_path, zygotes, monkeypatch):
    assert "found: -1" in reported(tmp_path, "leaver", KEY)
    warm.close_all()
    monkeypatch.setenv("OPTCONFORM_WARM_START", "0")  # and in a fresh sandbox
    assert "found: -1" in reported(tmp_path, "leaver", KEY)


def test_without_the_filter_a_key_left_ends_its_sandbox(tmp_path, zygotes, started, monkeypatch):
    monkeypatch.setattr(bubblewrap, "_prologue", lambda: "")
    made = reported(tmp_path, "leaver", KEY)
    assert "found: -1" not in made and "found: " in made
    found = reported(tmp_path, "after", "found = any(' note: ' in line for line in open('/proc/keys'))\n")
    assert len(started) == 2 and started[0].process.poll() is not None
    assert "found: True" in found  # the user's keyring outlives a sandbox: only the filter keeps it empty


def test_a_zygote_that_cannot_start_leaves_the_fresh_sandbox_to_serve(tmp_path, zygotes, monkeypatch):
    monkeypatch.setattr(bubblewrap, "zygote_command", lambda *args: [sys.executable, "-c", "pass"])
    (tmp_path / "course.py").write_text((ROOT / "examples" / "course" / "course_2021.py").read_text(), "utf-8")
    session = file_session(str(tmp_path / "course.py"), 10.0, "required")
    try:
        assert isinstance(session.program.process, Started)
        assert session.call("gd.update", ARGS)[0]["parameters"]["W1"].shape == (2, 2)
    finally:
        session.close()
    assert os.getpid() in warm._REFUSED and not zygotes


def test_a_class_grades_the_same_with_and_without_warm_starts(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    course = (ROOT / "examples" / "course" / "course_2021.py").read_text(encoding="utf-8")
    (folder / "correct.py").write_text(course, encoding="utf-8")
    (folder / "no_correction.py").write_text(course.replace("/ (1 - beta1 ** t)", ""), encoding="utf-8")
    (folder / "exits.py").write_text(course + "\nimport os\nos._exit(3)\n", encoding="utf-8")
    books = []
    for setting in ("1", "0"):
        out = tmp_path / f"grades-{setting}"
        done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                               "--ops", "adam", "--jobs", "2"], capture_output=True, text=True, timeout=600, check=False,
                              env={**os.environ, "OPTCONFORM_WARM_START": setting})
        assert done.returncode in (0, 1), done.stderr[-2000:]
        with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
            books.append({row["student"]: {k: v for k, v in row.items() if k != "seconds"}
                          for row in csv.DictReader(handle)})
        feedback = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))["submissions"]
        assert {entry["student"] for entry in feedback} == {"correct", "no_correction", "exits"}
    assert books[0] == books[1]
    assert books[0]["correct"]["score"] == books[0]["correct"]["max_score"] != "0"
    assert books[0]["no_correction"]["score"] != books[0]["no_correction"]["max_score"]


def test_a_filter_that_will_not_load_inside_leaves_bubblewrap_to_run_without_it(tmp_path, zygotes, monkeypatch):
    monkeypatch.setattr(bubblewrap, "seccomp_available", lambda: True)  # loads here, as it might, yet not inside
    monkeypatch.setattr(bubblewrap, "SECCOMP_PROLOGUE", "raise RuntimeError('Unable to find libseccomp'); ")
    bubblewrap.probe.cache_clear()
    try:
        assert bubblewrap.probe() is None and bubblewrap._prologue() == ""
        assert "NO seccomp filter" in bubblewrap.describe()
        found = reported(tmp_path, "unfiltered", "found = 'served'\n")
        assert "found: 'served'" in found
    finally:
        bubblewrap.probe.cache_clear()
        warm.close_all()
