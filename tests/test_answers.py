"""Answers already read (harness/answers.py): a line seen again is not parsed or decoded again, and that
never changes what any submission is told."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.target import answers, protocol
from optconform.harness.target.session import ProcessSession, child_argv
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite
from optconform.vectors.codec import encode_tree

ROOT = Path(__file__).resolve().parents[1]
TREE = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([[0.5]])}


def line(result: dict, request_id: int = 7) -> bytes:
    return protocol.dumps({"id": request_id, "ok": True, "result": result}).encode()


@pytest.fixture(autouse=True)
def fresh_memo():
    answers.forget()
    yield
    answers.forget()


def test_a_line_seen_again_gets_the_same_response_and_result_read_only():
    text = line({"parameters": encode_tree(TREE, True), "v": encode_tree(TREE, True)})
    first, again = answers.response(text), answers.response(bytes(text))
    assert first is again
    decoded = answers.result("momentum.update", first)
    assert answers.result("momentum.update", again) is decoded
    assert np.array_equal(decoded["parameters"]["W1"], TREE["W1"])
    assert all(not array.flags.writeable for tree in decoded.values() for array in tree.values())
    with pytest.raises(protocol.ProtocolError, match="'s' is a required property"):  # decoded per op
        answers.result("adam.update", first)


def test_a_different_line_is_read_afresh_and_bad_lines_still_fail():
    one = answers.response(line({"v": encode_tree(TREE, True)}))
    other = answers.response(line({"v": encode_tree({"W1": np.array([[3.0, 4.0]]), "b1": TREE["b1"]}, True)}))
    assert one is not other
    assert answers.result("momentum.init", other)["v"]["W1"].tolist() == [[3.0, 4.0]]
    for garbage in (b"not json", b'{"id": 1}', b'{"id": 1, "ok": true, "result": 3}'):
        with pytest.raises(protocol.ProtocolError):
            answers.response(garbage)
        with pytest.raises(protocol.ProtocolError):  # a refusal is never kept as if it were an answer
            answers.response(garbage)


def test_the_memo_forgets_the_oldest_lines_and_never_keeps_a_long_one(monkeypatch):
    monkeypatch.setattr(answers, "MAX_BYTES", 3000)
    monkeypatch.setattr(answers, "LONGEST", 2000)
    lines = [line({"v": encode_tree({"W1": np.full((1, 20), float(k))}, True)}, k) for k in range(20)]
    for text in lines:
        answers.response(text)
    assert answers._kept <= 3000 and len(answers._by_line) == len(answers._by_response) < 20
    assert lines[0] not in answers._by_line and lines[-1] in answers._by_line
    assert answers._kept == sum(map(len, answers._by_line))
    long = line({"v": encode_tree({"W1": np.zeros((1, 400))}, True)})
    assert len(long) > 2000
    message = answers.response(long)
    assert long not in answers._by_line and answers.response(long) is not message
    assert answers.result("momentum.init", message)["v"]["W1"].shape == (1, 400)


def _report(path: Path, cases, conventions):
    session = ProcessSession(child_argv(str(path)), path.name, 30)
    try:
        selection = select(cases, conventions, "float64", ["momentum", "adam"], None, None, session.info.ops)
        report = run_cases(session, selection, "float64", conventions, path.name, diagnoser=Diagnoser())
    finally:
        session.close()
    return [(r.id, r.status, r.message) for r in report.results]


def test_grading_with_the_memo_tells_every_submission_what_it_would_be_told_alone():
    """A correct, a buggy and again the correct submission in one process: each report is the one it gets
    with nothing remembered, and the second correct one is decoded from memory."""
    cases, conventions = load_suite(), resolve({}, {})
    correct, buggy = ROOT / "examples" / "course_submission.py", ROOT / "examples" / "buggy_submission.py"
    alone = {}
    for path in (correct, buggy):
        answers.forget()
        alone[path] = _report(path, cases, conventions)
    answers.forget()
    assert _report(correct, cases, conventions) == alone[correct]
    kept = len(answers._by_line)
    assert _report(buggy, cases, conventions) == alone[buggy]
    decoded = []
    original = protocol.decode_result
    protocol.decode_result = lambda op, result: decoded.append(op) or original(op, result)
    try:
        assert _report(correct, cases, conventions) == alone[correct]
    finally:
        protocol.decode_result = original
    assert kept > 100 and decoded == []
    assert any(status != "pass" for _, status, _ in alone[buggy])
    assert json.dumps(alone[correct]) != json.dumps(alone[buggy])


def test_a_case_remembers_how_a_frozen_result_compared_and_nothing_else(monkeypatch):
    from optconform.harness.checking import compare
    from optconform.harness.checking.compare import compare_case_outputs
    from optconform.harness.target.readonly import FrozenResult

    case = next(c for c in load_suite() if c.op == "momentum.update")
    good = {key: {name: array.copy() for name, array in tree.items()} for key, tree in case.expected.items()}
    bad = {key: {name: array + 1.0 for name, array in tree.items()} for key, tree in case.expected.items()}
    compared = []
    original = compare._compared_whole
    monkeypatch.setattr(compare, "_compared_whole", lambda *a: compared.append(1) or original(*a))

    frozen_good, frozen_bad = FrozenResult(good), FrozenResult(bad)
    first = compare_case_outputs(case, frozen_good, "float64")
    again = compare_case_outputs(case, frozen_good, "float64")
    assert first.ok and again.ok and again is not first and len(compared) == 1
    again.mismatches.append("changed by its caller")  # what a caller does to its copy stays there
    assert compare_case_outputs(case, frozen_good, "float64").ok and len(compared) == 1
    for _ in range(2):  # a frozen result that fails is compared element by element every time
        failing = compare_case_outputs(case, frozen_bad, "float64")
        assert not failing.ok and failing.mismatches
    assert len(compared) == 2
    for _ in range(2):  # a plain dict is never remembered: it may change between calls
        assert compare_case_outputs(case, good, "float64").ok
    assert len(compared) == 4
    good[next(iter(good))][next(iter(case.expected[next(iter(good))]))] += 1.0
    assert not compare_case_outputs(case, good, "float64").ok
