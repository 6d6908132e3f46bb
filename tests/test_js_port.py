"""The Node.js example adapter (examples/js/optconform_port.js), driven over the wire.

These tests talk to the port with plain ``subprocess`` (not the harness client) and
compare what it computes with the reference arithmetic of ``optconform.reference.ops``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from optconform.reference import ops
from optconform.vectors.codec import decode_array, decode_tree, encode_array, encode_tree

ROOT = Path(__file__).resolve().parents[1]
PORT = ROOT / "examples" / "js" / "optconform_port.js"
NODE = shutil.which("node")
TIMEOUT = 20.0

# .ci/run installs node: there a missing node fails these tests rather than skipping them
pytestmark = pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="node is not installed")

OPS = ["mini_batches", "momentum.init", "momentum.update", "adam.init", "adam.update", "gd.update", "rmsprop.init",
       "rmsprop.update", "lr_decay.inverse_time", "lr_decay.scheduled"]

#: Layer sizes [n_0, n_1, ..., n_L]; W_l is (n_l, n_{l-1}) and b_l is (n_l, 1).
ARCHITECTURES = [[1, 1], [2, 3], [4, 5, 1], [3, 7, 4, 2]]


class Port:
    """The port as a child process; one JSON line out, one JSON line back."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [NODE, str(PORT)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()
        self.next_id = 0

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.put(line)
        sink.put(None)

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send_raw(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no reply from the port within {TIMEOUT}s; stderr: {''.join(self.stderr)}")
        assert line is not None, f"the port closed stdout; stderr: {''.join(self.stderr)}"
        assert line.endswith("\n")
        reply = json.loads(line)  # stdout discipline: every line is one JSON object
        assert isinstance(reply, dict), line
        return reply

    def call_raw(self, request: dict) -> dict:
        self.next_id += 1
        request = {"id": self.next_id, **request}
        self.send_raw(json.dumps(request))
        reply = self.read()
        assert reply["id"] == self.next_id
        return reply

    def call(self, op: str, args: dict | None = None, conventions: dict | None = None) -> dict:
        request = {"op": op}
        if args is not None:
            request["args"] = args
        if conventions is not None:
            request["conventions"] = conventions
        reply = self.call_raw(request)
        assert reply["ok"] is True, reply
        assert set(reply) == {"id", "ok", "result"}
        return reply["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def port():
    p = Port()
    yield p
    p.close()


# ------------------------------------------------------------------ helpers


def make_parameters(rng, sizes, dtype="float64", scale=1.0):
    parameters = {}
    for layer in range(1, len(sizes)):
        parameters[f"W{layer}"] = (rng.standard_normal((sizes[layer], sizes[layer - 1])) * scale).astype(dtype)
        parameters[f"b{layer}"] = (rng.standard_normal((sizes[layer], 1)) * scale).astype(dtype)
    return parameters


def like(rng, parameters, scale=1.0, positive=False):
    """A tree ``dW1, db1, ...`` shaped like ``parameters``."""
    out = {}
    for key, value in parameters.items():
        draw = rng.standard_normal(value.shape) * scale
        out["d" + key] = (np.abs(draw) if positive else draw).astype(value.dtype)
    return out


def assert_tree_close(got_json: dict, expected: dict, dtype: str, rtol: float, atol: float = 0.0):
    assert set(got_json) == set(expected)
    for key, want in expected.items():
        assert got_json[key]["dtype"] == dtype, key
        assert got_json[key]["shape"] == list(want.shape), key
        got = decode_array(got_json[key], key)
        assert got.dtype == want.dtype == np.dtype(dtype), key
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=key)


def max_ulps32(got: np.ndarray, want: np.ndarray) -> int:
    """Distance in float32 units in the last place (same-sign finite values)."""
    a = np.ravel(got).astype(np.float32).view(np.int32).astype(np.int64)
    b = np.ravel(want).astype(np.float32).view(np.int32).astype(np.int64)
    return int(np.max(np.abs(a - b))) if a.size else 0


def adam_args(parameters, grads, v, s, t, lr, beta1, beta2, eps):
    return {
        "parameters": encode_tree(parameters),
        "grads": encode_tree(grads),
        "v": encode_tree(v),
        "s": encode_tree(s),
        "t": t,
        "learning_rate": lr,
        "beta1": beta1,
        "beta2": beta2,
        "epsilon": eps,
    }


# -------------------------------------------------------------------- hello


def test_hello_declares_name_protocol_ops_and_conventions(port):
    result = port.call("hello")
    assert result["name"] == "optconform-js-port"
    assert result["protocol"] == "optconform/1"
    assert sorted(result["ops"]) == sorted(OPS) and len(result["ops"]) == len(set(OPS))
    assert result["conventions"] == {
        "adam.epsilon": "outside_sqrt",
        "rmsprop.epsilon": "outside_sqrt",
        "momentum.form": "ema",
        "mini_batches.rng": "structural",
        "mini_batches.y_rows": "multi_row",
    }


# ---------------------------------------------------------------- init ops


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_init_ops_return_zeros_shaped_like_parameters(port, sizes, dtype):
    rng = np.random.default_rng(len(sizes))
    parameters = make_parameters(rng, sizes, dtype)
    expected = ops.momentum_init(parameters)
    assert set(expected) == {"d" + k for k in parameters}

    result = port.call("momentum.init", {"parameters": encode_tree(parameters)})
    assert set(result) == {"v"}
    assert_tree_close(result["v"], expected, dtype, rtol=0)
    for key in expected:
        assert not np.any(np.signbit(decode_array(result["v"][key]))), "zeros must be +0.0"

    result = port.call("adam.init", {"parameters": encode_tree(parameters)})
    assert set(result) == {"v", "s"}
    v_want, s_want = ops.adam_init(parameters)
    assert_tree_close(result["v"], v_want, dtype, rtol=0)
    assert_tree_close(result["s"], s_want, dtype, rtol=0)


# ------------------------------------------------------------------ momentum


@pytest.mark.parametrize("form", ["ema", "heavy_ball"])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_momentum_update_float64_matches_reference(port, sizes, form):
    rng = np.random.default_rng(100 + len(sizes))
    parameters = make_parameters(rng, sizes)
    grads = like(rng, parameters)
    v = like(rng, parameters, scale=0.3)
    beta, lr = 0.9, 0.05
    args = {
        "parameters": encode_tree(parameters),
        "grads": encode_tree(grads),
        "v": encode_tree(v),
        "beta": beta,
        "learning_rate": lr,
    }
    conventions = None if form == "ema" else {"momentum.form": "heavy_ball"}
    result = port.call("momentum.update", args, conventions)
    assert set(result) == {"parameters", "v"}
    p_want, v_want = ops.momentum_update(parameters, grads, v, beta, lr, form=form)
    assert_tree_close(result["parameters"], p_want, "float64", rtol=1e-12)
    assert_tree_close(result["v"], v_want, "float64", rtol=1e-12)

    # The other form is measurably different, so the comparison above can tell them apart.
    other = "heavy_ball" if form == "ema" else "ema"
    _, v_other = ops.momentum_update(parameters, grads, v, beta, lr, form=other)
    got_v = decode_tree(result["v"])
    assert any(not np.allclose(got_v[k], v_other[k], rtol=1e-6) for k in v_other)


def test_momentum_convention_applies_to_one_request_only(port):
    rng = np.random.default_rng(7)
    parameters = make_parameters(rng, [3, 2])
    grads, v = like(rng, parameters), like(rng, parameters)
    args = {"parameters": encode_tree(parameters), "grads": encode_tree(grads), "v": encode_tree(v), "beta": 0.8, "learning_rate": 0.1}
    heavy = port.call("momentum.update", args, {"momentum.form": "heavy_ball"})
    default = port.call("momentum.update", args)
    explicit = port.call("momentum.update", args, {"momentum.form": "ema"})
    _, v_heavy = ops.momentum_update(parameters, grads, v, 0.8, 0.1, form="heavy_ball")
    _, v_ema = ops.momentum_update(parameters, grads, v, 0.8, 0.1, form="ema")
    assert_tree_close(heavy["v"], v_heavy, "float64", rtol=1e-12)
    assert_tree_close(default["v"], v_ema, "float64", rtol=1e-12)
    assert explicit == default


# ---------------------------------------------------------------------- adam


@pytest.mark.parametrize("placement", ["outside_sqrt", "inside_sqrt"])
@pytest.mark.parametrize("t", [1, 2, 10, 1000])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_adam_update_float64_matches_reference(port, sizes, t, placement):
    rng = np.random.default_rng(1000 * t + len(sizes))
    parameters = make_parameters(rng, sizes)
    # Small gradients and moments, so that where epsilon sits matters.
    grads = like(rng, parameters, scale=1e-3)
    v = like(rng, parameters, scale=1e-3)
    s = like(rng, parameters, scale=1e-6, positive=True)
    lr, beta1, beta2, eps = 0.01, 0.9, 0.999, 1e-6
    args = adam_args(parameters, grads, v, s, t, lr, beta1, beta2, eps)
    conventions = None if placement == "outside_sqrt" else {"adam.epsilon": "inside_sqrt"}
    result = port.call("adam.update", args, conventions)
    assert set(result) == {"parameters", "v", "s"}
    p_want, v_want, s_want = ops.adam_update(parameters, grads, v, s, t, lr, beta1, beta2, eps, epsilon_placement=placement)
    assert_tree_close(result["parameters"], p_want, "float64", rtol=1e-12)
    assert_tree_close(result["v"], v_want, "float64", rtol=1e-12)
    assert_tree_close(result["s"], s_want, "float64", rtol=1e-12)

    other = "inside_sqrt" if placement == "outside_sqrt" else "outside_sqrt"
    p_other, _, _ = ops.adam_update(parameters, grads, v, s, t, lr, beta1, beta2, eps, epsilon_placement=other)
    got_p = decode_tree(result["parameters"])
    assert any(not np.allclose(got_p[k], p_other[k], rtol=1e-9) for k in p_other)


def test_adam_trajectory_fed_back_through_the_wire(port):
    """Ten steps, each starting from the port's own previous output."""
    rng = np.random.default_rng(11)
    parameters = make_parameters(rng, [4, 3, 2])
    v_json, s_json = (port.call("adam.init", {"parameters": encode_tree(parameters)})[k] for k in ("v", "s"))
    p_ref, (v_ref, s_ref) = parameters, ops.adam_init(parameters)
    p_json = encode_tree(parameters)
    for t in range(1, 11):
        grads = like(rng, parameters, scale=0.5)
        args = {"parameters": p_json, "grads": encode_tree(grads), "v": v_json, "s": s_json, "t": t,
                "learning_rate": 0.02, "beta1": 0.85, "beta2": 0.99, "epsilon": 1e-8}
        result = port.call("adam.update", args)
        p_json, v_json, s_json = result["parameters"], result["v"], result["s"]
        p_ref, v_ref, s_ref = ops.adam_update(p_ref, grads, v_ref, s_ref, t, 0.02, 0.85, 0.99, 1e-8)
        assert_tree_close(p_json, p_ref, "float64", rtol=1e-12)
        assert_tree_close(v_json, v_ref, "float64", rtol=1e-12)
        assert_tree_close(s_json, s_ref, "float64", rtol=1e-12)
    # Ten steps moved the parameters by a visible amount.
    assert not np.allclose(decode_array(p_json["W1"]), parameters["W1"], atol=1e-3)


def test_adam_non_finite_values_are_encoded_as_strings(port):
    parameters = {"W1": np.array([[1.0, 2.0, 3.0]]), "b1": np.array([[0.5]])}
    grads = {"dW1": np.array([[np.nan, np.inf, -np.inf]]), "db1": np.array([[1.0]])}
    v, s = ops.adam_init(parameters)
    result = port.call("adam.update", adam_args(parameters, grads, v, s, 1, 0.01, 0.9, 0.999, 1e-8))
    with np.errstate(invalid="ignore"):
        p_want, v_want, s_want = ops.adam_update(parameters, grads, v, s, 1)
    assert result["v"]["dW1"]["data"] == ["nan", "inf", "-inf"]
    assert result["s"]["dW1"]["data"] == ["nan", "inf", "inf"]
    assert result["parameters"]["W1"]["data"] == ["nan", "nan", "nan"]
    assert_tree_close(result["parameters"], p_want, "float64", rtol=1e-12)
    assert_tree_close(result["s"], s_want, "float64", rtol=1e-12)
    assert all(isinstance(x, float) for x in result["parameters"]["b1"]["data"])


# ------------------------------------------------------------------- float32


@pytest.mark.parametrize("placement", ["outside_sqrt", "inside_sqrt"])
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_float32_inputs_give_float32_results(port, sizes, placement):
    rng = np.random.default_rng(300 + len(sizes))
    parameters = make_parameters(rng, sizes, "float32")
    grads = like(rng, parameters, scale=0.1)
    v = like(rng, parameters, scale=0.1)
    s = like(rng, parameters, scale=0.01, positive=True)
    lr, beta1, beta2, eps, t = 0.01, 0.9, 0.999, 1e-8, 3
    conventions = {"adam.epsilon": placement}
    result = port.call("adam.update", adam_args(parameters, grads, v, s, t, lr, beta1, beta2, eps), conventions)
    want = ops.adam_update(parameters, grads, v, s, t, lr, beta1, beta2, eps, epsilon_placement=placement)
    for name, expected in zip(("parameters", "v", "s"), want):
        assert_tree_close(result[name], expected, "float32", rtol=1e-6, atol=1e-8)
        for key, arr in result[name].items():
            data = np.array(arr["data"], dtype=np.float64)
            # Every stored value is a float32, not a float64 that was never rounded.
            assert np.array_equal(data.astype(np.float32).astype(np.float64), data), (name, key)
            assert max_ulps32(data, expected[key]) <= 1, (name, key)

    result = port.call(
        "momentum.update",
        {"parameters": encode_tree(parameters), "grads": encode_tree(grads), "v": encode_tree(v), "beta": 0.9, "learning_rate": 0.1},
    )
    for name, expected in zip(("parameters", "v"), ops.momentum_update(parameters, grads, v, 0.9, 0.1)):
        assert_tree_close(result[name], expected, "float32", rtol=1e-6, atol=1e-8)
        for key, arr in result[name].items():
            data = np.array(arr["data"], dtype=np.float64)
            assert np.array_equal(data.astype(np.float32).astype(np.float64), data), (name, key)
            assert max_ulps32(data, expected[key]) <= 1, (name, key)


# --------------------------------------------------------------- mini-batches


def labelled(n_x, n_y, m, dtype="float64"):
    """X whose column j is identifiable (row 0 == j) and Y that is a function of it."""
    X = np.vstack([np.arange(m, dtype=float) + 1000.0 * i for i in range(n_x)]).astype(dtype)
    Y = np.vstack([np.arange(m, dtype=float) * 2.0 + 0.5 + i for i in range(n_y)]).astype(dtype)
    return X, Y


def batches_of(port, X, Y, size, seed, **extra):
    result = port.call("mini_batches", {"X": encode_array(X), "Y": encode_array(Y), "mini_batch_size": size, "seed": seed}, **extra)
    assert set(result) == {"batches"}
    out = []
    for pair in result["batches"]:
        assert isinstance(pair, list) and len(pair) == 2
        out.append((decode_array(pair[0], "X_b"), decode_array(pair[1], "Y_b")))
    return out


def order_of(batches) -> list[int]:
    return [int(j) for Xb, _ in batches for j in Xb[0]]


@pytest.mark.parametrize(
    "m,size",
    [(10, 3), (64, 64), (65, 64), (148, 64), (7, 1), (5, 10), (1, 4), (12, 4), (0, 3)],
)
def test_mini_batches_structure(port, m, size):
    X, Y = labelled(3, 2, m)
    batches = batches_of(port, X, Y, size, seed=5)
    sizes = [Xb.shape[1] for Xb, _ in batches]
    assert sizes == [size] * (m // size) + ([m % size] if m % size else [])
    order = order_of(batches)
    assert sorted(order) == list(range(m)), "the batches are one permutation of the columns"
    for Xb, Yb in batches:
        assert Xb.shape[0] == 3 and Yb.shape[0] == 2
        cols = Xb[0].astype(int)
        np.testing.assert_array_equal(Xb, X[:, cols])  # whole columns move together
        np.testing.assert_array_equal(Yb, Y[:, cols])  # and Y stays paired with X


def test_mini_batches_shuffle_is_deterministic_per_seed_and_differs_across_seeds(port):
    m = 40
    X, Y = labelled(2, 1, m)
    orders = {}
    for seed in list(range(12)) + [12345, 2**31 - 1]:
        first = order_of(batches_of(port, X, Y, 7, seed))
        again = order_of(batches_of(port, X, Y, 7, seed))
        assert first == again, f"seed {seed} is not deterministic"
        assert first != list(range(m)), f"seed {seed} did not shuffle"
        orders[seed] = tuple(first)
    assert len(set(orders.values())) == len(orders), "different seeds gave the same order"
    # The permutation depends on the seed only, not on the batch size.
    assert order_of(batches_of(port, X, Y, 40, 3)) == list(orders[3])


def test_mini_batches_keep_dtype_and_values_bit_for_bit(port):
    tricky = [0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308, np.nan, np.inf, -np.inf, 1e21, 123456789.125]
    m = len(tricky)
    X = np.vstack([np.arange(m, dtype=float), np.array(tricky)])
    Y = np.array([[np.float32(0.1) * j for j in range(m)]], dtype=np.float32)
    batches = batches_of(port, X, Y, 4, seed=9)
    order = order_of(batches)
    assert sorted(order) == list(range(m))
    got_X = np.hstack([Xb for Xb, _ in batches])
    got_Y = np.hstack([Yb for _, Yb in batches])
    assert got_X.dtype == np.float64 and got_Y.dtype == np.float32
    np.testing.assert_array_equal(got_X.view(np.uint64), X[:, order].view(np.uint64))  # incl. -0.0 and NaN
    np.testing.assert_array_equal(got_Y.view(np.uint32), Y[:, order].view(np.uint32))


def test_mini_batches_refuses_numpy_legacy_rng(port):
    X, Y = labelled(1, 1, 5)
    reply = port.call_raw({"op": "mini_batches", "args": {"X": encode_array(X), "Y": encode_array(Y), "mini_batch_size": 2, "seed": 0},
                           "conventions": {"mini_batches.rng": "numpy_legacy"}})
    assert reply["ok"] is False and "numpy_legacy" in reply["error"]


# -------------------------------------------------------------------- errors


def assert_error(reply: dict, expected_id, *fragments: str):
    assert reply["ok"] is False, reply
    assert reply["id"] == expected_id
    assert set(reply) == {"id", "ok", "error"}
    assert isinstance(reply["error"], str) and reply["error"] and "\n" not in reply["error"]
    for fragment in fragments:
        assert fragment in reply["error"], reply["error"]


def test_error_replies_and_the_port_keeps_going(port):
    assert_error(port.call_raw({"op": "sgd.update", "args": {}}), port.next_id, "sgd.update")
    assert_error(port.call_raw({"args": {}}), port.next_id, "op")

    port.send_raw("this is not json {")
    assert_error(port.read(), None, "malformed")
    port.send_raw("[1, 2, 3]")
    assert_error(port.read(), None, "object")
    port.send_raw('{"id": "abc", "op": "momentum.init", "args": 5}')
    assert_error(port.read(), "abc", "args")

    bad_shape = {"W1": {"dtype": "float64", "shape": [2, 2], "data": [1.0, 2.0, 3.0]}, "b1": encode_array(np.zeros((2, 1)))}
    assert_error(port.call_raw({"op": "momentum.init", "args": {"parameters": bad_shape}}), port.next_id, "W1")
    bad_value = {"W1": {"dtype": "float64", "shape": [1], "data": ["NaN"]}, "b1": encode_array(np.zeros((1, 1)))}
    assert_error(port.call_raw({"op": "adam.init", "args": {"parameters": bad_value}}), port.next_id, "W1")
    bad_dtype = {"W1": {"dtype": "int32", "shape": [1], "data": [1]}, "b1": encode_array(np.zeros((1, 1)))}
    assert_error(port.call_raw({"op": "adam.init", "args": {"parameters": bad_dtype}}), port.next_id, "dtype")

    parameters = {"W1": np.ones((2, 3)), "b1": np.ones((2, 1))}
    args = {"parameters": encode_tree(parameters), "grads": encode_tree({"dW1": np.ones((2, 3))}),
            "v": encode_tree(ops.momentum_init(parameters)), "beta": 0.9, "learning_rate": 0.1}
    assert_error(port.call_raw({"op": "momentum.update", "args": args}), port.next_id, "db1")
    args["grads"] = encode_tree({"dW1": np.ones((3, 2)), "db1": np.ones((2, 1))})
    assert_error(port.call_raw({"op": "momentum.update", "args": args}), port.next_id, "dW1", "shape")
    args["grads"] = encode_tree({"dW1": np.ones((2, 3)), "db1": np.ones((2, 1))})
    del args["beta"]
    assert_error(port.call_raw({"op": "momentum.update", "args": args}), port.next_id, "beta")

    X, Y = labelled(1, 1, 6)
    mb = {"X": encode_array(X), "Y": encode_array(Y[:, :5]), "mini_batch_size": 2, "seed": 0}
    assert_error(port.call_raw({"op": "mini_batches", "args": mb}), port.next_id, "columns")
    mb["Y"], mb["mini_batch_size"] = encode_array(Y), 0
    assert_error(port.call_raw({"op": "mini_batches", "args": mb}), port.next_id, "mini_batch_size")

    assert_error(port.call_raw({"op": "adam.init", "args": {"parameters": encode_tree(parameters)},
                                "conventions": {"adam.epsilon": "sideways"}}), port.next_id, "adam.epsilon")
    assert_error(port.call_raw({"op": "adam.init", "args": {"parameters": encode_tree(parameters)},
                                "conventions": {"adam.bogus": "x"}}), port.next_id, "adam.bogus")

    # Still alive and still correct after all of that.
    assert port.call("hello")["name"] == "optconform-js-port"
    assert port.proc.poll() is None


def test_shutdown_exits_zero_and_ignores_what_follows(port):
    assert port.call("hello")["protocol"] == "optconform/1"
    port.send_raw(json.dumps({"id": 99, "op": "shutdown"}))
    try:
        port.send_raw(json.dumps({"id": 100, "op": "hello"}))
    except BrokenPipeError:
        pass
    assert port.proc.wait(timeout=TIMEOUT) == 0
    replies = []
    while (line := port.lines.get(timeout=TIMEOUT)) is not None:
        replies.append(json.loads(line))
    assert all(r["id"] != 100 for r in replies), "answered a request sent after shutdown"


def test_exits_zero_when_stdin_closes(port):
    assert port.call("hello")["name"] == "optconform-js-port"
    port.proc.stdin.close()
    assert port.proc.wait(timeout=TIMEOUT) == 0
    assert port.lines.get(timeout=TIMEOUT) is None, "wrote to stdout after stdin closed"
