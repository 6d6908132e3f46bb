"""Bugs the catalogue has no name for get no wrong name.

The corpus is generated: every mutant of the reference (the self-test's) of the learning-rate decays, gradient
descent and momentum, and decays written wrong in ways the catalogue has no name for (a squared epoch, a linear
decay, a function left returning its input). Each runs as a target with
the diagnosis and the run's settling, as a grading run does; a function is then told either that a mistake
explains all its failing checks, or that none is known, never a name that fits only some of them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from optconform.harness.checking.results import mistake_names
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import Selection
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting.story import build_story
from optconform.harness.selftest import CONFIGS, _selected, affected_ops, course_namespace, reference_functions
from optconform.harness.selftest.mutants import mutants
from optconform.harness.target.session import InProcessSession
from optconform.reference import ops
from optconform.vectors import load_suite

CHEAP = ("lr_inverse_time", "lr_scheduled", "gd_update", "momentum_update", "momentum_init")


@pytest.fixture(scope="module")
def cases():
    return load_suite()


def _story(namespace, wanted_ops, cases, name):
    conventions = CONFIGS[0]
    selection = Selection()
    selection.run = list(_selected(cases, conventions, wanted_ops, "float64"))
    with np.errstate(all="ignore"):
        report = run_cases(InProcessSession(namespace, name), selection, "float64", conventions, name,
                           diagnoser=Diagnoser(graded=True))
    return build_story(report)


def test_no_mutant_of_the_reference_gets_a_name_that_fits_only_some_of_its_failing_checks(cases):
    corpus = [m for m in mutants() if m.function in CHEAP]
    assert len(corpus) >= 20
    told = {"named": 0, "unnamed": 0}
    for mutant in corpus:
        story = _story(course_namespace(reference_functions(mutant.module()), CONFIGS[0]),
                       affected_ops(mutant.function), cases, mutant.id)
        for part in story.parts:
            if part.verdict == "mistake":
                assert not part.unexplained, (mutant.id, part.mistake, part.unexplained)
                told["named"] += 1
            elif part.verdict == "wrong":
                assert "No known mistake explains all" in part.sentence() or part.constant, mutant.id
                told["unnamed"] += 1
    assert told["unnamed"] > 0 and told["named"] > 0, told  # the corpus holds both kinds


def _decays(update_lr=None, schedule_lr_decay=None) -> dict:
    functions = reference_functions()
    namespace = course_namespace(functions, CONFIGS[0])
    if update_lr:
        namespace.update_lr = update_lr
    if schedule_lr_decay:
        namespace.schedule_lr_decay = schedule_lr_decay
    return namespace


UNCATALOGUED = {
    "epoch squared": dict(update_lr=lambda learning_rate0, epoch_num, decay_rate:
                          learning_rate0 / (1 + decay_rate * epoch_num ** 2)),
    "linear decay": dict(update_lr=lambda learning_rate0, epoch_num, decay_rate:
                         learning_rate0 * (1 - decay_rate * epoch_num)),
    "decay divided by the interval": dict(
        schedule_lr_decay=lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
        learning_rate0 / (1 + decay_rate / time_interval * math.floor(epoch_num / time_interval))),
    "returns its input": dict(update_lr=lambda learning_rate0, epoch_num, decay_rate: 0.5),
}

#: Bugs real code has that the catalogue names (they were uncatalogued once), and the name each must get.
NAMED = {
    "ceil-for-floor": dict(schedule_lr_decay=lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                           learning_rate0 / (1 + decay_rate * math.ceil(epoch_num / time_interval))),
    "round-for-floor": dict(schedule_lr_decay=lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                            learning_rate0 / (1 + decay_rate * round(epoch_num / time_interval))),
    "epoch-plus-one": dict(update_lr=lambda learning_rate0, epoch_num, decay_rate:
                           learning_rate0 / (1 + decay_rate * (epoch_num + 1))),
    "floor-division": dict(update_lr=lambda learning_rate0, epoch_num, decay_rate:
                           learning_rate0 // (1 + decay_rate * epoch_num)),
    "intervals-in-float32": dict(schedule_lr_decay=lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                                 learning_rate0 / (1 + decay_rate * float(np.floor(np.float32(epoch_num)
                                                                                   / np.float32(time_interval))))),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_learning_rate_bugs_the_catalogue_knows_get_their_name_and_only_it(cases, name):
    story = _story(_decays(**NAMED[name]), {"lr_decay.inverse_time", "lr_decay.scheduled"}, cases, name)
    wrong = [p for p in story.parts if p.verdict != "right"]
    assert len(wrong) == 1 and wrong[0].verdict == "mistake", [(p.function, p.verdict, p.mistake) for p in wrong]
    assert mistake_names(wrong[0].mistake) == [name] and not wrong[0].unexplained


@pytest.mark.parametrize("bug", sorted(UNCATALOGUED))
def test_learning_rate_bugs_with_no_name_are_never_given_one(cases, bug):
    story = _story(_decays(**UNCATALOGUED[bug]), {"lr_decay.inverse_time", "lr_decay.scheduled"}, cases, bug)
    wrong = [p for p in story.parts if p.verdict != "right"]
    assert wrong and all(p.verdict == "wrong" for p in wrong), [(p.function, p.mistake) for p in wrong]
    if bug == "returns its input":
        assert "returns the same value 0.5 whatever the inputs" in wrong[0].sentence()


def test_the_reference_decays_pass(cases):
    story = _story(_decays(), {"lr_decay.inverse_time", "lr_decay.scheduled"}, cases, "reference")
    assert all(p.verdict == "right" for p in story.parts) and ops.lr_inverse_time(1.0, 0, 1.0) == 1.0


def test_flushed_subnormals_are_named_as_such_never_nothing_updated(cases):
    """On the all-subnormal case a flushing Adam returns the parameters and zero moments as they came, exactly as
    one that updates nothing would; the checks it passes (every ordinary one) rule "nothing updated" out."""
    from optconform.reference.mistakes.model import flushing

    namespace = course_namespace({**reference_functions(), "adam_update": flushing(ops.adam_update)}, CONFIGS[0])
    story = _story(namespace, {"adam.update"}, cases, "flushing")
    (part,) = [p for p in story.parts if p.verdict != "right"]
    assert part.verdict == "mistake" and mistake_names(part.mistake) == ["subnormals-flushed"], part.mistake
