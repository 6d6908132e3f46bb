"""Request lines already written (harness/request_lines.py): a request is encoded once per distinct
content, and every line says exactly what encoding it afresh would say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optconform.harness.target import protocol, request_lines
from optconform.harness.target.readonly import frozen_args
from optconform.harness.target.request_lines import request_line


@pytest.fixture(autouse=True)
def fresh_memo():
    request_lines.forget()
    yield
    request_lines.forget()


def frozen(array) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def afresh(request_id, op, binary, args=None, calls=None, extra=None, conventions=None) -> dict:
    """The request as encoding it from scratch gives it."""
    message = {"id": request_id, "op": op, **({"protocol": protocol.PROTOCOL_V2} if binary else {})}
    if args is not None:
        message["args"] = protocol.encode_args(args, binary)
    if calls is not None:
        message["calls"] = [{"op": name, "args": protocol.encode_args(a, True)} for name, a in calls]
    for key, value in (extra or {}).items():
        message[key] = protocol.encode_args(value, True) if key == "start" else value
    if conventions:
        message["conventions"] = conventions
    return message


def test_a_request_of_unchangeable_arrays_is_encoded_once_and_says_what_it_would_afresh():
    tree = {"W1": frozen([[1.0, -2.5]]), "b1": frozen([[0.0]])}
    args = {"parameters": tree, "grads": {"dW1": frozen([[0.5, 0.25]]), "db1": frozen([[1.0]])},
            "v": {"dW1": frozen([[0, 0]]), "db1": frozen([[0]])}, "beta": 0.9, "learning_rate": np.float64(0.01)}
    calls = [("momentum.update", args), ("momentum.update", {**args, "beta": 0.5})]
    extra = {"carry": ["parameters", "v"], "start": {"parameters": tree}, "init": "momentum.init"}
    for parts in (("momentum.update", False, args), ("momentum.update", True, args),
                  ("batch", True, None, calls), ("chain", True, None, calls, extra, {"bias_correction": "x"})):
        first, second = request_line(3, *parts), request_line(4, *parts)
        assert json.loads(first) == afresh(3, *parts) and json.loads(second) == afresh(4, *parts)
        assert first.endswith(b"\n") and first.count(b"\n") == 1
    assert len(request_lines._bodies) == 4  # each kept once, found the second time


def test_what_could_change_is_never_kept_and_what_differs_never_shares_a_line():
    writable = {"W1": np.array([[1.0, 2.0]])}
    line = request_line(1, "momentum.init", True, {"parameters": writable})
    writable["W1"][0, 0] = 7.0
    again = request_line(2, "momentum.init", True, {"parameters": writable})
    assert json.loads(again) == afresh(2, "momentum.init", True, {"parameters": writable}) != json.loads(line)
    assert not request_lines._bodies
    view = frozen([[1.0, 2.0, 3.0]])[:, :2]  # read-only but not owning its data: its base could change
    view.flags.writeable = False
    request_line(3, "momentum.init", True, {"parameters": {"W1": view}})
    assert not request_lines._bodies

    tree = {"W1": frozen([[1.0]])}
    base = {"parameters": tree, "grads": {"dW1": frozen([[1.0]])}, "v": {"dW1": frozen([[0.0]])}, "beta": 0.9,
            "learning_rate": 0.0}
    variants = [base, {**base, "learning_rate": -0.0}, {**base, "beta": 1}, {**base, "beta": True},
                {**base, "parameters": {"W1": frozen([[1.0]])}}, {**base, "learning_rate": float("nan")}]
    lines = [request_line(9, "momentum.update", True, args) for args in variants]
    for args, text in zip(variants, lines):
        assert text == request_line(9, "momentum.update", True, args)
        assert json.loads(text.replace(b"NaN", b'"nan"')) == json.loads(json.dumps(
            afresh(9, "momentum.update", True, args)).replace("NaN", '"nan"'))
    assert b'"learning_rate":-0.0' in lines[1] and b'"learning_rate":0.0' in lines[0]
    assert b'"beta":1,' in lines[2] and b'"beta":1.0' not in lines[2]


def test_at_most_max_bytes_of_requests_are_kept_and_never_a_long_one(monkeypatch):
    monkeypatch.setattr(request_lines, "MAX_BYTES", 2000)
    monkeypatch.setattr(request_lines, "LONGEST", 1000)
    big = {"parameters": {"W1": frozen(np.ones((1, 100)))}}
    text = request_line(1, "momentum.init", True, big)
    assert len(text) > 1000 and not request_lines._bodies
    assert json.loads(text) == afresh(1, "momentum.init", True, big)
    for k in range(40):
        request_line(k, "momentum.init", True, {"parameters": {"W1": frozen(np.full((1, 8), k))}})
    assert 0 < request_lines._kept <= 2000 and request_lines._kept == sum(len(b) for b, _ in
                                                                          request_lines._bodies.values())
    assert len(request_lines._bodies) < 40


def test_sealed_arguments_are_keyed_whole_and_nothing_in_them_can_change():
    args = frozen_args({"parameters": {"W1": np.array([[1.0, -2.5]])}, "grads": {"dW1": np.array([[0.5, 0.25]])},
                        "v": {"dW1": np.zeros((1, 2))}, "beta": 0.9, "learning_rate": 0.01})
    assert args.sealed and args["parameters"].sealed and not args["parameters"]["W1"].flags.writeable
    for change in (lambda: args.__setitem__("beta", 0.5), lambda: args["parameters"].pop("W1"),
                   lambda: args.update(beta=0.5), lambda: args.setdefault("t", 1), args.clear, args.popitem,
                   lambda: args.__delitem__("v"), lambda: args["parameters"].__ior__({"W1": 0})):
        with pytest.raises(TypeError):
            change()
    with pytest.raises(ValueError):
        args["parameters"]["W1"][0, 0] = 7.0
    calls = [("momentum.update", args), ("momentum.update", args)]
    first = request_line(1, "batch", True, None, calls)
    assert json.loads(first) == afresh(1, "batch", True, None, calls)
    (key,) = request_lines._bodies
    # the arguments whole, by identity: none of their arrays is walked
    assert repr(("momentum.update", id(args))) in repr(key) and "'array'" not in repr(key)
    assert request_line(2, "batch", True, None, calls) == first.replace(b'"id":1,', b'"id":2,')
    other = frozen_args({**args, "beta": 0.5})  # another op, other arguments, a call less: each a line of its own
    for different in ([("adam.update", args), ("momentum.update", args)], [("momentum.update", other)] * 2, calls[:1],
                      [("momentum.update", args), ("momentum.update", dict(other))]):
        assert json.loads(request_line(5, "batch", True, None, different)) == afresh(5, "batch", True, None, different)
    assert len(request_lines._bodies) == 5
    # what could change behind them is not sealed, and is walked (and not kept) as before
    view = np.arange(3.0)[:2]
    loose = [frozen_args({"parameters": {"W1": view}}), frozen_args({"grads": [np.ones(2)]})]
    assert not any(a.sealed for a in loose)
    request_lines.forget()
    request_line(3, "momentum.init", True, loose[0])
    assert not request_lines._bodies
    # a copy is an ordinary dict again: changed, it says what it holds
    changed = {**args, "beta": 0.5}
    assert json.loads(request_line(4, "momentum.update", True, changed))["args"]["beta"] == 0.5


def test_a_trajectory_sends_every_submission_the_same_sealed_steps():
    """The teacher-forced steps and the free run's steps are the same for every submission: made once per case,
    sealed, so that their requests are keyed whole (no array walked) and encoded once."""
    from types import SimpleNamespace

    from optconform.harness.checking.checks import check_case
    from optconform.harness.target.contract import CallFailed
    from optconform.reference.conventions import resolve
    from optconform.vectors import load_suite

    sent = []

    class Recording:  # takes many calls in one request: the teacher-forced steps answered as the reference
        info = SimpleNamespace(ops=list(protocol.OPS), name="recording")

        def __init__(self, case):
            self.case = case

        def call_many(self, calls, conventions=None, sequence=False):
            sent.append(calls)
            return [(dict(step), []) for step in self.case.expected["steps"]]

        def call_chain(self, init, start, calls, carry, conventions=None):
            sent.append(calls)
            return None

        def call(self, op, args, conventions=None):
            raise CallFailed("not answered")

    for case in [c for c in load_suite() if c.op.endswith(".trajectory")][:2]:
        for _ in range(2):
            assert check_case(case, Recording(case), "float64", resolve(case.conventions)).status == "error"
        forced, free, forced_again, free_again = sent[-4:]
        assert forced is forced_again and free is free_again and len(forced) == len(free) == len(case.inputs["grads"])
        for calls in (forced, free):
            assert all(args.sealed for _, args in calls)
            request_line(1, "batch", True, None, calls)
            assert "'array'" not in repr(list(request_lines._bodies)[-1])
        assert all("v" not in args and "parameters" not in args for _, args in free)  # the carried state is not sent
        assert all("v" in args and "parameters" in args for _, args in forced)
