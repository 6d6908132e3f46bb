"""What real course code depends on, end to end through ``optconform check FILE``.

Each test takes the 2021+ course-style example, changes one thing the way real
submissions do (a default argument, pairing by position, the layer number read
from the key, a capped step counter, integer zeros), and asserts that exactly
the cases built for it fail, with the mistake named where one is known.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = (ROOT / "examples" / "course" / "course_2021.py").read_text(encoding="utf-8")


def check(tmp_path, source: str, *options) -> dict:
    """``{case id: (status, diagnosis or message)}`` of the non-passing cases, and the exit code."""
    path = tmp_path / "submission.py"
    path.write_text(source, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(path), "--format", "json", *options],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    bad = {c["id"]: (c["status"], c["diagnosis"] or c["message"]) for c in report["cases"] if c["status"] != "pass"}
    return {"code": done.returncode, "bad": bad, "ran": {c["id"] for c in report["cases"]}}


def changed(old: str, new: str) -> str:
    assert COURSE.count(old) == 1, old
    return COURSE.replace(old, new)


def appended(code: str) -> str:
    """The course example with a function redefined after it (the later definition wins)."""
    return COURSE + "\n\n" + textwrap.dedent(code)


def test_the_course_example_conforms_and_runs_the_new_cases(tmp_path):
    found = check(tmp_path, COURSE)
    assert found["code"] == 0 and not found["bad"]
    for name in ("mini_batches/structural/default-arguments", "adam.update/outside_sqrt/default-arguments",
                 "momentum.update/ema/backprop-key-order", "adam.update/outside_sqrt/eleven-layers",
                 "adam.update/outside_sqrt/t-100000", "momentum.init/eleven-layers"):
        assert name in found["ran"], name


def test_a_wrong_default_batch_size_fails_the_default_case_only(tmp_path):
    found = check(tmp_path, changed("def random_mini_batches(X, Y, mini_batch_size=64, seed=0):",
                                    "def random_mini_batches(X, Y, mini_batch_size=32, seed=0):"), "--ops", "mini_batches")
    assert set(found["bad"]) == {"mini_batches/structural/default-arguments"}
    assert "[default-size-32]" in found["bad"]["mini_batches/structural/default-arguments"][1]


def test_a_pytorch_default_learning_rate_fails_the_default_case_only(tmp_path):
    found = check(tmp_path, changed("def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,",
                                    "def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.001,"),
                  "--ops", "adam")
    assert set(found["bad"]) == {"adam.update/outside_sqrt/default-arguments"}
    assert "[pytorch-default-learning-rate]" in found["bad"]["adam.update/outside_sqrt/default-arguments"][1]


def test_pairing_by_position_fails_on_back_propagation_order(tmp_path):
    found = check(tmp_path, appended("""
        def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
            for (name, _), (_, g) in zip(list(parameters.items()), list(grads.items())):
                v["d" + name] = beta * v["d" + name] + (1 - beta) * g
                parameters[name] = parameters[name] - learning_rate * v["d" + name]
            return parameters, v
    """), "--ops", "momentum.update")
    assert set(found["bad"]) == {"momentum.update/ema/backprop-key-order"}


def test_the_layer_number_read_from_the_key_fails_on_eleven_layers(tmp_path):
    found = check(tmp_path, appended("""
        def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,
                                        beta1=0.9, beta2=0.999, epsilon=1e-8):
            for key in list(parameters):
                kind, layer = key[0], key[-1]
                name = "d" + kind + layer
                v[name] = beta1 * v[name] + (1 - beta1) * grads[name]
                s[name] = beta2 * s[name] + (1 - beta2) * grads[name] ** 2
                v_hat, s_hat = v[name] / (1 - beta1 ** t), s[name] / (1 - beta2 ** t)
                parameters[key] = parameters[key] - learning_rate * v_hat / (np.sqrt(s_hat) + epsilon)
            return parameters, v, s
    """), "--ops", "adam.update")
    assert set(found["bad"]) == {"adam.update/outside_sqrt/eleven-layers"}


def test_a_capped_step_counter_fails_at_large_t(tmp_path):
    found = check(tmp_path, changed("    L = len(parameters) // 2\n    v_corrected = {}",
                                    "    L = len(parameters) // 2\n    t = min(t, 10000)\n    v_corrected = {}"),
                  "--ops", "adam.update")
    assert set(found["bad"]) == {"adam.update/outside_sqrt/t-20000", "adam.update/outside_sqrt/t-100000"}


def test_integer_zeros_from_init_fail_init_and_the_trajectories(tmp_path):
    source = changed('''        v["dW" + str(l)] = np.zeros(parameters["W" + str(l)].shape)
        v["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)
    return v''', '''        v["dW" + str(l)] = np.zeros(parameters["W" + str(l)].shape, dtype=int)
        v["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape, dtype=int)
    return v''')
    found = check(tmp_path, source, "--ops", "momentum")
    assert {case.split("/")[0] for case in found["bad"]} == {"momentum.init", "momentum.trajectory"}
    assert all("dtype int64" in text and "floating point" in text for _, text in found["bad"].values())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_course_version_conforms_under_the_defaults(dtype):
    examples = sorted((ROOT / "examples" / "course").iterdir())
    assert {p.name for p in examples} >= {"course_2017.py", "course_2018.ipynb", "course_2021.py"}
    for example in examples:
        done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(example), "--dtype", dtype],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (example.name, done.stdout[-3000:])


def test_the_current_course_example_conforms_on_all_eight_functions(tmp_path):
    """gd, mini-batches, velocity, momentum, Adam init and update, and both decays, each required."""
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(ROOT / "examples/course/course_2021.py"),
                           "--ops", "mini_batches,momentum,adam,gd,lr_decay", "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stdout[-2000:]
    ops = {case["op"] for case in report["cases"]}
    assert {"gd.update", "lr_decay.inverse_time", "lr_decay.scheduled", "mini_batches", "momentum.update",
            "adam.update"} <= ops
    assert report["summary"]["passed"] == len(report["cases"])


@pytest.mark.parametrize("mistake,old,new", [
    ("round-for-floor", "np.floor(epoch_num / time_interval)", "np.round(epoch_num / time_interval)"),
    ("no-floor", "np.floor(epoch_num / time_interval)", "(epoch_num / time_interval)"),
    ("ten-plus-decay", "1 / (1 + decay_rate * np.floor", "1 / (10 + decay_rate * np.floor"),
])
def test_schedule_mistakes_are_named(tmp_path, mistake, old, new):
    found = check(tmp_path, changed(old, new), "--ops", "lr_decay.scheduled")
    assert found["bad"] and all(f"[{mistake}]" in text for _, text in found["bad"].values()), found["bad"]
