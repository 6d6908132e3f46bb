"""The harness end to end: targets, checks, selection and the command line.

Each check is shown to fail on an implementation with the matching bug; the
buggy implementations are the reference with one thing changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import optconform.reference as reference
from optconform.harness.checking.checks import check_case
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import EXTENDED_OPS, CaseIdList, conventions_match, select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.target.session import InProcessSession, ProcessSession, child_argv
from optconform.reference import ops
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite

ROOT = Path(__file__).resolve().parents[1]
CASES = load_suite()


def by_id(case_id):
    return next(case for case in CASES if case.id == case_id)


#: How many cases the momentum.init op has.
INIT_CASES = sum(case.op == "momentum.init" for case in CASES)


def reference_target(**conventions):
    """The reference as a target declaring ``conventions`` (and computing under them)."""
    declared = resolve({"mini_batches.rng": "numpy_legacy"}, conventions)
    return types.SimpleNamespace(
        OPTCONFORM_CONVENTIONS=declared,
        random_mini_batches=reference.random_mini_batches,
        initialize_velocity=reference.initialize_velocity,
        initialize_adam=reference.initialize_adam,
        update_parameters_with_momentum=lambda p, g, v, beta, lr: ops.momentum_update(
            p, g, v, beta, lr, declared["momentum.form"]),
        update_parameters_with_adam=lambda p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8: ops.adam_update(
            p, g, v, s, t, lr, b1, b2, eps, declared["adam.epsilon"]),
        update_parameters_with_gd=reference.update_parameters_with_gd,
        initialize_rmsprop=reference.initialize_rmsprop,
        update_parameters_with_rmsprop=lambda p, g, s, beta2, lr, eps=1e-8: ops.rmsprop_update(
            p, g, s, beta2, lr, eps, declared["rmsprop.epsilon"]),
        update_lr=reference.update_lr,
        schedule_lr_decay=reference.schedule_lr_decay,
    )


def run(namespace, dtype="float64", ops_wanted=None, session=None):
    session = session or InProcessSession(namespace, "test target")
    conventions = resolve(session.info.conventions)
    selection = select(CASES, conventions, dtype, ops_wanted)
    return run_cases(session, selection, dtype, conventions, "test target", diagnoser=Diagnoser())


def with_changes(**functions):
    """The reference target with some functions replaced."""
    target = reference_target()
    for name, function in functions.items():
        setattr(target, name, function)
    return target


def failures(report):
    return [r for r in report.results if r.status != "pass"]


# ---------------------------------------------------------------- the reference conforms


@pytest.mark.parametrize("conventions", [
    {}, {"adam.epsilon": "inside_sqrt", "momentum.form": "heavy_ball"},
    {"adam.epsilon": "epsilon_hat", "momentum.form": "lr_scaled", "rmsprop.epsilon": "inside_sqrt"}])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reference_passes_every_case_in_process(conventions, dtype):
    report = run(reference_target(**conventions), dtype)
    assert failures(report) == []
    expected = len(select(CASES, resolve(reference_target(**conventions).OPTCONFORM_CONVENTIONS), dtype).run)
    assert len(report.results) == expected > 100


def test_every_case_runs_under_some_convention():
    ran = set()
    for conventions in ({}, {"adam.epsilon": "inside_sqrt", "momentum.form": "heavy_ball",
                             "mini_batches.y_rows": "multi_row"},
                        {"adam.epsilon": "epsilon_hat", "momentum.form": "lr_scaled"}):
        ran |= {r.id for r in run(reference_target(**conventions)).results}
    assert ran == {case.id for case in CASES}


def test_reference_module_passes_through_the_child_process():
    session = ProcessSession(child_argv("optconform.reference"), "reference", timeout=30)
    try:
        report = run(None, session=session)
    finally:
        session.close()
    assert session.info.protocol == "optconform/2"  # negotiated: arrays travel as base64 bytes
    assert failures(report) == []
    assert len(report.results) > 150


def test_a_version_1_program_is_spoken_to_in_version_1(tmp_path, monkeypatch):
    """A program whose hello does not accept optconform/2 never gets a base64 array or a protocol field."""

    seen = tmp_path / "requests.jsonl"
    program = tmp_path / "v1_port.py"
    program.write_text(textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from optconform.harness.target import child, protocol
        from optconform.harness.target.adapter import PythonAdapter
        import optconform.reference as reference

        class V1Out:
            def __init__(self, out):
                self.out = out
            def write(self, text):
                message = json.loads(text)
                if message.get("ok") and "accepts" in message.get("result", {{}}):
                    del message["result"]["accepts"]  # an old program: version 1 only
                self.out.write(protocol.dumps(message))
            def flush(self):
                self.out.flush()

        class Logged:
            def __init__(self, lines):
                self.lines = lines
            def __iter__(self):
                with open({str(seen)!r}, "a") as log:
                    for line in self.lines:
                        log.write(line)
                        log.flush()
                        yield line

        child.serve(PythonAdapter(reference, "v1"), Logged(sys.stdin), V1Out(sys.stdout))
    """))
    session = ProcessSession([sys.executable, str(program)], "v1", timeout=30, sandbox=False)
    try:
        report = run(None, session=session)
    finally:
        session.close()
    assert session.info.protocol == "optconform/1" and failures(report) == []
    requests = [json.loads(line) for line in seen.read_text().splitlines()]
    assert len(requests) > 150 and not any("protocol" in r or '"b64"' in json.dumps(r) for r in requests)


def test_cli_check_of_the_reference_module_exits_zero():
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "optconform.reference"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CONFORMS" in done.stdout


# ---------------------------------------------------------------- each check fails on its bug


def test_value_mismatch_names_key_index_expected_and_got():
    def no_bias_correction(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        return _no_correction(p, g, v, s, lr, b1, b2, eps)

    report = run(with_changes(update_parameters_with_adam=no_bias_correction), ops_wanted=["adam.update"])
    failed = failures(report)
    assert failed and all(r.status == "fail" for r in failed)
    message = by_result(report, "adam.update/outside_sqrt/t-1").message
    assert message.startswith("parameters.") and "expected" in message and "got" in message and "[" in message


def _no_correction(p, g, v, s, lr, b1, b2, eps):
    new_p, new_v, new_s = {}, {}, {}
    for param, grad in ops.slot_names(p):
        new_v[grad] = b1 * v[grad] + (1 - b1) * g[grad]
        new_s[grad] = b2 * s[grad] + (1 - b2) * g[grad] ** 2
        new_p[param] = p[param] - lr * new_v[grad] / (np.sqrt(new_s[grad]) + eps)
    return new_p, new_v, new_s


def by_result(report, case_id):
    return next(r for r in report.results if r.id == case_id)


def _structural(case_id):
    return by_id(f"mini_batches/structural/{case_id}")


def _batches_check(function, case_id="pairing", rng_convention="structural"):
    target = with_changes(random_mini_batches=function)
    session = InProcessSession(target, "t")
    case = by_id(f"mini_batches/{rng_convention}/{case_id}")
    return check_case(case, session, "float64", resolve(target.OPTCONFORM_CONVENTIONS))


def test_mini_batches_last_batch_dropped_fails():
    def dropped(X, Y, size=64, seed=0):
        return reference.random_mini_batches(X, Y, size, seed)[:-1] if X.shape[1] % size else \
            reference.random_mini_batches(X, Y, size, seed)

    outcome = _batches_check(dropped)
    assert outcome.status == "fail" and "last, partial batch dropped" in outcome.message


def test_mini_batches_unpaired_fails():
    def unpaired(X, Y, size=64, seed=0):
        m = X.shape[1]
        px, py = np.random.RandomState(seed).permutation(m), np.random.RandomState(seed + 99).permutation(m)
        return [(X[:, px][:, k:k + size], Y[:, py][:, k:k + size]) for k in range(0, m, size)]

    outcome = _batches_check(unpaired)
    assert outcome.status == "fail" and "no longer paired" in outcome.message


def test_mini_batches_not_shuffled_fails():
    def unshuffled(X, Y, size=64, seed=0):
        return [(X[:, k:k + size], Y[:, k:k + size]) for k in range(0, X.shape[1], size)]

    outcome = _batches_check(unshuffled)
    assert outcome.status == "fail" and "not shuffled" in outcome.message


def test_mini_batches_seed_ignored_fails():
    def seed_ignored(X, Y, size=64, seed=0):
        return reference.random_mini_batches(X, Y, size, 12345)

    outcome = _batches_check(seed_ignored)
    assert outcome.status == "fail" and "seed is ignored" in outcome.message


def test_mini_batches_nondeterministic_fails():
    generator = np.random.default_rng(0)

    def unseeded(X, Y, size=64, seed=0):
        perm = generator.permutation(X.shape[1])
        return [(X[:, perm][:, k:k + size], Y[:, perm][:, k:k + size]) for k in range(0, X.shape[1], size)]

    outcome = _batches_check(unseeded)
    assert outcome.status == "fail" and "different batches on a second call" in outcome.message


def test_other_rng_passes_structural_but_fails_numpy_legacy():
    def other_rng(X, Y, size=64, seed=0):
        perm = np.random.default_rng(seed).permutation(X.shape[1])
        return [(X[:, perm][:, k:k + size], Y[:, perm][:, k:k + size]) for k in range(0, X.shape[1], size)]

    assert _batches_check(other_rng).status == "pass"
    outcome = _batches_check(other_rng, rng_convention="numpy_legacy")
    assert outcome.status == "fail" and "np.random.permutation order" in outcome.message


def test_seedless_random_mini_batches_is_called_after_seeding_numpy():
    def seedless(X, Y, mini_batch_size=64):
        m = X.shape[1]
        perm = list(np.random.permutation(m))
        return [(X[:, perm][:, k:k + mini_batch_size], Y[:, perm][:, k:k + mini_batch_size])
                for k in range(0, m, mini_batch_size)]

    target = with_changes(random_mini_batches=seedless)
    report = run(target, ops_wanted=["mini_batches"])
    assert failures(report) == [] and len(report.results) == len(
        [c for c in CASES if c.op == "mini_batches" and conventions_match(c.conventions, report.conventions)])


def test_changed_grads_fail():
    def mutating(p, g, v, beta, lr):
        out = ops.momentum_update(p, g, v, beta, lr)
        g["dW1"] *= 2
        return out

    report = run(with_changes(update_parameters_with_momentum=mutating), ops_wanted=["momentum.update"])
    # doubling zero gradients changes nothing: only the zero-gradient case may pass
    assert {r.id for r in report.results if r.status == "pass"} == {"momentum.update/ema/zero-grads"}
    assert all("changed its input grads['dW1']" in r.message for r in failures(report))


def test_private_step_counter_fails_teacher_forced_at_a_named_step():
    counter = {"t": 0}

    def private_counter(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        counter["t"] += 1
        return ops.adam_update(p, g, v, s, counter["t"], lr, b1, b2, eps)

    report = run(with_changes(update_parameters_with_adam=private_counter), ops_wanted=["adam.trajectory"])
    assert report.results and all(r.status == "fail" for r in report.results)
    assert any("is the first wrong one (each step given the reference's state)" in r.message for r in report.results)


def test_aliased_v_and_s_fail():
    def aliased_init(parameters):
        v = ops.momentum_init(parameters)
        return v, v

    report = run(with_changes(initialize_adam=aliased_init), ops_wanted=["adam.init"])
    assert report.results and all("same object" in r.message for r in report.results)


def test_stale_velocity_fails_free_running_only():
    def nonzero_init(parameters):
        return {k: v + 0.5 for k, v in ops.momentum_init(parameters).items()}

    report = run(with_changes(initialize_velocity=nonzero_init), ops_wanted=["momentum.trajectory"])
    assert report.results and all(r.status == "fail" for r in report.results)
    assert all("your steps in a row, from your own init" in r.message and "the state is carried wrongly" in r.message
               for r in report.results)


def test_missing_op_is_not_implemented_and_fails_the_run():
    target = with_changes()
    del target.update_parameters_with_adam
    report = run(target, ops_wanted=["adam"])
    statuses = {r.op: r.status for r in report.results}
    assert statuses["adam.update"] == "not_implemented" and statuses["adam.trajectory"] == "not_implemented"
    assert statuses["adam.init"] == "pass"
    assert not report.conforms


def test_exception_in_target_is_an_error_with_its_message():
    def broken(parameters):
        raise ZeroDivisionError("boom")

    report = run(with_changes(initialize_velocity=broken), ops_wanted=["momentum.init"])
    assert report.results and all(r.status == "error" and "ZeroDivisionError: boom" in r.message
                                  for r in report.results)


def test_float32_rounded_gradients_fail_at_float64():
    def rounded(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        g = {k: x.astype(np.float32).astype(np.float64) for k, x in g.items()}
        return ops.adam_update(p, g, v, s, t, lr, b1, b2, eps)

    report = run(with_changes(update_parameters_with_adam=rounded), ops_wanted=["adam.update"])
    assert by_result(report, "adam.update/outside_sqrt/nondefault").status == "fail"


# ---------------------------------------------------------------- selection


def test_skip_and_xfail_files(tmp_path):
    skip = tmp_path / "skip.txt"
    skip.write_text("# comment\nadam.update/outside_sqrt/t-1*\nno/such/case  # typo\nadam.update/outside_sqrt/t-\n")
    xfail = tmp_path / "xfail.txt"
    xfail.write_text("momentum.init/*\n")
    conventions = resolve(reference_target().OPTCONFORM_CONVENTIONS)
    selection = select(CASES, conventions, "float64", None, CaseIdList.read(str(skip)), CaseIdList.read(str(xfail)))
    ids = {case.id for case in selection.run}
    assert "adam.update/outside_sqrt/t-1" not in ids and "adam.update/outside_sqrt/nondefault" in ids
    assert any(s.startswith("adam.update/outside_sqrt/t-1000") for s in selection.skipped)
    assert "adam.update/outside_sqrt/t-2" in ids  # the glob covers t-1* only
    # an entry without a glob is an exact id: "t-" is no prefix of "t-2" and matches nothing
    assert selection.warnings == [f"{skip}: 'no/such/case' matches no case",
                                  f"{skip}: 'adam.update/outside_sqrt/t-' matches no case"]
    assert all(case_id.startswith("momentum.init/") for case_id in selection.xfail) and selection.xfail


def test_an_exact_xfail_entry_never_hides_its_longer_namesakes(tmp_path):
    xfail = tmp_path / "xfail.txt"
    xfail.write_text("adam.update/outside_sqrt/t-1\n")
    selection = select(CASES, resolve({}), "float64", None, None, CaseIdList.read(str(xfail)))
    assert selection.xfail == {"adam.update/outside_sqrt/t-1"}


def test_float64_only_cases_are_not_run_at_float32():
    conventions = resolve(reference_target().OPTCONFORM_CONVENTIONS)
    selection = select(CASES, conventions, "float32")
    assert all(case.runs_at("float32") for case in selection.run)
    assert any("float64 only" in reason for reason in selection.skipped)


# ---------------------------------------------------------------- files and notebooks


def test_course_submission_file_conforms_and_its_demo_never_runs():
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(ROOT / "examples/course_submission.py"),
                           "--format", "json"], capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert report["summary"]["failed"] == report["summary"]["errors"] == 0
    core = [c for c in CASES if conventions_match(c.conventions, resolve({})) and c.op not in EXTENDED_OPS]
    assert report["summary"]["passed"] == len(core)  # the example predates gd, RMSprop and the decays
    assert any("not checked" in warning and "update_lr" in warning for warning in report["warnings"])


def test_seed_notebook_with_runaway_cell_is_graded_with_seed_names():
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(ROOT / "examples/seed_notebook.ipynb"),
                           "--format", "json", "--convention", "adam.epsilon=inside_sqrt"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    report = json.loads(done.stdout)
    status = {}
    for case in report["cases"]:
        status.setdefault(case["op"], set()).add(case["status"])
    # the seed (epsilon inside the root, seed names, Y reshaped to (1, m)) conforms under its own convention
    assert all(found == {"pass"} for found in status.values()), status
    assert not any("y_rows" in case["id"] or "multi_row" in case["id"] for case in report["cases"])
    assert any("uses math without importing it" in w for w in report["warnings"])


def test_seed_reshape_fails_multi_row_labels_with_one_line_naming_the_convention():
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(ROOT / "examples/seed_notebook.ipynb"),
                           "--format", "json", "--ops", "mini_batches", "--convention", "mini_batches.y_rows=multi_row"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    multi = [c for c in report["cases"] if "/multi_row/" in c["id"]]
    assert multi and all(c["status"] == "error" for c in multi)
    n_y_three = next(c for c in multi if c["id"] == "mini_batches/structural/multi_row/n-y-three")
    assert "reshape" in n_y_three["message"] and "cell" in n_y_three["message"]
    assert "mini_batches.y_rows=multi_row" in n_y_three["message"] and "\n" not in n_y_three["message"]
    assert all(c["status"] == "pass" for c in report["cases"] if "/multi_row/" not in c["id"])


def test_output_file_and_terminal_summary(tmp_path):
    out = tmp_path / "report.xml"
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "optconform.reference", "--ops",
                           "momentum.init", "--format", "junit", "--output", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert f"{INIT_CASES} passed" in done.stdout and "<testsuite" in out.read_text()


def test_module_object_target(tmp_path):
    module = tmp_path / "port_with_object.py"
    module.write_text(textwrap.dedent("""
        import types
        import optconform.reference as r
        port = types.SimpleNamespace(initialize_velocity=r.initialize_velocity)
    """))
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "port_with_object:port", "--ops",
                           "momentum.init"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_op_that_keeps_timing_out_is_given_up_after_three(tmp_path):
    submission = tmp_path / "hangs.py"
    submission.write_text(textwrap.dedent("""
        import numpy as np
        def initialize_velocity(parameters):
            while True:
                pass
        def initialize_adam(parameters):
            return ({"d" + k: np.zeros_like(p) for k, p in parameters.items()},
                    {"d" + k: np.zeros_like(p) for k, p in parameters.items()})
    """))
    session = ProcessSession(child_argv(str(submission)), "hangs.py", timeout=0.5)
    try:
        report = run(None, session=session, ops_wanted=["momentum.init", "adam.init"])
    finally:
        session.close()
    momentum = [r for r in report.results if r.op == "momentum.init"]
    assert [r.status for r in momentum] == ["error"] * INIT_CASES
    assert all("timed out" in r.message and "not run" not in r.message for r in momentum[:3])
    assert all(r.message.startswith("not run: momentum.init timed out 3 times in a row") for r in momentum[3:])
    # the other op is unaffected: its cases still run and pass
    assert {r.status for r in report.results if r.op == "adam.init"} == {"pass"}


def test_a_module_in_the_working_directory_is_found_without_pythonpath(tmp_path):
    """With --module, a bare name is a module of the working directory (without it: the file my_port.py)."""
    (tmp_path / "my_port.py").write_text("from optconform.reference import initialize_velocity\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    for extra in ([], ["--isolate"]):
        done = subprocess.run(["optconform", "check", "my_port", "--module", "--ops", "momentum.init", *extra],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert done.returncode == 0, (extra, done.stdout[-1000:], done.stderr)


def test_isolate_runs_a_module_target_in_a_child_with_timeouts(tmp_path):
    (tmp_path / "hang_port.py").write_text(textwrap.dedent("""
        from optconform.reference import initialize_velocity
        def initialize_adam(parameters):
            while True:
                pass
    """))
    done = subprocess.run(["optconform", "check", "hang_port", "--module", "--isolate", "--timeout", "0.5", "--ops",
                           "momentum.init,adam.init", "--format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    statuses = {(c["op"], c["status"]) for c in json.loads(done.stdout)["cases"]}
    assert statuses == {("momentum.init", "pass"), ("adam.init", "error")}


def test_errors_of_one_kind_are_summarized_in_one_line():
    def broken(parameters):
        raise ValueError(f"cannot handle {len(parameters)} arrays")

    report = run(with_changes(initialize_velocity=broken), ops_wanted=["momentum.init"])
    lines = [line for line in report.diagnosis_summary if "error" in line]
    assert len(lines) == 1 and lines[0].startswith(f"momentum.init: {INIT_CASES} cases error: ValueError: cannot handle ")


def test_a_port_that_calls_sys_exit_errs_instead_of_ending_the_run_green():
    import sys as system

    target = with_changes(initialize_velocity=lambda parameters: system.exit(0))
    report = run(target, ops_wanted=["momentum.init"])
    assert report.results and all(r.status == "error" and "sys.exit(0)" in r.message for r in report.results)


def test_an_in_place_adam_passes_in_process_because_v_and_s_are_never_one_dict():
    def in_place(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8):
        for param, grad in ops.slot_names(parameters):
            v[grad] *= beta1
            v[grad] += (1 - beta1) * grads[grad]
            s[grad] *= beta2
            s[grad] += (1 - beta2) * grads[grad] ** 2
            parameters[param] = parameters[param] - learning_rate * (v[grad] / (1 - beta1 ** t)) / (
                np.sqrt(s[grad] / (1 - beta2 ** t)) + epsilon)
        return parameters, v, s

    report = run(with_changes(update_parameters_with_adam=in_place), ops_wanted=["adam.trajectory"])
    assert report.results and failures(report) == []


def test_quiet_max_failures_and_list_json(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "optconform.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=300)

    buggy = ROOT / "examples" / "buggy_submission.py"
    quiet = cli("check", buggy, "-q")
    assert quiet.returncode == 1 and len(quiet.stdout.strip().splitlines()) == 1 and "failed" in quiet.stdout
    capped = json.loads(cli("check", buggy, "--max-failures", "3", "--format", "json").stdout)
    assert capped["summary"]["failed"] + capped["summary"]["errors"] == 3
    assert any("--max-failures 3 reached" in line for line in capped.get("skipped", [])) or capped["summary"]["skipped"]
    assert cli("check", buggy, "--max-failures", "0").returncode == 2
    listing = json.loads(cli("list", "--format", "json", "--ops", "adam").stdout)
    assert set(listing["ops"]) == {"adam.init", "adam.update", "adam.trajectory"}
    assert listing["ops"]["adam.update"]["functions"] == ["update_parameters_with_adam"]
    assert all(case["why"] for case in listing["cases"])
    ignored = cli("list", "--dtype", "float32")
    assert ignored.returncode == 2 and "unrecognized arguments" in ignored.stderr


def _stderr_of_check_on_a_terminal(*extra: str) -> str:
    """Run ``check`` with stderr on a pseudo-terminal (stdout a pipe); what the terminal showed."""
    import os
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "optconform.cli", "check", "optconform.reference",
                                "--ops", "adam.trajectory", *extra], stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    process.communicate(timeout=120)
    os.close(primary)
    return shown.decode(errors="replace")


def test_check_shows_progress_on_a_terminal_and_nothing_on_a_pipe():
    shown = _stderr_of_check_on_a_terminal()
    assert "case/s" in shown or "s/case" in shown  # tqdm's rate: a bar was drawn on the terminal
    assert "optconform.reference" in shown
    assert "case" not in _stderr_of_check_on_a_terminal("-q")
    piped = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "optconform.reference", "--ops",
                            "adam.trajectory"], capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""


def _deep_failing_report(tmp_path, failing: str, timeout: float = 30):
    """A correct port whose adam.update does ``failing`` (a line of code) on networks of three layers or more,
    checked on every adam.update case through the child server; (the report, the selection, the requests sent)."""
    path = tmp_path / "fails_on_three_layers.py"
    path.write_text(textwrap.dedent(f"""
        import os
        from optconform.reference import *  # noqa: F403 - a correct port ...
        from optconform.reference import update_parameters_with_adam as _adam

        def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                        epsilon=1e-8):
            if "W3" in parameters:  # ... but for networks of three layers or more
                {failing}
            return _adam(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon)
    """))
    session = ProcessSession(child_argv(str(path)), "deep", timeout=timeout, sandbox=False)
    requests = []
    send = session._send
    session._send = lambda op, *a, **k: (requests.append(op), send(op, *a, **k))[1]
    try:
        cases = [c for c in load_suite() if c.op == "adam.update"
                 and c.conventions.get("adam.epsilon", "outside_sqrt") == "outside_sqrt"]
        conventions = resolve(reference.OPTCONFORM_CONVENTIONS)
        selection = select(cases, conventions, "float64")
        report = run_cases(session, selection, "float64", conventions, "deep", diagnoser=Diagnoser())
    finally:
        session.close()
    return report, selection, requests


def _landed_on_their_own_cases(report, selection, requests, how: str) -> list[str]:
    """The failures ``how`` (words of their message) fell on deep networks only, the cases before the op was
    given up on all passed, and the calls went in batches; the ids of the failing cases."""
    deep = {c.id for c in selection.run if "W3" in c.inputs["parameters"]}
    assert deep and len(deep) < len(selection.run)
    failed = [r.id for r in report.results if how in r.message]
    assert failed and set(failed) <= deep  # never blamed on a neighbour in the same batch
    capped = next(i for i, r in enumerate(report.results) if "3 times in a row" in r.message)
    assert all(r.status == "pass" for r in report.results[:capped] if r.id not in deep)
    assert all(report.results[i].id in deep for i in range(capped) if report.results[i].status != "pass")
    assert "batch" in requests and len(requests) < len(selection.run)
    return failed


def test_calls_travel_in_batches_and_a_crash_lands_on_its_own_case(tmp_path):
    """Version 2 sends the coming cases' calls in one request, answered a call at a time; when a call ends the
    program mid-batch, that call fails as it would alone and the rest are made one by one, so only the cases
    that crash it show the crash. The child sends a batch's answers in bursts, so the answers just before the
    crash go down with it: those calls are made again, alone, before the one that crashes."""
    report, selection, requests = _deep_failing_report(tmp_path, "os._exit(3)")
    _landed_on_their_own_cases(report, selection, requests, "exited with code 3")


def test_a_call_that_hangs_in_a_batch_holds_back_no_answer_before_it(tmp_path):
    """While a call of a batch hangs, the answers the child kept to send with it still leave (its watcher
    thread), so the timeout lands on the call that hangs, never on one before it."""
    report, selection, requests = _deep_failing_report(tmp_path, "while True: pass", timeout=1.5)
    _landed_on_their_own_cases(report, selection, requests, "no answer within")


def test_the_child_sends_a_batchs_answers_together_and_none_waits_long(monkeypatch):
    """The child's output keeps a batch's answers to send them in one write; the last answer of a request, a
    slow call's answer, or one that has waited FLUSH_AFTER (the watcher) leaves without waiting for more; the
    watcher thread ends with its output."""
    import os
    import select as select_module
    import time

    from optconform.harness.target import child

    def readable(wait: float = 0.0) -> bytes:
        ready, _, _ = select_module.select([read_end], [], [], wait)
        return os.read(read_end, 1 << 16) if ready else b""

    monkeypatch.setattr(child, "FLUSH_AFTER", 1.0)  # long enough that nothing leaves early on a slow machine
    read_end, write_end = os.pipe()
    try:
        out = child._Output(write_end)
        out.write("a\n", more=True)
        out.write("b\n", more=True)
        assert readable() == b""
        out.write("c\n", more=False)
        assert readable() == b"a\nb\nc\n"
        out.write("slow\n", more=True, started=time.monotonic() - 2.0)
        assert readable() == b"slow\n"
        monkeypatch.setattr(child, "FLUSH_AFTER", 0.05)
        started = time.monotonic()
        out.write("waits\n", more=True)
        assert readable(wait=5.0) == b"waits\n"  # nothing more came: the watcher sent it
        assert 0.05 <= time.monotonic() - started < 5.0
        watcher = out._watcher
        del out
        watcher.join(5.0)
        assert not watcher.is_alive()
    finally:
        os.close(read_end)
        os.close(write_end)


def _trajectory_report(path, ops=("adam.trajectory",)):
    cases = [c for c in load_suite() if c.op in ops]
    conventions = resolve(reference.OPTCONFORM_CONVENTIONS)
    selection = select(cases, conventions, "float64")
    session = ProcessSession(child_argv(str(path)) if not isinstance(path, list) else path, "t", timeout=30,
                             sandbox=False)
    sent = []
    send = session._send
    session._send = lambda op, *a, **k: (sent.append(op), send(op, *a, **k))[1]
    try:
        return run_cases(session, selection, "float64", conventions, "t", diagnoser=Diagnoser()), sent
    finally:
        session.close()


def test_a_free_run_goes_in_one_chain_and_still_catches_state_carried_wrongly(tmp_path):
    path = tmp_path / "counter.py"
    path.write_text(textwrap.dedent("""
        from optconform.reference import *  # noqa: F403
        from optconform.reference import update_parameters_with_adam as _adam

        CALLS = [0]

        def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                        epsilon=1e-8):
            CALLS[0] += 1  # its own step counter: right while the harness counts 1..12, wrong after
            return _adam(parameters, grads, v, s, (CALLS[0] - 1) % 12 + 1 if CALLS[0] <= 12 else CALLS[0],
                         learning_rate, beta1, beta2, epsilon)
    """))
    report, sent = _trajectory_report(path)
    first = report.results[0]
    assert first.status == "fail" and "the state is carried wrongly from one call to the next" in first.message
    assert "chain" in sent and "adam.update" not in sent  # the free run in one request, no single call


def test_a_chain_that_a_program_ends_too_soon_is_a_protocol_error(tmp_path):
    program = tmp_path / "short_chain.py"
    program.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from optconform.harness.target import child
        from optconform.harness.target.adapter import PythonAdapter
        import optconform.reference as reference

        whole = child._chain
        def short(*args, **kwargs):
            answers = whole(*args, **kwargs)[:3]
            answers[-1]["last"] = True  # says it is done after two steps
            return answers
        child._chain = short
        child.serve(PythonAdapter(reference, "short"), sys.stdin.buffer, sys.stdout)
    """))
    report, _ = _trajectory_report([sys.executable, str(program)])
    assert report.results and all(r.status == "error" and "stopped the steps after 2" in r.message
                                   for r in report.results)


def test_a_failing_trajectorys_plot_marks_the_step_the_report_names():
    """The series behind a trajectory's plot parts from the reference at the step the comparison found
    wrong: it applies the case's own tolerance, scale included."""
    import re

    def late_bug(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        return ops.adam_update(p, g, v, s, t if t < 4 else t + 5, lr, b1, b2, eps)

    report = run(with_changes(update_parameters_with_adam=late_bug), ops_wanted=["adam.trajectory"])
    failing = [r for r in report.results if r.status == "fail"]
    assert failing
    for result in failing:
        named = int(re.search(r"step (\d+) of \d+ is the first wrong one", result.message).group(1))
        assert result.series is not None and result.series["first_wrong"] == named == 4, (result.id, result.series)
        assert len(result.series["got"]) == len(result.series["expected"]) == 12
        series = result.series
        assert series["error"] == [abs(g - e) for g, e in zip(series["got"], series["expected"])]
        assert all(err <= allowed for err, allowed in zip(series["error"][:3], series["allowed"][:3]))
        assert series["error"][3] > series["allowed"][3]


def test_a_plot_shows_the_element_whose_error_is_largest_even_when_the_curves_overlap():
    """Epsilon inside the root changes each value by about one part in 10^8: the values' curves overlap, so the
    plot is of the error, on a log scale, at the element where it is largest for its tolerance."""

    def inside(p, g, v, s, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        return ops.adam_update(p, g, v, s, t, lr, b1, b2, eps, epsilon_placement="inside_sqrt")

    report = run(with_changes(update_parameters_with_adam=inside), ops_wanted=["adam.trajectory"])
    failing = [r for r in report.results if r.status == "fail" and r.series]
    assert failing
    for result in failing:
        series = result.series
        ratios = [e / a for e, a in zip(series["error"], series["allowed"])]
        assert max(ratios) > 1 and series["first_wrong"] is not None
        assert 0 < max(series["error"]) < 1e-2 * max(map(abs, series["expected"]))  # the curves would overlap
        case = next(c for c in load_suite() if c.id == result.id)
        assert max(ratios) == _largest_excess(case, inside)  # no element of the free run is further past its bound


def _largest_excess(case, update) -> float:
    """The largest error / allowed error over every element of every step of ``update``'s free run."""
    import numpy as np

    inputs, tolerance = case.inputs, case.tolerance["float64"]
    parameters = inputs["parameters"]
    v, s = ops.adam_init(parameters)
    largest = 0.0
    for step, (grads, expected, scale) in enumerate(zip(inputs["grads"], case.expected["steps"],
                                                        case.tolerance["scale"]["steps"])):
        parameters, v, s = update(parameters, grads, v, s, step + 1, inputs["learning_rate"], inputs["beta1"],
                                  inputs["beta2"], inputs["epsilon"])
        for tree, arrays in {"parameters": parameters, "v": v, "s": s}.items():
            for key, got in arrays.items():
                allowed = tolerance["rtol"] * np.abs(np.asarray(scale[tree][key])) + tolerance["atol"]
                largest = max(largest, float(np.max(np.abs(got - expected[tree][key]) / allowed)))
    return largest


def test_every_option_of_every_command_says_what_it_does_and_its_default():
    """``--help`` of each command: every option has help, and that help names its default (or says it has none)."""
    import argparse

    from optconform.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    unsaid = []
    for name, command in commands.items():
        for action in command._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            said = (action.help or "").lower()
            if not said or not any(word in said for word in ("default", "by default", "required")):
                unsaid.append(f"{name} {action.option_strings[0]}: {action.help!r}")
    assert not unsaid, unsaid
    grade_help = " ".join(commands["grade"].format_help().split())
    assert "export zip" in grade_help and "(default: grades)" in grade_help and "one per core" in grade_help
    assert "a submission's own declaration is ignored" in grade_help


def test_list_names_the_function_each_op_calls():
    from optconform.harness.checking.selection import list_suite

    text = list_suite()
    assert any(line.split()[:1] == ["adam.trajectory"] and line.rstrip().endswith(
        "update_parameters_with_adam, initialize_adam") for line in text.splitlines())
    assert any(line.split()[:1] == ["lr_decay.scheduled"] and line.rstrip().endswith("schedule_lr_decay")
               for line in text.splitlines())
