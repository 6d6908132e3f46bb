"""The distinguishability matrix: the shipped vectors tell every known mistake apart.

For every mistake of ``optconform.reference.mistakes`` at least one shipped case
(a *witness*) must separate its output from the reference's and from every other
mistake that applies to that case: each pair of outputs lies outside the case's
float64 tolerance of each other. Then a target failing the witness case is named
unambiguously. ``mini_batches`` are compared exactly on the ``numpy_legacy`` cases.

Where no single case can (``round`` for ``floor`` agrees with ``ceil`` wherever it is
wrong), the suite must still tell them apart the way the diagnosis settles a run: each
other mistake differs from it on a case where it fails, or fails a case where it is
right (a check the student passed rules that name out).

The matrix is searched with the vectorized ``failing_leaves``; each witness is
confirmed with the canonical ``compare_case_outputs``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from optconform.harness.checking.compare import compare_case_outputs
from optconform.harness.diagnosis.matching import Flat, failing_leaves
from optconform.harness.diagnosis.variants import variant_output
from optconform.reference import ops
from optconform.reference.conventions import resolve
from optconform.reference.mistakes import MISTAKES, mistakes_for, step_op
from optconform.vectors import load_suite, shipped_dir

DTYPE = "float64"
KEY = lambda mistake: f"{mistake.op}:{mistake.name}"  # noqa: E731


def mistake_conventions(mistake) -> dict:
    """The conventions under which ``mistake`` is one (its ``when``)."""
    return dict(mistake.when)


def _comparable(case) -> bool:
    if case.op != "mini_batches":
        return True
    return resolve(case.conventions)["mini_batches.rng"] == "numpy_legacy"


@pytest.fixture(scope="module")
def suite():
    return load_suite()


@pytest.fixture(scope="module")
def matrix(suite):
    """``{mistake key: (witness case, outputs)}`` and, for mistakes without one, who they were never told from."""
    witnesses, separated, applicable = {}, {KEY(m): set() for m in MISTAKES}, {KEY(m): 0 for m in MISTAKES}
    failing_apart, ruled_out = {KEY(m): set() for m in MISTAKES}, {KEY(m): set() for m in MISTAKES}
    for case in suite:
        if not _comparable(case):
            continue
        mistakes = mistakes_for(case.op, case.conventions, DTYPE)
        pending = [m for m in mistakes if KEY(m) not in witnesses]
        if not pending:
            continue
        outputs = {"reference": variant_output(case)}
        outputs.update({m.name: variant_output(case, m) for m in mistakes})
        flats = {name: Flat(out) for name, out in outputs.items()}
        for mistake in pending:
            applicable[KEY(mistake)] += 1
            apart = {other for other in outputs if other != mistake.name
                     and failing_leaves(case, flats[mistake.name], DTYPE, expected=outputs[other])}
            separated[KEY(mistake)] |= apart
            # where it fails, the others it differs from; where it is right, the others that fail
            (failing_apart if "reference" in apart else ruled_out)[KEY(mistake)].update(apart - {"reference"})
            if len(apart) == len(outputs) - 1:
                witnesses[KEY(mistake)] = (case, outputs)
    return witnesses, separated, applicable, failing_apart, ruled_out


@pytest.mark.parametrize("mistake", MISTAKES, ids=KEY)
def test_every_mistake_has_a_witness_case(mistake, matrix):
    witnesses, separated, applicable, failing_apart, ruled_out = matrix
    key = KEY(mistake)
    assert applicable[key] or key in witnesses, f"{key}: no shipped case applies to it"
    if key not in witnesses:
        others = {m.name for m in mistakes_for(mistake.op, mistake_conventions(mistake)) if m.name != mistake.name}
        left = others - failing_apart[key] - ruled_out[key]
        if "reference" in separated[key] and not left:
            return  # told apart by two cases, as a run is settled
        pytest.fail(f"{key}: no single shipped case tells it apart from everything; never told apart from: "
                    f"{sorted(({'reference'} - separated[key]) | left)}")
    case, outputs = witnesses[key]
    mine = outputs[mistake.name]
    for other, theirs in outputs.items():
        if other == mistake.name:
            continue
        assert not compare_case_outputs(case, mine, DTYPE, expected=theirs).ok, (key, case.id, other)
        assert not compare_case_outputs(case, theirs, DTYPE, expected=mine).ok, (key, case.id, other)


def test_fast_comparison_agrees_with_compare(suite):
    """``failing_leaves`` decides as ``compare_case_outputs`` does, on a sample of variant pairs."""
    checked = 0
    for case in suite[::9]:
        if not _comparable(case):
            continue
        mistakes = mistakes_for(case.op, case.conventions, DTYPE)[:8]
        outputs = [variant_output(case)] + [variant_output(case, m) for m in mistakes]
        for first in outputs:
            for second in outputs[:4]:
                fast = failing_leaves(case, first, DTYPE, expected=second)
                slow = compare_case_outputs(case, first, DTYPE, expected=second)
                assert bool(fast) == (not slow.ok), case.id
                if Flat(first).keys == Flat(second).keys:  # same structure: the same keys fail
                    assert fast == set(slow.failing_keys()), case.id
                checked += 1
    assert checked > 100


# ---------------------------------------------------------------- the mistakes as data


REFERENCE_OF = {
    "mini_batches": ops.mini_batches,
    "momentum.init": ops.momentum_init,
    "adam.init": ops.adam_init,
    "momentum.update": ops.momentum_update,
    "adam.update": ops.adam_update,
    "gd.update": ops.gd_update,
    "rmsprop.init": ops.rmsprop_init,
    "rmsprop.update": ops.rmsprop_update,
    "lr_decay.inverse_time": ops.lr_inverse_time,
    "lr_decay.scheduled": ops.lr_scheduled,
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=KEY)
def test_mistake_is_well_formed(mistake):
    assert mistake.op in REFERENCE_OF and step_op(mistake.op) == mistake.op
    reference = inspect.signature(REFERENCE_OF[mistake.op])
    assert list(inspect.signature(mistake.fn).parameters) == list(reference.parameters), mistake.name
    assert mistake.name == mistake.name.lower() and " " not in mistake.name
    for text in (mistake.title, mistake.explanation, mistake.fix):
        assert text and "\n" not in text and "[" not in text and "]" not in text, (mistake.name, text)
    assert ":" not in mistake.title
    assert mistake.explanation.endswith(".") and len(mistake.explanation) < 240
    assert len(mistake.fix) < 200


def test_names_are_unique_within_an_op():
    keys = [KEY(m) for m in MISTAKES]
    assert len(keys) == len(set(keys))


def test_the_issue_list_is_covered():
    names = {(m.op, m.name) for m in MISTAKES}
    adam = {"no-bias-correction", "only-first-correction", "only-second-correction", "t-plus-one", "t-minus-one",
            "t-plus-layer", "epsilon-inside-sqrt", "epsilon-outside-sqrt", "epsilon-dropped", "betas-swapped",
            "corrections-swapped", "one-minus-beta-power", "hardcoded-learning-rate", "hardcoded-beta1",
            "hardcoded-beta2", "hardcoded-epsilon", "abs-for-square", "v-squared-for-square", "no-sqrt",
            "wrong-sign", "last-layer-skipped", "first-layer-skipped", "biases-skipped", "float32",
            "v-s-aliased", "private-step-counter", "moments-not-stored"}
    momentum = {"heavy-ball", "ema", "step-with-gradient", "wrong-sign", "velocity-not-stored",
                "hardcoded-beta", "hardcoded-learning-rate", "last-layer-skipped", "first-layer-skipped",
                "biases-skipped", "float32"}
    batches = {"last-batch-dropped", "last-batch-misaligned", "xy-different-permutations", "unshuffled-x",
               "no-shuffle", "seed-ignored"}
    for op, wanted in (("adam.update", adam), ("momentum.update", momentum), ("mini_batches", batches)):
        assert {(op, n) for n in wanted} <= names, sorted(wanted - {n for o, n in names if o == op})


def test_mistakes_leave_their_inputs_alone(suite):
    import copy

    import numpy as np

    for case in suite[::5]:
        if case.op.endswith("trajectory"):
            continue
        before = copy.deepcopy(case.inputs)
        for mistake in mistakes_for(case.op, case.conventions, DTYPE):
            variant_output(case, mistake)
        for key, value in before.items():
            if isinstance(value, dict):
                assert all(np.array_equal(value[k], case.inputs[key][k], equal_nan=True) for k in value), case.id
            elif isinstance(value, np.ndarray):
                assert np.array_equal(value, case.inputs[key]), case.id


def test_vectors_stay_under_five_megabytes():
    total = sum(path.stat().st_size for path in Path(shipped_dir()).rglob("*.json"))
    assert total < 5 * 1024 * 1024, f"{total} bytes of vectors"
