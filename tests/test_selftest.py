"""optconform selftest: the vectors kill every mutant of the reference that is not equivalent."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from optconform.harness import selftest
from optconform.harness.selftest import EQUIVALENTS, failing_variants, run_mutant, uncaught_mistakes
from optconform.harness.selftest.mutants import mutants
from optconform.reference import ops
from optconform.reference.mistakes import Mistake
from optconform.vectors import load_suite


def _selftest(*args):
    return subprocess.run([sys.executable, "-m", "optconform.cli", "selftest", *args], capture_output=True,
                          text=True, timeout=600)


def test_every_mutant_is_killed_or_listed_as_equivalent():
    done = _selftest("--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 0, [m["id"] for m in report["mutants"] if m["status"] == "survived"]
    assert report["ok"] and len(report["mutants"]) > 80
    statuses = {m["status"] for m in report["mutants"]}
    assert statuses == {"killed", "equivalent"}
    killed = [m for m in report["mutants"] if m["status"] == "killed"]
    assert all(m["killed_by"] for m in killed)
    # the defaults of the course functions are pinned (they all survived before the omitted-argument cases)
    defaults = {m["function"] for m in report["mutants"] if m["default"] and m["status"] == "killed"}
    assert defaults == {"adam_update", "mini_batches", "lr_scheduled", "rmsprop_update"}


def test_mutant_ids_are_unique_and_each_mutant_changes_the_code():
    found = mutants()
    assert len({m.id for m in found}) == len(found)
    import ast
    import inspect

    original = inspect.getsource(ops)
    assert all(ast.unparse(ast.parse(m.source)) != ast.unparse(ast.parse(original)) for m in found)
    assert not [m for m in found if m.function == "call_defaults"]


def test_a_survivor_not_listed_fails_the_run_and_is_named(tmp_path):
    kept = [line for line in EQUIVALENTS.read_text().splitlines() if "shuffled_Y" not in line]
    equivalents = tmp_path / "equivalent.txt"
    equivalents.write_text("\n".join(kept) + "\n")
    done = _selftest("--only", "^mini_batches", "--equivalents", str(equivalents))
    assert done.returncode == 1
    assert "SURVIVED  mini_batches: shuffled_Y[:, k:k + mini_batch_size].copy() [drop .copy()] #1 (line " \
        in done.stdout
    assert "shuffled_X" not in done.stdout  # the listed one is equivalent, not a survivor


def test_a_killed_mutant_listed_as_equivalent_is_stale(tmp_path):
    equivalents = tmp_path / "equivalent.txt"
    equivalents.write_text(EQUIVALENTS.read_text()
                           + "gd_update: learning_rate * grads[grad] [Mult -> Div] #1  -- wrongly listed\n"
                           + "gd_update: no such mutant [X] #1  -- gone\n")
    done = _selftest("--only", "^gd_update", "--equivalents", str(equivalents))
    assert done.returncode == 1
    assert "STALE     gd_update: learning_rate * grads[grad] [Mult -> Div] #1: listed as equivalent but killed" \
        in done.stdout
    assert "gd_update: no such mutant [X] #1: no such mutant" in done.stdout


def test_a_malformed_equivalents_file_is_a_usage_error(tmp_path):
    equivalents = tmp_path / "equivalent.txt"
    equivalents.write_text("adam_init: something without a reason\n")
    done = _selftest("--equivalents", str(equivalents))
    assert done.returncode == 2
    assert done.stderr.strip() == "optconform: error: equivalents file: equivalent.txt:1: expected " \
                                  "'<mutant id>  -- <reason>'"


def test_a_case_removed_from_the_vectors_lets_its_mutant_survive():
    mutant = next(m for m in mutants() if m.id == "rmsprop_update: 1e-08 [1e-08 -> 0] #1")
    cases = load_suite()
    assert run_mutant(mutant, cases).killed_by == ["rmsprop.update/outside_sqrt/default-epsilon"]
    without = [c for c in cases if not c.id.endswith("/default-epsilon")]
    assert run_mutant(mutant, without).status == "survived"


def test_a_mistake_that_computes_the_reference_is_reported_uncaught(monkeypatch):
    fake = Mistake("not-a-mistake", "gd.update", "the reference itself", "", "", ops.gd_update)
    monkeypatch.setattr(selftest.catalogue, "MISTAKES", [fake])
    assert uncaught_mistakes(load_suite()) == ["gd.update: not-a-mistake"]


def test_a_correct_variant_that_fails_is_reported(monkeypatch):
    import optconform.reference as reference

    def off_by_one_percent(learning_rate0, epoch_num, decay_rate):
        return 1.01 * reference.update_lr(learning_rate0, epoch_num, decay_rate)

    namespace = types.SimpleNamespace(OPTCONFORM_CONVENTIONS=dict(reference.OPTCONFORM_CONVENTIONS),
                                      update_lr=off_by_one_percent)
    monkeypatch.setattr(selftest, "correct_variants", lambda: {"wrong": (namespace, "float64")})
    failures = failing_variants(load_suite())
    assert len(failures) == 1 and failures[0].startswith("wrong (float64): lr_decay.inverse_time/")


@pytest.mark.parametrize("name", ["course style, in place", "rearranged algebra", "seed notebook names"])
def test_each_correct_variant_implements_every_op_it_claims(name):
    namespace, _ = selftest.correct_variants()[name]
    from optconform.harness.target.session import InProcessSession

    assert len(InProcessSession(namespace, name).info.ops) == 10


def test_the_slips_people_make_are_mutants():
    """An integer one less (``time_interval=999``), a name swapped for its twin (``beta1`` for ``beta2``), a
    statement deleted: each is a mutant, and the vectors kill it."""
    by_id = {m.id: m for m in mutants()}
    wanted = ["lr_scheduled: 1000 [1000 -> 999] #1", "adam_update: beta2 [beta2 -> beta1] #1",
              "adam_update: new_v[grad] = beta1 * v[grad] + (1.0 - beta1) * g [delete statement] #1",
              "mini_batches: k [k -> m] #1"]
    present = [mutant_id for mutant_id in wanted if mutant_id in by_id]
    assert present == wanted[:3]  # one-letter locals (a loop counter, a count) are not twins
    cases = load_suite()
    for mutant_id in present:
        result = run_mutant(by_id[mutant_id], cases)
        assert result.status == "killed", mutant_id
    assert run_mutant(by_id[wanted[0]], cases).killed_by == ["lr_decay.scheduled/default-interval-before-boundary"]


def test_the_harness_mutants_of_the_atomic_write_are_killed_by_its_tests(tmp_path):
    done = _selftest("--harness", "--only", r"^atomic\.", "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], done.stderr
    assert len(report["mutants"]) >= 10 and {m["status"] for m in report["mutants"]} == {"killed"}
    assert all(m["killed_by"][0].startswith("tests/test_atomic.py::") for m in report["mutants"])


def test_a_harness_survivor_not_listed_fails_the_run(tmp_path):
    from optconform.harness.selftest.harness_mutants import EQUIVALENTS as HARNESS_EQUIVALENTS

    kept = [line for line in HARNESS_EQUIVALENTS.read_text().splitlines() if "summary_table" not in line]
    equivalents = tmp_path / "equivalent.txt"
    equivalents.write_text("\n".join(kept) + "\n")
    done = _selftest("--harness", "--only", r"^gradebook\.summary_table", "--equivalents", str(equivalents))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SURVIVED  gradebook.summary_table: min(width, 40) [swap first two arguments] #1" in done.stdout
    assert "no test kills it" in done.stdout
