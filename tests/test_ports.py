"""The real ports (PyTorch, optax) against the canonical reference, and the findings.

Each port target is compared with ``optconform.reference.ops`` under the conventions the
target itself declares, on random inputs with non-default hyperparameters, non-zero
incoming state, several layer shapes and step counts, at float64 and float32.

Tolerances are relative to the magnitudes of the terms that make up each output (so a
result that is small because of cancellation is not held to an impossible bound):
``|got - expected| <= rtol * scale``, with ``expected`` the float64 reference on the
same (already rounded) inputs and ``rtol`` 1e-12 at float64, 1e-5 at float32.

The ``test_finding_*`` tests pin down the differences documented in ``docs/ports.md``:
they assert that the naive mappings really differ, so a wrong mapping cannot pass.
"""

from __future__ import annotations

import copy
import importlib
import math

import numpy as np
import pytest
from optional import require

from optconform.reference import ops
from optconform.reference.conventions import validate

FRAMEWORK = {"torch": "torch", "optax": "optax"}
MODULE = {
    "torch": "optconform.harness.adapters.torch_port",
    "optax": "optconform.harness.adapters.optax_port",
}

#: (port, object in the module or None for the module itself)
TARGETS = [
    ("torch", None),
    ("torch", "heavy_ball"),
    ("optax", None),
    ("optax", "heavy_ball"),
    ("optax", "eps_root"),
]
TARGET_IDS = [f"{port}:{obj}" if obj else port for port, obj in TARGETS]

DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-12, np.float32: 1e-5}

#: Layer sizes ``[n_x, n_1, ..., n_L]``: W_l is (n_l, n_{l-1}), b_l is (n_l, 1).
SHAPES = {
    "1x1": [1, 1],
    "4-3": [4, 3],
    "5-4-3-1": [5, 4, 3, 1],
    "12-20-2": [12, 20, 2],
}
STEPS = [1, 2, 10, 1000]

# Non-default hyperparameters everywhere.
LR = 0.037
BETA = 0.73
BETA1, BETA2, EPS = 0.83, 0.987, 1e-6


# --------------------------------------------------------------------------- fixtures


def load_port(name: str):
    require(FRAMEWORK[name])
    return importlib.import_module(MODULE[name])


def load_target(port: str, obj: str | None):
    module = load_port(port)
    return module if obj is None else getattr(module, obj)


@pytest.fixture(params=TARGETS, ids=TARGET_IDS)
def target(request):
    return load_target(*request.param)


@pytest.fixture(params=["torch", "optax"])
def port(request):
    return load_port(request.param)


@pytest.fixture
def torch_port():
    return load_port("torch")


@pytest.fixture
def optax_port():
    return load_port("optax")


# --------------------------------------------------------------------------- inputs


def make_problem(dims, dtype, seed, tiny=False):
    """``parameters, grads, v, s`` with mixed magnitudes, non-zero v and s, in ``dtype``.

    ``tiny=True`` makes gradients and moments so small that epsilon dominates the
    denominator, which is where the two epsilon placements part.
    """
    rng = np.random.default_rng(seed)
    parameters, grads, v, s = {}, {}, {}, {}
    for layer in range(1, len(dims)):
        for name, shape in ((f"W{layer}", (dims[layer], dims[layer - 1])), (f"b{layer}", (dims[layer], 1))):
            magnitude = 10.0 ** rng.uniform(-3, 1, size=shape)
            if tiny:
                magnitude = 10.0 ** rng.uniform(-8, -6, size=shape)
            parameters[name] = rng.normal(size=shape).astype(dtype)
            grads["d" + name] = (rng.normal(size=shape) * magnitude).astype(dtype)
            v["d" + name] = (0.5 * rng.normal(size=shape) * magnitude).astype(dtype)
            s["d" + name] = ((rng.normal(size=shape) * magnitude) ** 2).astype(dtype)
    return parameters, grads, v, s


def f64(d: dict) -> dict:
    return {k: np.asarray(a, dtype=np.float64) for k, a in d.items()}


# --------------------------------------------------------------------------- comparison


def within(got: dict, expected: dict, scale: dict, rtol: float) -> tuple[bool, str]:
    """Whether every array in ``got`` is within ``rtol * scale`` of ``expected``."""
    worst, where = 0.0, ""
    if set(got) != set(expected):
        return False, f"keys {sorted(got)} != {sorted(expected)}"
    for key in expected:
        g = np.asarray(got[key], dtype=np.float64)
        if g.shape != expected[key].shape:
            return False, f"{key}: shape {g.shape} != {expected[key].shape}"
        bound = rtol * scale[key] + np.finfo(np.float64).tiny
        ratio = np.max(np.abs(g - expected[key]) / bound)
        if ratio > worst:
            index = np.unravel_index(np.argmax(np.abs(g - expected[key]) / bound), g.shape)
            worst, where = ratio, f"{key}{list(index)}: got {g[index]!r}, expected {expected[key][index]!r}"
    return worst <= 1.0, f"worst error {worst:.3g} x tolerance at {where}"


def assert_within(got: dict, expected: dict, scale: dict, dtype, what: str):
    for key, array in got.items():
        assert isinstance(array, np.ndarray), f"{what} {key}: {type(array).__name__}, not a NumPy array"
        assert array.dtype == dtype, f"{what} {key}: dtype {array.dtype}, expected {np.dtype(dtype)}"
    ok, message = within(got, expected, scale, RTOL[dtype])
    assert ok, f"{what}: {message}"


def momentum_expected(parameters, grads, v, beta, lr, form):
    """The float64 reference and the magnitude scales of its outputs."""
    p64, g64, v64 = f64(parameters), f64(grads), f64(v)
    new_p, new_v = ops.momentum_update(p64, g64, v64, beta, lr, form)
    gain = 1.0 - beta if form == "ema" else 1.0
    scale_v = {k: beta * np.abs(v64[k]) + gain * np.abs(g64[k]) for k in v64}
    scale_p = {p: np.abs(p64[p]) + lr * scale_v[g] for p, g in ops.slot_names(p64)}
    return (new_p, new_v), (scale_p, scale_v)


def adam_expected(parameters, grads, v, s, t, lr, b1, b2, eps, placement):
    p64, g64, v64, s64 = f64(parameters), f64(grads), f64(v), f64(s)
    new_p, new_v, new_s = ops.adam_update(p64, g64, v64, s64, t, lr, b1, b2, eps, placement)
    c1, c2 = 1.0 - b1**t, 1.0 - b2**t
    scale_v = {k: b1 * np.abs(v64[k]) + (1 - b1) * np.abs(g64[k]) for k in v64}
    scale_s = {k: b2 * s64[k] + (1 - b2) * g64[k] ** 2 for k in s64}
    scale_p = {}
    for p, g in ops.slot_names(p64):
        sh = new_s[g] / c2
        denominator = np.sqrt(sh) + eps if placement == "outside_sqrt" else np.sqrt(sh + eps)
        scale_p[p] = np.abs(p64[p]) + lr * (scale_v[g] / c1) / denominator
    return (new_p, new_v, new_s), (scale_p, scale_v, scale_s)


def conventions_of(target) -> dict:
    return target.OPTCONFORM_CONVENTIONS


# --------------------------------------------------------------------------- declarations


def test_declared_conventions_are_valid(target):
    declared = conventions_of(target)
    assert set(declared) == {"adam.epsilon", "momentum.form", "mini_batches.rng", "mini_batches.y_rows",
                             "platform.subnormals"}  # measured when the port is imported
    for name, value in declared.items():
        validate(name, value)
    assert declared["mini_batches.rng"] == "structural"
    assert declared["mini_batches.y_rows"] == "multi_row"  # a framework port takes labels of any height


def test_variants_declare_what_they_change():
    torch_port = load_port("torch")
    assert torch_port.OPTCONFORM_CONVENTIONS == {
        "adam.epsilon": "outside_sqrt",
        "momentum.form": "ema",
        "mini_batches.rng": "structural",
        "mini_batches.y_rows": "multi_row",
        "platform.subnormals": "kept",  # PyTorch computes subnormals on the CPU unless told to flush them
    }
    assert torch_port.heavy_ball.OPTCONFORM_CONVENTIONS["momentum.form"] == "heavy_ball"


def test_optax_variants_declare_what_they_change():
    optax_port = load_port("optax")
    assert optax_port.OPTCONFORM_CONVENTIONS["adam.epsilon"] == "outside_sqrt"
    assert optax_port.eps_root.OPTCONFORM_CONVENTIONS["adam.epsilon"] == "inside_sqrt"
    assert optax_port.eps_root.OPTCONFORM_CONVENTIONS["momentum.form"] == "ema"
    assert optax_port.heavy_ball.OPTCONFORM_CONVENTIONS["momentum.form"] == "heavy_ball"


def test_target_exposes_every_operation_and_the_seed_aliases(target):
    for name in (
        "random_mini_batches",
        "initialize_velocity",
        "update_parameters_with_momentum",
        "initialize_adam",
        "update_parameters_with_adam",
        "initialize_parameters_Adam",
        "update_parameters_Adam",
    ):
        assert callable(getattr(target, name)), name


# --------------------------------------------------------------------------- init


@pytest.mark.parametrize("dtype", DTYPES)
def test_initializers_are_zeros_in_the_parameters_dtype(target, dtype):
    parameters, _, _, _ = make_problem(SHAPES["5-4-3-1"], dtype, seed=1)
    v = target.initialize_velocity(parameters)
    av, as_ = target.initialize_adam(parameters)
    for state in (v, av, as_):
        assert set(state) == {"d" + k for k in parameters}
        for key, array in state.items():
            assert array.shape == parameters[key[1:]].shape
            assert array.dtype == dtype
            assert not np.any(array)


# --------------------------------------------------------------------------- momentum


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
@pytest.mark.parametrize("beta", [BETA, 0.0, 0.999])
def test_momentum_matches_reference(target, dtype, shape, beta):
    form = conventions_of(target)["momentum.form"]
    parameters, grads, v, _ = make_problem(SHAPES[shape], dtype, seed=len(shape) + int(beta * 1000))
    expected, scale = momentum_expected(parameters, grads, v, beta, LR, form)
    got = target.update_parameters_with_momentum(parameters, grads, v, beta, LR)
    assert isinstance(got, tuple) and len(got) == 2
    assert_within(got[0], expected[0], scale[0], dtype, "parameters")
    assert_within(got[1], expected[1], scale[1], dtype, "v")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_momentum_first_step_from_initialized_velocity(target, dtype):
    form = conventions_of(target)["momentum.form"]
    parameters, grads, _, _ = make_problem(SHAPES["5-4-3-1"], dtype, seed=7)
    v = target.initialize_velocity(parameters)
    expected, scale = momentum_expected(parameters, grads, v, BETA, LR, form)
    got = target.update_parameters_with_momentum(parameters, grads, v, BETA, LR)
    assert_within(got[0], expected[0], scale[0], dtype, "parameters")
    assert_within(got[1], expected[1], scale[1], dtype, "v")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_momentum_trajectory(target, dtype):
    """Ten steps, each fed the previous step's outputs, against the reference's ten."""
    form = conventions_of(target)["momentum.form"]
    parameters, _, _, _ = make_problem(SHAPES["4-3"], dtype, seed=11)
    rng = np.random.default_rng(12)
    got_p, got_v = parameters, target.initialize_velocity(parameters)
    ref_p, ref_v = f64(parameters), ops.momentum_init(f64(parameters))
    for _ in range(10):
        grads = {"d" + k: rng.normal(size=a.shape).astype(dtype) for k, a in parameters.items()}
        got_p, got_v = target.update_parameters_with_momentum(got_p, grads, got_v, BETA, LR)
        ref_p, ref_v = ops.momentum_update(ref_p, f64(grads), ref_v, BETA, LR, form)
    # errors accumulate over the steps; scale by the trajectory's magnitudes
    scale_p = {k: np.abs(ref_p[k]) + np.abs(f64(parameters)[k]) + LR * 10 for k in ref_p}
    scale_v = {k: np.abs(ref_v[k]) + 10.0 for k in ref_v}
    assert_within(got_p, ref_p, scale_p, dtype, "parameters after 10 steps")
    assert_within(got_v, ref_v, scale_v, dtype, "v after 10 steps")


def test_ema_and_heavy_ball_targets_really_differ(port):
    """The heavy-ball target fails the EMA reference and vice versa (non-zero v)."""
    parameters, grads, v, _ = make_problem(SHAPES["4-3"], np.float64, seed=3)
    ema = port.update_parameters_with_momentum(parameters, grads, v, BETA, LR)
    heavy = port.heavy_ball.update_parameters_with_momentum(parameters, grads, v, BETA, LR)
    expected_ema, scale_ema = momentum_expected(parameters, grads, v, BETA, LR, "ema")
    expected_heavy, scale_heavy = momentum_expected(parameters, grads, v, BETA, LR, "heavy_ball")
    assert within(ema[0], expected_ema[0], scale_ema[0], 1e-12)[0]
    assert within(heavy[0], expected_heavy[0], scale_heavy[0], 1e-12)[0]
    assert not within(heavy[0], expected_ema[0], scale_ema[0], 1e-5)[0]
    assert not within(ema[0], expected_heavy[0], scale_heavy[0], 1e-5)[0]


# --------------------------------------------------------------------------- adam


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
@pytest.mark.parametrize("t", STEPS)
def test_adam_matches_reference(target, dtype, shape, t):
    placement = conventions_of(target)["adam.epsilon"]
    parameters, grads, v, s = make_problem(SHAPES[shape], dtype, seed=100 + t + len(shape))
    expected, scale = adam_expected(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS, placement)
    got = target.update_parameters_with_adam(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS)
    assert isinstance(got, tuple) and len(got) >= 3
    for produced, want, sc, what in zip(got, expected, scale, ("parameters", "v", "s")):
        assert_within(produced, want, sc, dtype, f"{what} at t={t}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("t", STEPS)
def test_adam_where_epsilon_dominates(target, dtype, t):
    """Gradients of 1e-8..1e-6 against epsilon=1e-6: the epsilon placement decides."""
    placement = conventions_of(target)["adam.epsilon"]
    parameters, grads, v, s = make_problem(SHAPES["5-4-3-1"], dtype, seed=200 + t, tiny=True)
    expected, scale = adam_expected(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS, placement)
    got = target.update_parameters_with_adam(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS)
    for produced, want, sc, what in zip(got, expected, scale, ("parameters", "v", "s")):
        assert_within(produced, want, sc, dtype, f"{what} at t={t}")


@pytest.mark.parametrize("t", STEPS)
def test_adam_epsilon_placements_really_differ(target, t):
    """Each target fails the other placement's reference, even at float32's tolerance:
    the comparison above would catch epsilon on the wrong side of the root."""
    declared = conventions_of(target)["adam.epsilon"]
    other = "inside_sqrt" if declared == "outside_sqrt" else "outside_sqrt"
    parameters, grads, v, s = make_problem(SHAPES["5-4-3-1"], np.float64, seed=300 + t, tiny=True)
    got = target.update_parameters_with_adam(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS)
    expected, scale = adam_expected(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS, other)
    assert not within(got[0], expected[0], scale[0], RTOL[np.float32])[0]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_adam_defaults_from_initialized_state(target, dtype):
    placement = conventions_of(target)["adam.epsilon"]
    parameters, grads, _, _ = make_problem(SHAPES["12-20-2"], dtype, seed=5)
    v, s = target.initialize_adam(parameters)
    expected, scale = adam_expected(parameters, grads, v, s, 1, 0.01, 0.9, 0.999, 1e-8, placement)
    got = target.update_parameters_with_adam(parameters, grads, v, s, 1)
    for produced, want, sc, what in zip(got, expected, scale, ("parameters", "v", "s")):
        assert_within(produced, want, sc, dtype, what)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_adam_trajectory(target, dtype):
    """Twelve steps t=1..12, each fed the previous outputs, against the reference's."""
    placement = conventions_of(target)["adam.epsilon"]
    parameters, _, _, _ = make_problem(SHAPES["5-4-3-1"], dtype, seed=21)
    rng = np.random.default_rng(22)
    got_p, (got_v, got_s) = parameters, target.initialize_adam(parameters)
    ref_p = f64(parameters)
    ref_v, ref_s = ops.adam_init(ref_p)
    for t in range(1, 13):
        grads = {"d" + k: rng.normal(size=a.shape).astype(dtype) for k, a in parameters.items()}
        got_p, got_v, got_s = target.update_parameters_with_adam(
            got_p, grads, got_v, got_s, t, LR, BETA1, BETA2, EPS
        )[:3]
        ref_p, ref_v, ref_s = ops.adam_update(ref_p, f64(grads), ref_v, ref_s, t, LR, BETA1, BETA2, EPS, placement)
    # each Adam step moves a parameter by at most about lr/(1-beta1) here
    scale_p = {k: np.abs(ref_p[k]) + 12 * LR * 10 for k in ref_p}
    scale_v = {k: np.abs(ref_v[k]) + 10.0 for k in ref_v}
    scale_s = {k: np.abs(ref_s[k]) + 10.0 for k in ref_s}
    assert_within(got_p, ref_p, scale_p, dtype, "parameters after 12 steps")
    assert_within(got_v, ref_v, scale_v, dtype, "v after 12 steps")
    assert_within(got_s, ref_s, scale_s, dtype, "s after 12 steps")


def test_adam_rejects_step_zero(target):
    parameters, grads, v, s = make_problem(SHAPES["1x1"], np.float64, seed=0)
    with pytest.raises(ValueError):
        target.update_parameters_with_adam(parameters, grads, v, s, 0)


def test_adam_accepts_numpy_integer_step(target):
    parameters, grads, v, s = make_problem(SHAPES["4-3"], np.float64, seed=0)
    a = target.update_parameters_with_adam(parameters, grads, v, s, np.int64(10), LR, BETA1, BETA2, EPS)
    b = target.update_parameters_with_adam(parameters, grads, v, s, 10, LR, BETA1, BETA2, EPS)
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])


# --------------------------------------------------------------------------- purity


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_inputs_never_mutated_and_outputs_fresh(target, dtype):
    parameters, grads, v, s = make_problem(SHAPES["5-4-3-1"], dtype, seed=9)
    before = copy.deepcopy((parameters, grads, v, s))
    outputs = [
        target.update_parameters_with_momentum(parameters, grads, v, BETA, LR),
        target.update_parameters_with_adam(parameters, grads, v, s, 3, LR, BETA1, BETA2, EPS),
    ]
    for original, now in zip(before, (parameters, grads, v, s)):
        for key in original:
            np.testing.assert_array_equal(original[key], now[key])
            assert now[key].dtype == original[key].dtype
    inputs = [a for d in (parameters, grads, v, s) for a in d.values()]
    for result in outputs:
        for state in result:
            for array in state.values():
                assert array.flags.writeable
                assert not any(np.shares_memory(array, x) for x in inputs)


# --------------------------------------------------------------------------- mini-batches


def _columns(X) -> list[tuple]:
    return [tuple(col) for col in np.asarray(X).T]


@pytest.mark.parametrize("m,size", [(1, 64), (7, 3), (64, 64), (130, 64), (148, 64), (10, 1), (9, 4)])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_mini_batches_are_structurally_conformant(target, m, size, dtype):
    rng = np.random.default_rng(m)
    X = rng.normal(size=(3, m)).astype(dtype)
    X[0] = np.arange(m)  # column identity
    Y = (np.arange(m)[None, :] % 2).astype(np.int64) * 10 + np.arange(m)[None, :] * 100
    X_before, Y_before = X.copy(), Y.copy()
    batches = target.random_mini_batches(X, Y, size, seed=5)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Y, Y_before)
    # sizes: floor(m/size) full batches and one of the rest
    sizes = [xb.shape[1] for xb, _ in batches]
    assert sizes == [size] * (m // size) + ([m % size] if m % size else [])
    for xb, yb in batches:
        assert xb.shape[0] == 3 and yb.shape == (1, xb.shape[1])
        assert xb.dtype == dtype and yb.dtype == Y.dtype
        # X and Y stay paired: Y's column is computed from X's column identity
        np.testing.assert_array_equal(yb[0], (xb[0].astype(np.int64) % 2) * 10 + xb[0].astype(np.int64) * 100)
    # one permutation of the columns
    all_X = np.concatenate([xb for xb, _ in batches], axis=1)
    assert sorted(_columns(all_X)) == sorted(_columns(X))
    order = all_X[0].astype(np.int64)
    assert sorted(order.tolist()) == list(range(m))
    if m >= 7:
        assert order.tolist() != list(range(m)), "did not shuffle"


def test_mini_batches_seed_determines_the_order(target):
    X = np.arange(200.0)[None, :]
    Y = np.arange(200)[None, :]

    def order(seed):
        return np.concatenate([xb for xb, _ in target.random_mini_batches(X, Y, 64, seed)], axis=1)[0]

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))
    assert not np.array_equal(order(0), order(1))


def test_finding_mini_batch_order_is_not_numpy_legacy(target):
    """Documented: the ports use their framework's RNG, so rng=numpy_legacy does not hold."""
    X = np.arange(50.0)[None, :]
    got = np.concatenate([xb for xb, _ in target.random_mini_batches(X, X.copy(), 64, 3)], axis=1)[0]
    assert not np.array_equal(got.astype(np.int64), np.random.RandomState(3).permutation(50))


def test_finding_mini_batch_orders_quoted_in_docs(port):
    X = np.arange(10.0)[None, :]
    got = np.concatenate([xb for xb, _ in port.random_mini_batches(X, X.copy(), 64, 3)], axis=1)[0]
    quoted = {
        "optconform.harness.adapters.torch_port": [6, 0, 3, 7, 8, 5, 1, 9, 2, 4],
        "optconform.harness.adapters.optax_port": [0, 5, 6, 7, 4, 2, 1, 3, 9, 8],
    }[port.__name__]
    assert got.astype(int).tolist() == quoted
    assert np.random.RandomState(3).permutation(10).tolist() == [5, 4, 1, 2, 9, 6, 7, 0, 3, 8]


# --------------------------------------------------------------------------- findings: PyTorch


def _torch_sgd_step(torch, p0, g, lr, momentum, dampening, buffer=None):
    p = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(g, dtype=torch.float64)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening)
    if buffer is not None:
        optimizer.state[p]["momentum_buffer"] = torch.tensor(buffer, dtype=torch.float64)
    optimizer.step()
    state = optimizer.state[p]
    return p.detach().numpy().copy(), state, optimizer


def _one(x):
    return {"W1": np.array([[x]], dtype=np.float64), "b1": np.array([[0.0]])}


def _done(x):
    return {"dW1": np.array([[x]], dtype=np.float64), "db1": np.array([[0.0]])}


def test_finding_sgd_dampening_alone_is_wrong_on_the_first_step(torch_port):
    """SGD(momentum=beta, dampening=beta) on a fresh optimizer: the first buffer is the raw g.

    Course: p=1, g=2, v=0, beta=0.9, lr=0.1 -> v=0.2, p=0.98.
    Fresh SGD(dampening=0.9): buf=2.0, p=0.8 (a step 1/(1-beta)=10 times too large).
    """
    import torch

    p, state, _ = _torch_sgd_step(torch, [[1.0]], [[2.0]], 0.1, 0.9, 0.9)
    assert p[0, 0] == pytest.approx(0.8, abs=1e-15)
    assert state["momentum_buffer"].item() == 2.0
    ref_p, ref_v = ops.momentum_update(_one(1.0), _done(2.0), _done(0.0), 0.9, 0.1)
    assert ref_p["W1"][0, 0] == pytest.approx(0.98, abs=1e-15) and ref_v["dW1"][0, 0] == pytest.approx(0.2)
    assert abs(p[0, 0] - ref_p["W1"][0, 0]) > 0.1
    # the port's mapping (the zero buffer loaded) gives the course's step
    port_p, port_v = torch_port.update_parameters_with_momentum(_one(1.0), _done(2.0), _done(0.0), 0.9, 0.1)
    assert port_p["W1"][0, 0] == ref_p["W1"][0, 0] and port_v["dW1"][0, 0] == ref_v["dW1"][0, 0]
    # the loaded-buffer mapping is exact on the first step
    p, state, _ = _torch_sgd_step(torch, [[1.0]], [[2.0]], 0.1, 0.9, 0.9, buffer=[[0.0]])
    assert p[0, 0] == ref_p["W1"][0, 0]


def test_finding_sgd_fresh_dampening_error_decays_as_beta_to_the_k(torch_port):
    """Without the loaded buffer, SGD's buffer exceeds the course's v by beta**k * g1 at step k."""
    import torch

    beta, lr = 0.9, 0.1
    p = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=beta, dampening=beta)
    ref_p, ref_v = _one(1.0), _done(0.0)
    for k in range(1, 6):
        p.grad = torch.tensor([[2.0]], dtype=torch.float64)
        optimizer.step()
        ref_p, ref_v = ops.momentum_update(ref_p, _done(2.0), ref_v, beta, lr)
        excess = optimizer.state[p]["momentum_buffer"].item() - ref_v["dW1"][0, 0]
        assert excess == pytest.approx(beta**k * 2.0, rel=1e-12)


def test_finding_dampening_one_minus_beta_is_wrong_every_step(torch_port):
    """SGD(dampening=1-beta) computes buf = beta*buf + beta*g: wrong even with the buffer loaded.

    p=1, g=2, v=0.5, beta=0.9, lr=0.1: course v=0.65, p=0.935; dampening=0.1 gives
    buf=2.25, p=0.775.
    """
    import torch

    p, state, _ = _torch_sgd_step(torch, [[1.0]], [[2.0]], 0.1, 0.9, 0.1, buffer=[[0.5]])
    assert state["momentum_buffer"].item() == pytest.approx(2.25, abs=1e-15)
    assert p[0, 0] == pytest.approx(0.775, abs=1e-15)
    ref_p, ref_v = ops.momentum_update(_one(1.0), _done(2.0), _done(0.5), 0.9, 0.1)
    assert ref_v["dW1"][0, 0] == pytest.approx(0.65, abs=1e-15)
    assert ref_p["W1"][0, 0] == pytest.approx(0.935, abs=1e-15)
    port_p, port_v = torch_port.update_parameters_with_momentum(_one(1.0), _done(2.0), _done(0.5), 0.9, 0.1)
    assert port_p["W1"][0, 0] == pytest.approx(0.935, abs=1e-15)
    assert port_v["dW1"][0, 0] == pytest.approx(0.65, abs=1e-15)


def test_finding_scaled_heavy_ball_reproduces_the_ema_trajectory(torch_port):
    """A fresh SGD(momentum=beta, dampening=0, lr=lr*(1-beta)) follows the course's parameters
    exactly, but its buffer is v/(1-beta), not v: usable for training, not for reporting v."""
    import torch

    beta, lr = BETA, LR
    rng = np.random.default_rng(4)
    p0 = rng.normal(size=(3, 2))
    p = torch.tensor(p0, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr * (1 - beta), momentum=beta)
    ref_p = {"W1": p0.copy(), "b1": np.zeros((3, 1))}
    ref_v = ops.momentum_init(ref_p)
    for _ in range(8):
        g = rng.normal(size=(3, 2))
        p.grad = torch.tensor(g)
        optimizer.step()
        ref_p, ref_v = ops.momentum_update(ref_p, {"dW1": g, "db1": np.zeros((3, 1))}, ref_v, beta, lr)
    np.testing.assert_allclose(p.detach().numpy(), ref_p["W1"], rtol=1e-12, atol=1e-14)
    buf = optimizer.state[p]["momentum_buffer"].numpy()
    np.testing.assert_allclose(buf * (1 - beta), ref_v["dW1"], rtol=1e-12, atol=1e-14)
    assert not np.allclose(buf, ref_v["dW1"], rtol=1e-3)


def test_finding_sgd_momentum_zero_keeps_no_buffer(torch_port):
    """SGD(momentum=0) neither reads nor writes momentum_buffer; the port reports v = g."""
    import torch

    p, state, _ = _torch_sgd_step(torch, [[1.0]], [[2.0]], 0.1, 0.0, 0.0, buffer=[[0.5]])
    assert state["momentum_buffer"].item() == 0.5  # untouched
    assert p[0, 0] == pytest.approx(0.8, abs=1e-15)
    port_p, port_v = torch_port.update_parameters_with_momentum(_one(1.0), _done(2.0), _done(0.5), 0.0, 0.1)
    assert port_v["dW1"][0, 0] == 2.0 and port_p["W1"][0, 0] == pytest.approx(0.8, abs=1e-15)


def test_finding_torch_adam_float32_step_counter_saturates(torch_port):
    """torch.optim.Adam's own step counter is a float32 scalar: past 2**24 it stops counting.

    The port loads step t-1 in float64 beyond 2**24, so it still performs step t.
    """
    import torch

    step = torch.tensor(float(2**24), dtype=torch.float32)
    step += 1
    assert step.item() == 2**24
    parameters, grads, v, s = make_problem(SHAPES["4-3"], np.float64, seed=1)
    t = 2**24 + 3
    expected, scale = adam_expected(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS, "outside_sqrt")
    got = torch_port.update_parameters_with_adam(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS)
    for produced, want, sc, what in zip(got, expected, scale, ("parameters", "v", "s")):
        assert_within(produced, want, sc, np.float64, what)


# --------------------------------------------------------------------------- findings: optax


def test_finding_optax_eps_root_is_inside_sqrt_of_the_bias_corrected_moment(optax_port):
    """optax.adam(eps=0, eps_root=e) computes p -= lr*vh/sqrt(sh + e), sh bias-corrected.

    One step from zero state, p=1, g=1e-6, lr=0.01, defaults otherwise, e=1e-8:
    outside_sqrt moves p by 9.90099e-3, inside_sqrt (eps_root) by 9.9995e-5 (99x less);
    adding e to the raw s before bias correction would give 3.16228e-6: neither.
    """
    p, g, z = _one(1.0), _done(1e-6), _done(0.0)
    outside = 1 - optax_port.update_parameters_with_adam(p, g, z, z, 1, 0.01, 0.9, 0.999, 1e-8)[0]["W1"][0, 0]
    inside = 1 - optax_port.eps_root.update_parameters_with_adam(p, g, z, z, 1, 0.01, 0.9, 0.999, 1e-8)[0]["W1"][0, 0]
    assert outside == pytest.approx(0.00990099009900991, rel=1e-9)
    assert inside == pytest.approx(9.999500037494169e-05, rel=1e-9)
    ref_inside = 1 - ops.adam_update(p, g, z, z, 1, 0.01, 0.9, 0.999, 1e-8, "inside_sqrt")[0]["W1"][0, 0]
    assert inside == pytest.approx(ref_inside, rel=1e-12)
    raw_s_variant = 0.01 * 1e-6 / math.sqrt(((1 - 0.999) * 1e-12 + 1e-8) / (1 - 0.999))
    assert raw_s_variant == pytest.approx(3.162277502054509e-6, rel=1e-9)
    assert inside > 30 * raw_s_variant


def test_finding_optax_eps_and_eps_root_together_match_neither_convention(optax_port):
    """optax.adam(eps=e, eps_root=e) is vh/(sqrt(sh+e)+e): neither outside_sqrt nor inside_sqrt."""
    import jax.numpy as jnp
    import optax

    parameters, grads, v, s = make_problem(SHAPES["4-3"], np.float64, seed=31, tiny=True)
    t = 2
    transform = optax.adam(LR, b1=BETA1, b2=BETA2, eps=EPS, eps_root=EPS)
    params = {k: jnp.asarray(a) for k, a in parameters.items()}
    state = transform.init(params)
    state = (
        state[0]._replace(
            count=jnp.asarray(t - 1, jnp.int32),
            mu={k: jnp.asarray(v["d" + k]) for k in parameters},
            nu={k: jnp.asarray(s["d" + k]) for k in parameters},
        ),
    ) + tuple(state[1:])
    updates, _ = transform.update({k: jnp.asarray(grads["d" + k]) for k in parameters}, state, params)
    got = {k: np.asarray(optax.apply_updates(params, updates)[k]) for k in parameters}
    both = {}
    for key in parameters:
        vn = BETA1 * v["d" + key] + (1 - BETA1) * grads["d" + key]
        sn = BETA2 * s["d" + key] + (1 - BETA2) * grads["d" + key] ** 2
        vh, sh = vn / (1 - BETA1**t), sn / (1 - BETA2**t)
        both[key] = parameters[key] - LR * vh / (np.sqrt(sh + EPS) + EPS)
    for key in parameters:
        np.testing.assert_allclose(got[key], both[key], rtol=1e-12)
    for placement in ("outside_sqrt", "inside_sqrt"):
        expected, scale = adam_expected(parameters, grads, v, s, t, LR, BETA1, BETA2, EPS, placement)
        # the difference is eps relative to sqrt(sh+eps) in the update: beyond float64's tolerance
        assert not within(got, expected[0], scale[0], RTOL[np.float64])[0], placement


def test_finding_plain_optax_sgd_is_heavy_ball_not_ema(optax_port):
    """optax.sgd(lr, momentum=beta) alone: trace = g + beta*trace (p=1,g=2,v=0.5 -> 2.45, not 0.65)."""
    heavy_p, heavy_v = optax_port.heavy_ball.update_parameters_with_momentum(_one(1.0), _done(2.0), _done(0.5), 0.9, 0.1)
    assert heavy_v["dW1"][0, 0] == pytest.approx(2.45, abs=1e-15)
    assert heavy_p["W1"][0, 0] == pytest.approx(0.755, abs=1e-15)
    ema_p, ema_v = optax_port.update_parameters_with_momentum(_one(1.0), _done(2.0), _done(0.5), 0.9, 0.1)
    assert ema_v["dW1"][0, 0] == pytest.approx(0.65, abs=1e-15)
    assert ema_p["W1"][0, 0] == pytest.approx(0.935, abs=1e-15)


def test_finding_optax_ema_debias_default_is_not_the_course_velocity(optax_port):
    """optax.ema(beta, debias=False) is another exact mapping; the default debias=True
    divides by 1-beta**count (6.5 instead of 0.65 on a first count with v=0.5)."""
    import jax.numpy as jnp
    import optax

    for debias, expected in ((False, 0.65), (True, 6.5)):
        transform = optax.ema(0.9, debias=debias)
        state = transform.init({"W1": jnp.zeros((1, 1))})
        state = state._replace(ema={"W1": jnp.array([[0.5]])}, count=jnp.asarray(0, jnp.int32))
        updates, new_state = transform.update({"W1": jnp.array([[2.0]])}, state)
        assert float(updates["W1"][0, 0]) == pytest.approx(expected, rel=1e-12)
        assert float(new_state.ema["W1"][0, 0]) == pytest.approx(0.65, rel=1e-12)


def test_finding_optax_port_turns_on_float64(optax_port):
    """Without jax_enable_x64 JAX silently computes float64 inputs in float32."""
    import jax

    assert jax.config.jax_enable_x64
    parameters, grads, v, s = make_problem(SHAPES["4-3"], np.float64, seed=2)
    got = optax_port.update_parameters_with_adam(parameters, grads, v, s, 3)
    assert all(a.dtype == np.float64 for a in got[0].values())


def _subnormal_problem():
    parameters = {"W1": np.array([[3e-310]]), "b1": np.array([[1.0]])}
    grads = {"dW1": np.array([[2e-310]]), "db1": np.array([[4e-310]])}
    v = {"dW1": np.array([[0.0]]), "db1": np.array([[0.0]])}
    return parameters, grads, v


def test_finding_optax_flushes_float64_subnormals_to_zero(optax_port):
    """XLA:CPU runs with flush-to-zero and denormals-are-zero (JAX: working as intended):
    subnormal inputs count as 0 and subnormal results become 0, even in float64.

    beta=0.5, lr=0.5, p=3e-310, g=2e-310, v=0: the reference gives v=1e-310, p=2.5e-310;
    optax gives v=0, p=0. So the vector cases ``momentum.update/*/subnormal`` and
    ``adam.update/*/subnormal`` fail for the optax targets at float64.
    """
    parameters, grads, v = _subnormal_problem()
    ref_p, ref_v = ops.momentum_update(parameters, grads, v, 0.5, 0.5)
    assert ref_p["W1"][0, 0] == pytest.approx(2.5e-310, rel=1e-9) and ref_v["dW1"][0, 0] == pytest.approx(1e-310, rel=1e-9)
    for target in (optax_port, optax_port.heavy_ball):
        got_p, got_v = target.update_parameters_with_momentum(parameters, grads, v, 0.5, 0.5)
        assert got_p["W1"][0, 0] == 0.0 and got_v["dW1"][0, 0] == 0.0 and got_v["db1"][0, 0] == 0.0
        assert got_p["b1"][0, 0] == 1.0


def test_finding_torch_keeps_float64_subnormals(torch_port):
    """PyTorch on the CPU does not flush denormals (torch.set_flush_denormal is off by default)."""
    parameters, grads, v = _subnormal_problem()
    ref_p, ref_v = ops.momentum_update(parameters, grads, v, 0.5, 0.5)
    got_p, got_v = torch_port.update_parameters_with_momentum(parameters, grads, v, 0.5, 0.5)
    # within a few units of the smallest subnormal (4.9e-324), and not flushed
    for got, ref in ((got_p, ref_p), (got_v, ref_v)):
        for key in ref:
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, atol=2e-323)
    assert got_p["W1"][0, 0] > 2e-310 and got_v["dW1"][0, 0] > 0.9e-310


# --------------------------------------------------------------------------- the documented Keras example


def test_documented_keras_epsilon_hat_example():
    """docs/ports.md: Keras' epsilon is Kingma & Ba's epsilon-hat, i.e. an outside_sqrt
    epsilon of eps_hat/sqrt(1-beta2**t). No Keras here: this checks the algebra and the
    numbers quoted, with the reference standing in for Algorithm 1."""
    g, lr, b1, b2, eps_hat = 1e-6, 1.0, 0.9, 0.999, 1e-7
    for t in (1, 10, 1000):
        c1, c2 = 1 - b1**t, 1 - b2**t
        v = c1 * g  # the moments that a constant gradient g builds up from zero in t steps
        s = c2 * g * g
        keras = (lr * math.sqrt(c2) / c1) * v / (math.sqrt(s) + eps_hat)  # the formula before Sec. 2.1
        eps_eff = eps_hat / math.sqrt(c2)
        assert keras == pytest.approx(lr * (v / c1) / (math.sqrt(s / c2) + eps_eff), rel=1e-12)
    # one step from zero state: the reference with epsilon = eps_hat/sqrt(1-beta2) is Keras' step
    keras_step = (lr * math.sqrt(1 - b2) / (1 - b1)) * ((1 - b1) * g) / (math.sqrt((1 - b2) * g * g) + eps_hat)
    eps_eff = eps_hat / math.sqrt(1 - b2)
    reference = 1 - ops.adam_update(_one(1.0), _done(g), _done(0.0), _done(0.0), 1, lr, b1, b2, eps_eff)[0]["W1"][0, 0]
    assert reference == pytest.approx(keras_step, rel=1e-9)
    assert keras_step == pytest.approx(0.24025, rel=1e-4)
    naive = 1 - ops.adam_update(_one(1.0), _done(g), _done(0.0), _done(0.0), 1, lr, b1, b2, eps_hat)[0]["W1"][0, 0]
    assert naive == pytest.approx(0.90909, rel=1e-4)
    assert eps_hat / math.sqrt(1 - b2) == pytest.approx(3.1623e-6, rel=1e-4)
    assert eps_hat / math.sqrt(1 - b2**10) == pytest.approx(1.0023e-6, rel=1e-4)
    assert eps_hat / math.sqrt(1 - b2**1000) == pytest.approx(1.2576e-7, rel=1e-4)
