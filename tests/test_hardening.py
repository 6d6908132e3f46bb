"""Hardening: misbehaving targets, bad input, the sandbox, and the JavaScript port.

Every test drives the real command line (``python -m optconform.cli check ...``)
in a subprocess, against targets written to ``tmp_path``: student ``.py`` files and
notebooks that hang, crash, exit, raise, print, read input, eat memory or return
nonsense, and small ``--cmd`` programs that speak the wire protocol badly. Each
asserts the exit code, the one-line message of the affected cases (never a
traceback), and that the other cases' results were kept.

The runs use a small vector set (two cases of each file, default conventions)
made from the shipped one, and ``--timeout 2``, so the file stays quick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from optconform.harness.target.session import CallFailed, ProcessSession, TargetError
from optconform.vectors import shipped_dir

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
DEFAULTS = {"adam.epsilon": "outside_sqrt", "momentum.form": "ema", "mini_batches.rng": "structural"}
ADAM_UPDATE_SIGNATURE = ("def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,\n"
                         "                                beta1=0.9, beta2=0.999, epsilon=1e-8):\n")

#: A correct submission in the course's names; tests append a bad definition that replaces one function.
GOOD = textwrap.dedent('''\
    import math
    import numpy as np


    def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
        np.random.seed(seed)
        m = X.shape[1]
        order = np.random.permutation(m)
        X, Y = X[:, order], Y[:, order]
        return [(X[:, k:k + mini_batch_size], Y[:, k:k + mini_batch_size]) for k in range(0, m, mini_batch_size)]


    def initialize_velocity(parameters):
        return {"d" + key: np.zeros_like(value) for key, value in parameters.items()}


    def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
        for key in parameters:
            v["d" + key] = beta * v["d" + key] + (1 - beta) * grads["d" + key]
            parameters[key] = parameters[key] - learning_rate * v["d" + key]
        return parameters, v


    def initialize_adam(parameters):
        v = {"d" + key: np.zeros_like(value) for key, value in parameters.items()}
        s = {"d" + key: np.zeros_like(value) for key, value in parameters.items()}
        return v, s


    def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,
                                    beta1=0.9, beta2=0.999, epsilon=1e-8):
        for key in parameters:
            g = grads["d" + key]
            v["d" + key] = beta1 * v["d" + key] + (1 - beta1) * g
            s["d" + key] = beta2 * s["d" + key] + (1 - beta2) * g ** 2
            vh = v["d" + key] / (1 - beta1 ** t)
            sh = s["d" + key] / (1 - beta2 ** t)
            parameters[key] = parameters[key] - learning_rate * vh / (np.sqrt(sh) + epsilon)
        return parameters, v, s
    ''')


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def small_vectors(tmp_path_factory) -> Path:
    """Two default-convention cases of every shipped vector file (schema-valid, so ``--vectors`` takes it)."""
    out = tmp_path_factory.mktemp("vectors")
    for path in sorted(shipped_dir().glob("*.json")):
        if path.name == "manifest.json":
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        document["cases"] = [case for case in document["cases"]
                             if all(DEFAULTS.get(k) == v for k, v in case["conventions"].items())][:2]
        (out / path.name).write_text(json.dumps(document), encoding="utf-8")
    return out


def run_cli(*args, cwd=None, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optconform.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def check(target, vectors, *options, cwd=None, env=None) -> subprocess.CompletedProcess:
    """``optconform check TARGET --vectors SMALL --format json --timeout 2 OPTIONS``."""
    target_args = ["--cmd", target[1]] if isinstance(target, tuple) else [target]
    return run_cli("check", *target_args, "--vectors", vectors, "--allow-modified", "--visibility", "visible",
                   "--format", "json", "--timeout", "2", *options,
                   cwd=cwd, env=env)


def statuses(proc) -> dict[str, tuple[str, str]]:
    """case id -> (status, message), from a JSON report; asserts stderr carries no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    for case in report["cases"]:
        assert "\n" not in case["message"], case
    return {case["id"]: (case["status"], case["message"]) for case in report["cases"]}


def of_op(results: dict, op: str) -> dict:
    return {case_id: result for case_id, result in results.items() if case_id.split("/")[0] == op}


def assert_usage_error(proc, *fragments) -> str:
    """Exit 2, and stderr is exactly one line ``optconform: error: ...`` holding every fragment."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("optconform: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def student(tmp_path: Path, extra: str, name: str = "submission.py") -> Path:
    """GOOD plus ``extra`` (later definitions replace earlier ones)."""
    path = tmp_path / name
    path.write_text(GOOD + "\n\n" + textwrap.dedent(extra), encoding="utf-8")
    return path


def notebook(path: Path, *cells: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, str(path))
    return path


def program(tmp_path: Path, body: str, name: str = "prog.py") -> tuple[str, str]:
    """A small ``--cmd`` program in Python: a wire-protocol loop whose answers ``body`` decides.

    ``body`` runs for every request other than hello and shutdown, with ``rid``, ``op``,
    ``args``, ``send(obj)``, ``zeros_like(tree)`` and ``count`` (requests so far) at hand.
    """
    source = textwrap.dedent('''\
        import json, os, sys, time

        OPS = ["mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update"]

        def send(obj):
            sys.stdout.write(json.dumps(obj) + "\\n")
            sys.stdout.flush()

        def zeros_like(tree):
            return {"d" + k: {"dtype": a["dtype"], "shape": a["shape"], "data": [0.0] * len(a["data"])}
                    for k, a in tree.items()}

        count = 0
        for line in sys.stdin:
            request = json.loads(line)
            rid, op, args = request["id"], request["op"], request.get("args", {})
            count += 1
            if op == "shutdown":
                send({"id": rid, "ok": True, "result": {}})
                break
            if op == "hello":
                send({"id": rid, "ok": True, "result": {"name": "prog", "protocol": "optconform/1",
                                                       "ops": ["momentum.init", "adam.init"]}})
                continue
        ''') + textwrap.indent(textwrap.dedent(body), "    ")
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return ("--cmd", f"{sys.executable} {path}")


# ---------------------------------------------------------------- one op misbehaves in a student's file

#: (name, body of update_parameters_with_adam, fragments of the message of every adam.update case).
PER_CALL = [
    ("os._exit", "    import os\n    os._exit(7)\n", ["exited with code 7"]),
    ("segfault", "    import ctypes\n    ctypes.string_at(0)\n", ["SIGSEGV"]),
    ("sys.exit", "    import sys\n    sys.exit(3)\n", ["sys.exit(3)", "in update_parameters_with_adam"]),
    ("exception", "    ratio = 1 / 0  # MARK\n    return parameters, v, s\n",
     ["ZeroDivisionError", "division by zero", "submission.py:{line}", "update_parameters_with_adam"]),
    ("input", "    answer = input('continue? ')\n    return parameters, v, s\n", ["EOFError"]),
    ("huge memory", "    hoard = bytearray(64 * 1024 ** 3)\n    return hoard\n", ["MemoryError"]),
    ("huge array", "    hoard = np.ones((300000, 300000))\n    return hoard\n", ["MemoryError", "Unable to allocate"]),
    ("returns None", "    return None\n", ["returned a NoneType; expected 3 values"]),
    ("returns a string", "    return 'parameters updated'\n", ["returned a str; expected 3 values"]),
    ("wrong tuple length", "    return parameters, v\n", ["returned a tuple of 2; expected 3 values"]),
    ("dict with a string", "    v = {key: 'zero' for key in v}\n    return parameters, v, s\n",
     ["v['dW1'] is str", "not an array of numbers"]),
    ("non-numeric array", "    return parameters, {'dW1': np.array([object()])}, s\n", ["v['dW1']", "not an array"]),
]


@pytest.mark.parametrize("name,body,fragments", PER_CALL, ids=[p[0] for p in PER_CALL])
def test_one_misbehaving_op_errors_and_the_others_are_kept(tmp_path, small_vectors, name, body, fragments):
    path = student(tmp_path, ADAM_UPDATE_SIGNATURE + body)
    line = next((n for n, text in enumerate(path.read_text().splitlines(), 1) if "# MARK" in text), None)
    proc = check(path, small_vectors, "--ops", "adam.update,adam.init,momentum.init")
    assert proc.returncode == 1, proc.stderr
    results = statuses(proc)
    updates = {**of_op(results, "adam.update"), **of_op(results, "adam.trajectory")}
    assert len(updates) == 4
    capped = [m for _, m in updates.values() if m.startswith("not run: adam.update ended the program")]
    for status, message in updates.values():
        assert status == "error", (name, status, message)
        if message in capped:  # a call that ends the program three times in a row is not made again
            continue
        for fragment in fragments:
            assert fragment.format(line=line) in message, (fragment, message)
        assert "adapter.py" not in message  # where the harness noticed is not the student's business
    assert len(capped) < len(updates)
    kept = {**of_op(results, "adam.init"), **of_op(results, "momentum.init")}
    assert len(kept) == 4 and all(status == "pass" for status, _ in kept.values()), kept


def test_returning_wrong_shapes_fails_and_names_the_key(tmp_path, small_vectors):
    path = student(tmp_path, ADAM_UPDATE_SIGNATURE + "    return {k: np.zeros(3) for k in parameters}, v, s\n")
    proc = check(path, small_vectors, "--ops", "adam.update,momentum.init")
    assert proc.returncode == 1
    results = statuses(proc)
    for status, message in of_op(results, "adam.update").values():
        assert status == "fail" and "parameters.W1: shape (3,)" in message, message
    assert all(status == "pass" for status, _ in of_op(results, "momentum.init").values())


def test_a_hang_times_out_and_the_rest_still_run(tmp_path, small_vectors):
    path = student(tmp_path, "def initialize_adam(parameters):\n    while True:\n        pass\n")
    started = time.monotonic()
    proc = check(path, small_vectors, "--ops", "adam.init,momentum.init")
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    results = statuses(proc)
    hung = of_op(results, "adam.init")
    assert len(hung) == 2
    for status, message in hung.values():
        assert status == "error" and "timed out" in message and "2 s" in message, message
    assert [s for s, _ in of_op(results, "momentum.init").values()] == ["pass", "pass"]
    assert elapsed < 40, elapsed


def test_prints_to_stdout_never_corrupt_the_protocol(tmp_path, small_vectors):
    noise = textwrap.dedent('''\
        import os, sys
        def _noise():
            print("debug: in the optimizer")
            print('{"id": 999, "ok": true, "result": {}}')
            print("\\n" * 5, end="")
            sys.stdout.write("no newline here")
            sys.stdout.flush()
            os.write(1, b"straight to fd 1\\n")
        ''')
    source = GOOD
    for function in ("initialize_adam(parameters):", "update_parameters_with_momentum(parameters, grads, v, beta, "
                     "learning_rate):"):
        source = source.replace(f"def {function}\n", f"def {function}\n    _noise()\n")
    assert source.count("_noise()") == 2
    path = tmp_path / "noisy.py"
    path.write_text(noise + source, encoding="utf-8")
    proc = check(path, small_vectors, "--ops", "adam.init,momentum")
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    results = statuses(proc)
    assert len(results) == 8 and all(status == "pass" for status, _ in results.values())


def test_a_notebook_with_runaway_top_level_cells_is_graded(tmp_path, small_vectors):
    path = notebook(tmp_path / "runaway.ipynb", GOOD,
                    "i = 0\nwhile True:\n    i += 1\n",
                    "for epoch in range(10**12):\n    input('next?')\n",
                    "%matplotlib inline\nimport matplotlib_that_is_not_installed\n")
    started = time.monotonic()
    proc = check(path, small_vectors)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    results = statuses(proc)
    assert len(results) == 14 and all(status == "pass" for status, _ in results.values())
    assert time.monotonic() - started < 60


def test_a_crashing_notebook_function_keeps_the_rest(tmp_path, small_vectors):
    path = notebook(tmp_path / "crash.ipynb", GOOD, "def initialize_velocity(parameters):\n    import os\n"
                    "    os._exit(1)\n", "while True:\n    pass\n")
    proc = check(path, small_vectors, "--ops", "momentum.init,adam.init")
    assert proc.returncode == 1
    results = statuses(proc)
    assert all(s == "error" and "exited with code 1" in m for s, m in of_op(results, "momentum.init").values())
    assert all(s == "pass" for s, _ in of_op(results, "adam.init").values())


# ---------------------------------------------------------------- bad targets: exit 2, one line


def test_a_notebook_that_is_not_json(tmp_path, small_vectors):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", "source": "def f(', encoding="utf-8")
    assert_usage_error(check(path, small_vectors), "broken.ipynb", "not valid JSON")


@pytest.mark.parametrize("content", ['{"hello": "world", "cells": 3}', "[1, 2, 3]", '"a string"',
                                     '{"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": "code"}]}'])
def test_a_notebook_that_is_json_but_not_a_notebook(tmp_path, small_vectors, content):
    path = tmp_path / "other.ipynb"
    path.write_text(content, encoding="utf-8")
    line = assert_usage_error(check(path, small_vectors), "other.ipynb")
    assert "not a notebook" in line or "not a readable notebook" in line


def test_a_syntax_error_costs_its_block_not_the_file(tmp_path, small_vectors):
    path = student(tmp_path, "def broken(:\n    pass\n", name="typo.py")
    line = GOOD.count("\n") + 3
    done = check(path, small_vectors)
    assert done.returncode == 0, done.stdout[-2000:]
    warnings = json.loads(done.stdout)["warnings"]
    assert any(f"typo.py line {line}: syntax error" in w and "[defines broken]" in w for w in warnings), warnings


def test_syntax_errors_everywhere_leave_nothing_and_say_so(tmp_path, small_vectors):
    path = tmp_path / "typos.py"
    path.write_text("import numpy as np\ndef update_parameters_with_adam(p, g, v, s, t\n    return p\n"
                    "x = = 1\n", encoding="utf-8")
    done = check(path, small_vectors)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["summary"]["passed"] == 0 and report["summary"]["not_implemented"] > 0
    assert sum("syntax error" in w for w in report["warnings"]) == 2, report["warnings"]


def test_a_file_that_is_not_utf8(tmp_path, small_vectors):
    path = tmp_path / "binary.py"
    path.write_bytes(b"\xff\xfe\x00def f(): pass\n")
    assert_usage_error(check(path, small_vectors), "binary.py", "cannot read")


@pytest.mark.parametrize("name", ["missing.py", "missing.ipynb", "no_such_module_optconform_test"])
def test_a_missing_target(tmp_path, small_vectors, name):
    assert_usage_error(check(tmp_path / name if "." in name else name, small_vectors), name.split(".")[0])


def test_a_directory_named_like_a_file(tmp_path, small_vectors):
    (tmp_path / "folder.py").mkdir()
    assert_usage_error(check(tmp_path / "folder.py", small_vectors), "folder.py", "not a file")


# ---------------------------------------------------------------- --cmd programs that misbehave


def test_cmd_that_does_not_start(tmp_path, small_vectors):
    assert_usage_error(check(("--cmd", str(tmp_path / "no-such-program")), small_vectors),
                       "cannot start", "no-such-program")
    # a usage line without a newline, then exit: no answer line ever comes, and the message quotes it
    banner = f"{sys.executable} -c 'import sys; sys.stdout.write(\"usage: port FILE\")'"
    assert_usage_error(check(("--cmd", banner), small_vectors),
                       "exited with code 0", "after writing 'usage: port FILE' instead of an answer")
    assert_usage_error(check(("--cmd", "'unbalanced"), small_vectors), "--cmd")
    assert_usage_error(check(("--cmd", f"{sys.executable} -c 'import sys; sys.exit(4)'"), small_vectors),
                       "exited with code 4")


def test_cmd_that_prints_garbage_instead_of_hello(tmp_path, small_vectors):
    path = tmp_path / "garbage.py"
    path.write_text("import sys\nfor line in sys.stdin:\n    print('Welcome to my optimizer!', flush=True)\n")
    assert_usage_error(check(("--cmd", f"{sys.executable} {path}"), small_vectors), "hello", "not JSON",
                       "Welcome to my optimizer")


def test_cmd_that_answers_hello_with_the_wrong_id(tmp_path, small_vectors):
    path = tmp_path / "wrong_hello.py"
    path.write_text(textwrap.dedent('''\
        import json, sys
        for line in sys.stdin:
            rid = json.loads(line)["id"]
            print(json.dumps({"id": rid + 41, "ok": True, "result": {"name": "x", "ops": ["adam.init"]}}), flush=True)
        '''))
    assert_usage_error(check(("--cmd", f"{sys.executable} {path}"), small_vectors), "hello", "answered id 42")


def test_cmd_with_a_bad_hello(tmp_path, small_vectors):
    path = tmp_path / "bad_hello.py"
    path.write_text(textwrap.dedent('''\
        import json, sys
        for line in sys.stdin:
            rid = json.loads(line)["id"]
            print(json.dumps({"id": rid, "ok": True, "result": {"name": "x", "ops": ["adam.step"]}}), flush=True)
        '''))
    assert_usage_error(check(("--cmd", f"{sys.executable} {path}"), small_vectors), "hello", "ops")


def test_cmd_that_answers_the_wrong_id(tmp_path, small_vectors):
    cmd = program(tmp_path, '''\
        if op == "adam.init":
            send({"id": rid + 1, "ok": True, "result": {"v": zeros_like(args["parameters"]),
                                                        "s": zeros_like(args["parameters"])}})
        else:
            send({"id": rid, "ok": True, "result": {"v": zeros_like(args["parameters"])}})
        ''')
    proc = check(cmd, small_vectors, "--ops", "adam.init,momentum.init")
    assert proc.returncode == 1
    results = statuses(proc)
    for status, message in of_op(results, "adam.init").values():
        assert status == "error" and re.search(r"answered id \d+ to request id \d+", message), message
    assert [s for s, _ in of_op(results, "momentum.init").values()] == ["pass", "pass"]


def test_cmd_that_writes_garbage_during_a_call(tmp_path, small_vectors):
    cmd = program(tmp_path, '''\
        if op == "adam.init":
            sys.stdout.write("\\x00\\x01 Segmentation fault (core dumped) {{{\\n")
            sys.stdout.flush()
        else:
            send({"id": rid, "ok": True, "result": {"v": zeros_like(args["parameters"])}})
        ''')
    proc = check(cmd, small_vectors, "--ops", "adam.init,momentum.init")
    assert proc.returncode == 1
    results = statuses(proc)
    assert all(s == "error" and "not JSON" in m for s, m in of_op(results, "adam.init").values())
    assert [s for s, _ in of_op(results, "momentum.init").values()] == ["pass", "pass"]


def test_cmd_that_sends_a_result_of_the_wrong_shape(tmp_path, small_vectors):
    cmd = program(tmp_path, '''\
        if op == "adam.init":
            send({"id": rid, "ok": True, "result": {"v": {"dW1": {"dtype": "float64", "shape": [2], "data": [1]}},
                                                    "s": {"dW1": [1, 2]}}})
        else:
            send({"id": rid, "ok": True, "result": {"v": zeros_like(args["parameters"])}})
        ''')
    proc = check(cmd, small_vectors, "--ops", "adam.init,momentum.init")
    assert proc.returncode == 1
    results = statuses(proc)
    for status, message in of_op(results, "adam.init").values():
        assert status == "error" and "adam.init result" in message and "s/dW1" in message, message
    assert [s for s, _ in of_op(results, "momentum.init").values()] == ["pass", "pass"]


@pytest.mark.parametrize("how", ["exits", "closes stdout and lingers"])
def test_cmd_that_closes_after_hello(tmp_path, small_vectors, how):
    body = "sys.exit(0)\n" if how == "exits" else "os.close(1)\ntime.sleep(600)\n"
    cmd = program(tmp_path, body)
    started = time.monotonic()
    proc = check(cmd, small_vectors, "--ops", "adam.init,momentum.init")
    assert proc.returncode == 1, proc.stderr
    results = statuses(proc)
    assert len(results) == 4
    expected = "exited with code 0" if how == "exits" else "closed its output"
    for status, message in results.values():
        assert status == "error" and expected in message, message
    assert time.monotonic() - started < 40


def test_cmd_that_hangs_in_one_op(tmp_path, small_vectors):
    cmd = program(tmp_path, '''\
        if op == "adam.init":
            time.sleep(600)
        send({"id": rid, "ok": True, "result": {"v": zeros_like(args["parameters"])}})
        ''')
    proc = check(cmd, small_vectors, "--ops", "adam.init,momentum.init")
    assert proc.returncode == 1
    results = statuses(proc)
    assert all(s == "error" and "timed out" in m for s, m in of_op(results, "adam.init").values())
    assert [s for s, _ in of_op(results, "momentum.init").values()] == ["pass", "pass"]


def test_a_program_that_stops_reading_cannot_block_a_call(tmp_path):
    """A request larger than the pipe buffer, to a program that never reads it: a timeout, not a hang."""
    path = tmp_path / "deaf.py"
    path.write_text(textwrap.dedent('''\
        import json, sys, time
        line = sys.stdin.readline()
        print(json.dumps({"id": json.loads(line)["id"], "ok": True,
                          "result": {"name": "deaf", "ops": ["momentum.init"]}}), flush=True)
        time.sleep(600)
        '''))
    session = ProcessSession([sys.executable, str(path)], "deaf", timeout=1.0, sandbox=False)
    try:
        started = time.monotonic()
        with pytest.raises(CallFailed, match="timed out"):
            session.call("momentum.init", {"parameters": {"W1": np.zeros((300, 300)), "b1": np.zeros((300, 1))}})
        assert time.monotonic() - started < 10
    finally:
        session.close()


def test_a_program_that_never_says_hello_is_a_target_error(tmp_path):
    path = tmp_path / "mute.py"
    path.write_text("import sys, time\nsys.stdin.readline()\ntime.sleep(600)\n")
    started = time.monotonic()
    with pytest.raises(TargetError, match="no usable hello: no answer within 1 s"):
        ProcessSession([sys.executable, str(path)], "mute", timeout=1.0, sandbox=False, start_timeout=1.0)
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------- bad options and vectors: exit 2, one line


def test_unknown_ops_and_conventions(small_vectors):
    target = ROOT / "examples" / "course_submission.py"
    assert_usage_error(check(target, small_vectors, "--ops", "adam.step"), "unknown op 'adam.step'")
    assert_usage_error(check(target, small_vectors, "--convention", "adam.eps=inside_sqrt"),
                       "unknown convention 'adam.eps'")
    assert_usage_error(check(target, small_vectors, "--convention", "adam.epsilon=sideways"),
                       "adam.epsilon", "sideways")
    assert_usage_error(check(target, small_vectors, "--convention", "no-equals-sign"), "family.key=value")
    assert_usage_error(run_cli("list", "--ops", "bogus"), "unknown op 'bogus'")


def test_a_target_that_declares_an_unknown_convention(tmp_path, small_vectors):
    path = student(tmp_path, "OPTCONFORM_CONVENTIONS = {'adam.epsilon': 'under_the_rug'}\n")
    assert_usage_error(check(path, small_vectors), "under_the_rug")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_bad_timeouts(small_vectors, value):
    assert_usage_error(check(ROOT / "examples" / "course_submission.py", small_vectors, "--timeout", value),
                       "timeout")


def test_missing_skip_file(tmp_path, small_vectors):
    assert_usage_error(check(ROOT / "examples" / "course_submission.py", small_vectors,
                             "--skip", tmp_path / "nope.txt"), "nope.txt")


def _copy_vectors(small_vectors: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "vectors"
    shutil.copytree(small_vectors, directory)
    return directory


def test_vectors_file_that_is_not_json(tmp_path, small_vectors):
    directory = _copy_vectors(small_vectors, tmp_path)
    (directory / "adam.init.json").write_text('{"cases": [', encoding="utf-8")
    target = ROOT / "examples" / "course_submission.py"
    assert_usage_error(check(target, directory), "adam.init.json", "not valid JSON")
    assert_usage_error(run_cli("list", "--vectors", directory, "--allow-modified"), "adam.init.json",
                       "not valid JSON")


@pytest.mark.parametrize("mutation", ["drop expected", "bad array", "wrong type", "not an object"])
def test_vectors_file_that_breaks_the_schema(tmp_path, small_vectors, mutation):
    directory = _copy_vectors(small_vectors, tmp_path)
    path = directory / "momentum.update.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    case = document["cases"][1]
    if mutation == "drop expected":
        del case["expected"]
    elif mutation == "bad array":
        case["inputs"]["parameters"]["W1"]["data"] = ["zero"]
    elif mutation == "wrong type":
        case["tags"] = "momentum"
    else:
        document = [document]
    path.write_text(json.dumps(document), encoding="utf-8")
    line = assert_usage_error(check(ROOT / "examples" / "course_submission.py", directory), "momentum.update.json")
    if mutation != "not an object":
        assert case["id"] in line, line


def test_vectors_directory_problems(tmp_path):
    assert_usage_error(run_cli("list", "--vectors", tmp_path / "nonexistent"), "no such vector directory")
    assert_usage_error(run_cli("check", ROOT / "examples" / "course_submission.py", "--vectors", tmp_path),
                       "no vector files")


def test_duplicate_case_ids_across_files(tmp_path, small_vectors):
    directory = _copy_vectors(small_vectors, tmp_path)
    shutil.copy(directory / "adam.init.json", directory / "adam.init.copy.json")
    assert_usage_error(check(ROOT / "examples" / "course_submission.py", directory), "adam.init")


# ---------------------------------------------------------------- the sandbox

PROBE = '''\
import json, os, sys
def initialize_adam(parameters):
    import resource
    probe = {
        "secret": os.environ.get("OPTCONFORM_TEST_SECRET", "absent"),
        "cwd": os.getcwd(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
        "stdin": sys.stdin.read(),
        "fd0": os.read(0, 100).decode(),
        "as_limited": resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY,
    }
    raise RuntimeError("PROBE" + json.dumps(probe, separators=(",", ":")) + "END")
'''


def test_the_child_runs_in_a_sandbox(tmp_path, small_vectors):
    path = student(tmp_path, PROBE)
    caller = tmp_path / "caller"
    caller.mkdir()
    env = {**os.environ, "OPTCONFORM_TEST_SECRET": "hunter2"}
    proc = check(path, small_vectors, "--ops", "adam.init,momentum.init", cwd=caller, env=env)
    assert proc.returncode == 1
    results = statuses(proc)
    status, message = next(iter(of_op(results, "adam.init").values()))
    assert status == "error", message
    probe = json.loads(message[message.index("PROBE") + 5:message.index("END")])
    assert probe["secret"] == "absent"
    assert Path(probe["cwd"]).resolve() != caller.resolve() and Path(probe["cwd"]).resolve() != ROOT
    assert Path(probe["cwd"]).name.startswith("optconform-") or probe["cwd"] == "/tmp"  # the sandbox's own tmpfs
    assert probe["omp"] == "1" and probe["openblas"] == "1"
    assert probe["stdin"] == "" and probe["fd0"] == ""
    assert probe["as_limited"] is True
    assert [s for s, _ in of_op(results, "momentum.init").values()] == ["pass", "pass"]


def test_the_program_never_sees_expected_outputs(tmp_path, small_vectors):
    log = tmp_path / "requests.jsonl"
    cmd = program(tmp_path, f'''\
        with open({str(log)!r}, "a") as out:
            out.write(line)
        if op == "adam.init":
            send({{"id": rid, "ok": True, "result": {{"v": zeros_like(args["parameters"]),
                                                      "s": zeros_like(args["parameters"])}}}})
        else:
            send({{"id": rid, "ok": True, "result": {{"v": zeros_like(args["parameters"])}}}})
        ''')
    proc = check(cmd, small_vectors, "--ops", "adam.init,momentum.init")
    assert proc.returncode == 0, proc.stderr
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(requests) == 4
    for request in requests:
        assert set(request) <= {"id", "op", "args", "conventions"}
        assert set(request["args"]) == {"parameters"}
        assert "expected" not in json.dumps(request) and "tolerance" not in json.dumps(request)


def test_results_are_never_unpickled():
    """The wire protocol is JSON only: nothing under harness/ imports pickle or its relatives."""
    pattern = re.compile(r"^\s*(import|from)\s+(pickle|_pickle|cPickle|cloudpickle|dill|shelve|marshal|joblib)\b"
                         r"|\bpickle\.loads?\(|allow_pickle\s*=\s*True", re.MULTILINE)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "harness").rglob("*.py")
                 if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


# ---------------------------------------------------------------- another language


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_javascript_port_conforms():
    proc = run_cli("check", "--cmd", "node examples/js/optconform_port.js", "--format", "json")
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    report = json.loads(proc.stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["errors"] == 0
    assert report["summary"]["not_implemented"] == 0
    assert {case["status"] for case in report["cases"]} == {"pass"}
    passed_ops = {case["op"] for case in report["cases"] if case["status"] == "pass"}
    assert {"mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update"} <= passed_ops


def test_the_submission_budget_holds_inside_a_batch(tmp_path, monkeypatch):
    """A batch of slow calls stops when the program's budget is spent, not after the whole batch (each call
    within its own limit, the sum far past the budget)."""
    from optconform.harness.target import process
    from optconform.harness.target.session import ProcessSession, child_argv
    from optconform.vectors import load_suite

    path = tmp_path / "slow.py"
    path.write_text("import time\nimport numpy as np\n\ndef initialize_velocity(parameters):\n    time.sleep(0.5)\n"
                    "    return {'d' + k: np.zeros_like(p) for k, p in parameters.items()}\n", encoding="utf-8")
    case = next(c for c in load_suite() if c.op == "momentum.init")
    monkeypatch.setattr(process, "MAX_SECONDS", 1.2)
    session = ProcessSession(child_argv(str(path)), "slow.py", timeout=5, sandbox=False)
    try:
        assert session.binary  # version 2: the calls go in one batch
        answers = session.call_many([("momentum.init", {"parameters": case.inputs["parameters"]})] * 12)
    finally:
        session.close()
    made = [a for a in answers if not isinstance(a, Exception)]
    spent = [a for a in answers if isinstance(a, Exception) and "used up its" in str(a)]
    # 12 calls of 0.5 s each fit their own limit (5 s) but not the budget (1.2 s from the session's start)
    assert len(answers) == 12 and len(made) <= 3 and len(spent) >= 11 - len(made), answers  # one may time out


def test_a_bare_name_is_the_students_file_never_a_trusted_module(tmp_path):
    """`check mysol` where mysol.py exists grades the file (in the sandbox, only its definitions taken), never
    imports it as a trusted module (which would run its top-level input() loop); a bare name that is no file is
    a usage error, unless --module says it is a module."""
    marker = tmp_path / "top-level-ran"
    (tmp_path / "mysol.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport numpy as np\n"
        "def initialize_velocity(parameters):\n    return {'d' + k: np.zeros_like(v) for k, v in parameters.items()}\n",
        encoding="utf-8")
    run = lambda *args: subprocess.run([sys.executable, "-m", "optconform.cli", "check", *args, "--ops",  # noqa: E731
                                        "momentum.init", "-q"], cwd=tmp_path, capture_output=True, text=True,
                                       timeout=300)
    done = run("mysol")
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    missing = run("nosuchsol")
    assert missing.returncode == 2 and "add --module" in missing.stderr
    imported = run("mysol", "--module")
    assert imported.returncode == 0 and marker.exists()  # the instructor said it is trusted code


COURSE_SOURCE = (Path(__file__).resolve().parents[1] / "examples" / "course" / "course_2021.py").read_text()


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "optconform.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


def test_without_a_sandbox_grade_refuses_and_check_warns(tmp_path):
    """Needs no sandbox: it takes every engine away (no bwrap, and bubblewrap pinned) and checks that nothing of
    the class runs, except where the instructor says --no-sandbox, and that check and doctor say so."""
    env = {**os.environ, "OPTCONFORM_BWRAP": str(tmp_path / "no-bwrap-here"), "OPTCONFORM_SANDBOX": "bubblewrap"}
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "student.py").write_text(COURSE_SOURCE, encoding="utf-8")
    refused = _cli("grade", folder, "--out", tmp_path / "grades", env=env)
    assert refused.returncode == 2 and "no sandbox" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "--no-sandbox" in refused.stderr
    assert not (tmp_path / "grades" / "gradebook.csv").exists()
    forced = _cli("grade", folder, "--out", tmp_path / "grades", "--ops", "adam.init", "--no-sandbox", env=env)
    assert forced.returncode == 0, forced.stderr
    checked = _cli("check", folder / "student.py", "--ops", "adam.init", "--format", "json", env=env)
    assert checked.returncode == 0
    assert any(w.startswith("no sandbox:") for w in json.loads(checked.stdout)["warnings"])
    doctor = _cli("doctor", env=env)
    assert doctor.returncode == 1 and "NOT AVAILABLE" in doctor.stdout


# ---------------------------------------------------------------- a function that returns one value returns it alone


@pytest.mark.parametrize("op, returned, fragment", [
    ("lr_decay.inverse_time", lambda lr: (lr,), "returned a tuple of 1; expected one learning rate, not a sequence"),
    ("lr_decay.inverse_time", lambda lr: [lr], "returned a list of 1; expected one learning rate"),
    ("lr_decay.scheduled", lambda lr: (lr, 1000), "returned a tuple of 2; expected one learning rate"),
])
def test_a_learning_rate_in_a_tuple_is_an_error(op, returned, fragment):
    from optconform.harness.target.adapter import PythonAdapter, ResultShapeError
    from optconform.reference import ops

    def decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
        return returned(ops.lr_inverse_time(learning_rate0, epoch_num, decay_rate))

    namespace = {"update_lr": decay, "schedule_lr_decay": decay}
    args = {"learning_rate0": 0.5, "epoch_num": 3, "decay_rate": 1.0, "time_interval": 1000}
    with pytest.raises(ResultShapeError, match=re.escape(fragment)):
        PythonAdapter(namespace).call(op, args)
    namespace = {"update_lr": lambda *a: ops.lr_inverse_time(*a[:3]), "schedule_lr_decay": lambda *a: np.float64(0.5)}
    assert PythonAdapter(namespace).call(op, args)[0]["learning_rate"].shape == ()  # the bare number is right


@pytest.mark.parametrize("op, name, value", [("momentum.init", "initialize_velocity", "v"),
                                              ("rmsprop.init", "initialize_rmsprop", "s"),
                                              ("gd.update", "update_parameters_with_gd", "parameters")])
def test_a_single_tree_in_a_tuple_is_an_error(op, name, value):
    from optconform.harness.target.adapter import PythonAdapter, ResultShapeError

    tree = {"W1": np.zeros((2, 2)), "b1": np.zeros((2, 1))}
    args = {"parameters": tree, "grads": {"dW1": np.zeros((2, 2)), "db1": np.zeros((2, 1))}, "learning_rate": 0.1}
    with pytest.raises(ResultShapeError, match="returned a tuple of 1; expected one value, not a tuple"):
        PythonAdapter({name: lambda *a, **k: (tree,)}).call(op, args)
    assert set(PythonAdapter({name: lambda *a, **k: tree}).call(op, args)[0]) == {value}


def test_doctor_says_what_running_as_root_costs_under_bubblewrap():
    from optconform.harness.target.sandbox import root_note

    note = root_note("bubblewrap", euid=0)
    assert "runs as root" in note and "process limit (nproc)" in note and "OPTCONFORM_SANDBOX=uid" in note
    assert root_note("bubblewrap", euid=1000) == "" and root_note("uid", euid=0) == ""  # the uid engine: it holds
