"""Mini-batches by structure, across seeds: every fair shuffle passes; fixed batches and a biased permutation fail.

Under ``mini_batches.rng=structural`` any RNG may shuffle, so a case calls the target with its seed and the next
few, and looks at what never moved: the columns each batch holds, and each column's position.
"""

from __future__ import annotations

import copy
import random
import types
from collections import Counter

import numpy as np
import pytest
from optional import require

from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import CaseIdList, select
from optconform.harness.target.readonly import FrozenResult, frozen
from optconform.harness.target.session import InProcessSession
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite

CONVENTIONS = resolve({"mini_batches.rng": "structural"})


def _legacy(m, seed):
    np.random.seed(seed)
    return np.random.permutation(m)


def _generator(m, seed):
    return np.random.default_rng(seed).permutation(m)


def _random_shuffle(m, seed):
    order = list(range(m))
    random.Random(seed).shuffle(order)
    return order


def _torch(m, seed):
    torch = require("torch")
    return torch.randperm(m, generator=torch.Generator().manual_seed(seed)).tolist()


def _fixed_batches(size):
    def permutation(m, seed):  # each batch shuffled inside itself: batch k always holds columns k*size..
        rng, order = np.random.default_rng(seed), []
        for start in range(0, m, size):
            block = list(range(start, min(start + size, m)))
            rng.shuffle(block)
            order += block
        return order
    return permutation


def _last_stays_last(m, seed):
    return [*np.random.default_rng(seed).permutation(m - 1), m - 1] if m > 1 else [0]


def _target(shuffle) -> types.SimpleNamespace:
    def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
        m = X.shape[1]
        order = list(shuffle(m, seed) if shuffle is not _fixed_batches else shuffle(mini_batch_size)(m, seed))
        X, Y = X[:, order], Y[:, order]
        return [(X[:, k:k + mini_batch_size], Y[:, k:k + mini_batch_size]) for k in range(0, m, mini_batch_size)]
    return types.SimpleNamespace(random_mini_batches=random_mini_batches)


@pytest.fixture(scope="module")
def cases():
    return [case for case in load_suite() if case.op == "mini_batches"]


def _run(cases, shuffle):
    session = InProcessSession(_target(shuffle), "shuffle")
    selection = select(cases, CONVENTIONS, "float64", ["mini_batches"], CaseIdList([]), CaseIdList([]),
                       session.info.ops)
    assert selection.run
    return run_cases(session, selection, "float64", CONVENTIONS, "shuffle")


@pytest.mark.parametrize("shuffle", [_legacy, _generator, _random_shuffle, _torch])
def test_every_fair_shuffle_conforms(cases, shuffle):
    report = _run(cases, shuffle)
    assert report.conforms, [(r.id, r.message) for r in report.results if r.status != "pass"][:3]


BATCHES_FIXED = "the examples never move from one batch to another (are they shuffled only inside fixed batches?)"
COLUMN_STUCK = "the shuffle never moves it"


@pytest.mark.parametrize("shuffle, said", [(_fixed_batches, BATCHES_FIXED), (_last_stays_last, COLUMN_STUCK)])
def test_a_shuffle_that_leaves_something_in_place_fails(cases, shuffle, said):
    report = _run(cases, shuffle)
    failing = [r for r in report.results if r.status == "fail"]
    # each failure says what never moved (with m = size + 1, the last column stuck is also a batch that never changes)
    assert failing and all(BATCHES_FIXED in r.message or COLUMN_STUCK in r.message for r in failing)
    assert all(r.status != "error" for r in report.results)
    many = [r for r in report.results if r.id.startswith("mini_batches/structural/many-batches")]
    assert many and many[0].status == "fail" and said in many[0].message  # ten batches of m = 300 tell it


class _Shared:
    """A session whose answers come as a grading process shares them: one read-only FrozenResult per distinct
    answer, whoever sends it (``answers.py``)."""

    def __init__(self, inner, kept: dict):
        self.inner, self.info, self.kept = inner, inner.info, kept

    def call(self, op, args, conventions=None):
        got, problems = self.inner.call(op, args, conventions)
        key = repr([(x.tobytes(), x.shape, y.tobytes(), y.shape) for x, y in got["batches"]])
        return self.kept.setdefault(key, FrozenResult(frozen(got))), problems


def _dropped_last(m, seed):
    return _legacy(m, seed)[: m - 1] if m > 1 else [0]


@pytest.mark.parametrize("shuffle", [_legacy, _fixed_batches, _last_stays_last, _dropped_last])
def test_a_shared_answer_is_read_as_a_fresh_one_the_first_time_and_every_time_after(cases, shuffle):
    cases = [copy.copy(case) for case in cases]  # nothing remembered from another test
    for case in cases:
        case.__dict__.pop("_read_batches", None)
    session, kept = InProcessSession(_target(shuffle), "shuffle"), {}
    selection = select(cases, CONVENTIONS, "float64", ["mini_batches"], CaseIdList([]), CaseIdList([]),
                       session.info.ops)
    fresh = run_cases(session, selection, "float64", CONVENTIONS, "shuffle")
    said = [[(r.id, r.status, r.message, r.details) for r in report.results] for report in (
        fresh, *(run_cases(_Shared(session, kept), selection, "float64", CONVENTIONS, "shuffle") for _ in range(3)))]
    assert said[0] == said[1] == said[2] == said[3]
    assert any(case.__dict__.get("_read_batches") for case in cases)  # the shared answers were read once, kept
    assert all(len(case.__dict__.get("_read_batches", {})) <= 16 for case in cases)


class _Counting:
    """A session that counts the calls it gets, by seed; with ``streams``, it takes calls sent ahead as a
    process session does (``call_stream``), and counts those too."""

    def __init__(self, inner, streams: bool = False):
        self.inner, self.info, self.seeds, self.ahead = inner, inner.info, [], []
        if streams:
            self.call_stream = self._stream

    def call(self, op, args, conventions=None):
        self.seeds.append(args.get("seed", 0))  # 0: random_mini_batches's default
        return self.inner.call(op, args, conventions)

    def _stream(self, calls, conventions=None, sequence=False):
        self.ahead.append([args.get("seed", 0) for _, args in calls])
        for op, args in calls:
            yield self.call(op, args, conventions)


def _run_counting(cases, shuffle, streams=False):
    session = _Counting(InProcessSession(_target(shuffle), "shuffle"), streams)
    selection = select(cases, CONVENTIONS, "float64", ["mini_batches"], CaseIdList([]), CaseIdList([]),
                       session.info.ops)
    return session, run_cases(session, selection, "float64", CONVENTIONS, "shuffle"), selection.run


def _shuffled(cases, fewest: int):
    """The structural cases of at least ``fewest`` columns (8 or more: the ones that call under several seeds)."""
    return [case for case in cases if "batches" not in case.expected and case.inputs["X"].shape[1] >= fewest]


def _columns_all_stay(orders, sizes) -> bool:
    """Whether some column sits at one position in every order (16 columns or more), or every batch holds the
    same columns in every order (several batches of several columns): what more seeds could still show."""
    table = np.array(orders)
    stuck = table.shape[1] >= 16 and bool((table == table[0]).all(axis=0).any())
    bounds = np.cumsum([0, *sizes])
    held = [[set(order[a:b]) for a, b in zip(bounds, bounds[1:])] for order in orders]
    return stuck or (len(sizes) > 1 and max(sizes) > 1 and all(h == held[0] for h in held))


def test_a_fair_shuffle_is_asked_for_more_seeds_only_while_something_may_never_move(cases):
    session, report, shuffled = _run_counting(_shuffled(cases, 8), _legacy)
    assert report.conforms, [(r.id, r.message) for r in report.results if r.status != "pass"][:3]
    made, counts = iter(session.seeds), []
    for case in shuffled:
        seed, m = case.full_inputs["seed"], case.inputs["X"].shape[1]
        asked = [next(made), next(made), next(made)]  # the seed twice (the same batches?), the next (ignored?)
        while len(asked) < 7 and _columns_all_stay([list(_legacy(m, s)) for s in asked[1:]],
                                                   case.expected["batch_sizes"]):
            asked.append(next(made))
        assert asked == [seed, seed, *range(seed + 1, seed + len(asked) - 1)], case.id
        counts.append(len(asked))
    assert next(made, None) is None  # no call after the last a case needed
    assert sum(counts) < 5 * len(counts)  # against 7 for every case before
    assert any(n > 3 for n in counts)  # some case needed a third seed: the loop was tested


def test_a_column_that_never_moves_is_still_looked_for_under_every_seed(cases):
    session, report, shuffled = _run_counting(_shuffled(cases, 16), _last_stays_last)
    for case, result, k in zip(shuffled, report.results, range(0, len(session.seeds), 7)):
        seed = case.full_inputs["seed"]
        assert session.seeds[k:k + 7] == [seed, seed, *range(seed + 1, seed + 6)], case.id
        assert result.status == "fail" and f"seeds {seed} to {seed + 5}" in result.message  # m = size + 1: a batch
        assert COLUMN_STUCK in result.message or BATCHES_FIXED in result.message  # of one never changes either
    assert len(session.seeds) == 7 * len(shuffled)


def test_calls_sent_ahead_are_the_first_few_and_the_verdicts_are_those_made_one_by_one(cases):
    from optconform.harness.checking.mini_batches import CALLS_AHEAD

    for shuffle in (_legacy, _last_stays_last, _fixed_batches):
        streamed, ahead, run = _run_counting(cases, shuffle, streams=True)
        single, alone, _ = _run_counting(cases, shuffle)
        shuffled = _shuffled(run, 8)
        assert [(r.id, r.status, r.message) for r in ahead.results] == \
            [(r.id, r.status, r.message) for r in alone.results]
        made, alone_made, sent = Counter(streamed.seeds), Counter(single.seeds), Counter(
            seed for stream in streamed.ahead for seed in stream)
        assert alone_made <= made and made - alone_made <= sent  # every call needed, and only those sent ahead more
        assert sum(sent.values()) == CALLS_AHEAD * len(shuffled) + len(run) - len(shuffled) + sum(
            "batches" not in case.expected and case.inputs["X"].shape[1] < 8 for case in run)
        if shuffle is not _legacy:  # the calls past those sent ahead were made one by one
            assert sum(made.values()) > sum(sent.values())
