"""Properties of the canonical reference (``optconform.reference``), checked with hypothesis.

The reference is the specification, so these tests state what it must satisfy
independently of how it is written: the batches are one permutation of the
columns cut at the right places (and the permutation is NumPy's legacy one),
no op changes or aliases its inputs, the momentum and Adam formulas reduce to
their known special cases, dtypes are preserved, and the course-named functions
compute exactly what the ops compute.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import optconform.reference as course
from optconform.reference import ops

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS64 = np.finfo(np.float64).eps

# ---------------------------------------------------------------- strategies

seeds = st.integers(min_value=0, max_value=2**32 - 1)
layer_dims = st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=5)
betas = st.floats(min_value=0.0, max_value=0.999, allow_nan=False)
open_betas = st.floats(min_value=0.01, max_value=0.999, allow_nan=False)
learning_rates = st.floats(min_value=1e-5, max_value=2.0, allow_nan=False)
epsilons = st.floats(min_value=0.0, max_value=1e-2, allow_nan=False)
dtypes = st.sampled_from([np.float64, np.float32])


def network(rng, dims, prefix="", scale=1.0, dtype=np.float64):
    """``W1, b1, ...`` (or ``dW1, db1, ...``) for layer sizes ``dims``; Wl is (n_l, n_{l-1}), bl is (n_l, 1)."""
    tree = {}
    for layer in range(1, len(dims)):
        tree[f"{prefix}W{layer}"] = (rng.standard_normal((dims[layer], dims[layer - 1])) * scale).astype(dtype)
        tree[f"{prefix}b{layer}"] = (rng.standard_normal((dims[layer], 1)) * scale).astype(dtype)
    return tree


def nonzero_network(rng, dims, prefix="d", dtype=np.float64, low=-30, high=30):
    """Gradients of random sign, magnitudes log-uniform in [10**low, 10**high], never zero."""
    tree = network(rng, dims, prefix)
    return {k: (np.where(v < 0, -1.0, 1.0) * 10.0 ** rng.uniform(low, high, v.shape)).astype(dtype)
            for k, v in tree.items()}


@st.composite
def states(draw, dtype=None):
    """(rng-drawn) parameters, grads, v, s for random layer sizes, in one dtype."""
    dims = draw(layer_dims)
    rng = np.random.default_rng(draw(seeds))
    dtype = dtype or draw(dtypes)
    parameters = network(rng, dims, dtype=dtype)
    grads = network(rng, dims, "d", draw(st.sampled_from([1e-3, 1.0, 1e3])), dtype)
    v = network(rng, dims, "d", 0.3, dtype)
    s = {k: np.square(x) for k, x in network(rng, dims, "d", 0.1, dtype).items()}
    return dims, parameters, grads, v, s


def assert_trees_equal(a, b):
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def all_arrays(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from all_arrays(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from all_arrays(item)


# ---------------------------------------------------------------- mini_batches


@st.composite
def batch_inputs(draw):
    n_x = draw(st.integers(1, 6))
    n_y = draw(st.integers(1, 4))
    m = draw(st.integers(1, 300))
    size = draw(st.one_of(st.integers(1, 8), st.integers(1, 400)))
    seed = draw(seeds)
    rng = np.random.default_rng(draw(seeds))
    X = rng.standard_normal((n_x, m))
    Y = rng.standard_normal((n_y, m))
    return X, Y, size, seed


@SETTINGS
@given(batch_inputs())
def test_batches_concatenate_to_the_legacy_permutation(args):
    X, Y, size, seed = args
    m = X.shape[1]
    batches = ops.mini_batches(X, Y, size, seed)
    perm = np.random.RandomState(seed).permutation(m)
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        legacy = np.random.permutation(m)
    finally:
        np.random.set_state(saved)
    np.testing.assert_array_equal(perm, legacy)
    # A partition: every column exactly once, X and Y with the same permutation.
    np.testing.assert_array_equal(np.sort(perm), np.arange(m))
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches], axis=1), X[:, perm])
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches], axis=1), Y[:, perm])


@SETTINGS
@given(batch_inputs())
def test_batch_sizes_are_full_batches_then_the_remainder(args):
    X, Y, size, seed = args
    m = X.shape[1]
    batches = ops.mini_batches(X, Y, size, seed)
    expected = [size] * (m // size) + ([m % size] if m % size else [])
    assert [x.shape[1] for x, _ in batches] == expected
    assert [y.shape[1] for _, y in batches] == expected
    assert all(x.shape[0] == X.shape[0] and y.shape[0] == Y.shape[0] for x, y in batches)
    assert all(x.ndim == 2 and y.ndim == 2 for x, y in batches)


@SETTINGS
@given(st.integers(20, 200), seeds, seeds)
def test_different_seeds_give_different_orders(m, seed_a, seed_b):
    assume(seed_a != seed_b)
    X = np.arange(m, dtype=np.float64)[None, :]
    a = np.concatenate([x for x, _ in ops.mini_batches(X, X, 7, seed_a)], axis=1)
    b = np.concatenate([x for x, _ in ops.mini_batches(X, X, 7, seed_b)], axis=1)
    # Two independent uniform permutations of >= 20 items coincide with probability <= 1/20!.
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, X)


# ---------------------------------------------------------------- purity


def _run_every_op(parameters, grads, v, s, X, Y, beta, lr, b1, b2, eps, t):
    return {
        "mini_batches": ((X, Y), lambda: ops.mini_batches(X, Y, 3, 5)),
        "momentum.init": ((parameters,), lambda: ops.momentum_init(parameters)),
        "adam.init": ((parameters,), lambda: ops.adam_init(parameters)),
        "momentum.update ema": ((parameters, grads, v),
                                lambda: ops.momentum_update(parameters, grads, v, beta, lr, "ema")),
        "momentum.update heavy_ball": ((parameters, grads, v),
                                       lambda: ops.momentum_update(parameters, grads, v, beta, lr, "heavy_ball")),
        "adam.update outside": ((parameters, grads, v, s),
                                lambda: ops.adam_update(parameters, grads, v, s, t, lr, b1, b2, eps, "outside_sqrt")),
        "adam.update inside": ((parameters, grads, v, s),
                               lambda: ops.adam_update(parameters, grads, v, s, t, lr, b1, b2, eps, "inside_sqrt")),
    }


@SETTINGS
@given(states(), betas, learning_rates, open_betas, open_betas, epsilons, st.integers(1, 50))
def test_no_op_mutates_or_aliases_its_inputs(state, beta, lr, b1, b2, eps, t):
    dims, parameters, grads, v, s = state
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((2, 11)), rng.standard_normal((1, 11))
    for name, (inputs, run) in _run_every_op(parameters, grads, v, s, X, Y, beta, lr, b1, b2, eps, t).items():
        before = copy.deepcopy(inputs)
        with np.errstate(all="ignore"):
            result = run()
        for was, now in zip(before, inputs):
            if isinstance(was, dict):
                assert_trees_equal(was, now)
            else:
                assert was.dtype == now.dtype
                np.testing.assert_array_equal(was, now, err_msg=name)
        # Fresh arrays: changing a result can never change an input.
        for out in all_arrays(result):
            for inp in all_arrays(inputs):
                assert not np.shares_memory(out, inp), f"{name} returned an array sharing memory with an input"


# ---------------------------------------------------------------- momentum


@SETTINGS
@given(states(), learning_rates)
def test_momentum_with_beta_zero_is_gradient_descent(state, lr):
    _, parameters, grads, v, _ = state
    for form in ("ema", "heavy_ball"):
        new_p, new_v = ops.momentum_update(parameters, grads, v, 0.0, lr, form)
        for param, grad in ops.slot_names(parameters):
            np.testing.assert_array_equal(new_v[grad], grads[grad])
            np.testing.assert_array_equal(new_p[param], parameters[param] - lr * grads[grad])


@SETTINGS
@given(st.integers(1, 5), layer_dims, seeds, open_betas, learning_rates)
def test_heavy_ball_with_scaled_lr_equals_ema(steps, dims, seed, beta, lr):
    """Heavy-ball with ``lr*(1-beta)`` started from ``v_hb = v_ema/(1-beta)`` is EMA with ``lr``.

    EMA: ``v' = beta*v + (1-beta)*g; p' = p - lr*v'``. Heavy-ball from ``w = v/(1-beta)``:
    ``w' = beta*w + g = v'/(1-beta)`` and ``p' = p - lr*(1-beta)*w' = p - lr*v'``. So after
    every step ``p_hb == p_ema`` and ``v_hb*(1-beta) == v_ema``, up to rounding, which we
    bound by a few ulps of the magnitudes of the terms that make each value.
    """
    rng = np.random.default_rng(seed)
    p_ema = network(rng, dims)
    v_ema = network(rng, dims, "d", 0.3)
    p_hb, v_hb = dict(p_ema), {k: x / (1 - beta) for k, x in v_ema.items()}
    # Running bound of the rounding the two sides may differ by, per element.
    bound_v = {k: 4 * EPS64 * np.abs(x) for k, x in v_ema.items()}
    bound_p = {k: np.zeros_like(x) for k, x in p_ema.items()}
    for _ in range(steps):
        grads = network(rng, dims, "d")
        v_old = v_ema
        p_ema, v_ema = ops.momentum_update(p_ema, grads, v_ema, beta, lr, "ema")
        p_hb, v_hb = ops.momentum_update(p_hb, grads, v_hb, beta, lr * (1 - beta), "heavy_ball")
        for param, grad in ops.slot_names(p_ema):
            terms_v = beta * np.abs(v_old[grad]) + (1 - beta) * np.abs(grads[grad]) + np.abs(v_ema[grad])
            bound_v[grad] = beta * bound_v[grad] + 16 * EPS64 * terms_v
            bound_p[param] = bound_p[param] + lr * bound_v[grad] + 16 * EPS64 * (
                np.abs(p_ema[param]) + lr * np.abs(v_ema[grad]))
            assert np.all(np.abs(v_hb[grad] * (1 - beta) - v_ema[grad]) <= bound_v[grad]), grad
            assert np.all(np.abs(p_hb[param] - p_ema[param]) <= bound_p[param]), param


# ---------------------------------------------------------------- adam


@SETTINGS
@given(layer_dims, seeds, dtypes, open_betas, open_betas, learning_rates)
def test_adam_first_step_with_epsilon_zero_moves_by_exactly_lr(dims, seed, dtype, b1, b2, lr):
    """From zero moments at t = 1 with epsilon 0: ``vh = g``, ``sqrt(sh) = |g|``, so ``p1 = p0 - lr*sign(g)``."""
    rng = np.random.default_rng(seed)
    parameters = network(rng, dims, dtype=dtype)
    low, high = (-15, 15) if dtype == np.float32 else (-100, 100)
    grads = nonzero_network(rng, dims, dtype=dtype, low=low, high=high)
    v, s = ops.adam_init(parameters)
    new_p, new_v, new_s = ops.adam_update(parameters, grads, v, s, 1, lr, b1, b2, 0.0)
    ulp = float(np.finfo(dtype).eps)
    for param, grad in ops.slot_names(parameters):
        moved = parameters[param].astype(np.float64) - new_p[param].astype(np.float64)
        expected = lr * np.sign(grads[grad].astype(np.float64))
        # A few ulps of lr (the step) plus one rounding of p0 - step.
        allowed = 6 * ulp * lr + ulp * (np.abs(parameters[param].astype(np.float64)) + lr)
        assert np.all(np.abs(moved - expected) <= allowed), (param, np.max(np.abs(moved - expected) / allowed))


@SETTINGS
@given(states(), st.integers(1, 2000), open_betas, open_betas, learning_rates)
def test_epsilon_placement_does_not_matter_when_epsilon_is_zero(state, t, b1, b2, lr):
    _, parameters, grads, v, s = state
    with np.errstate(all="ignore"):
        outside = ops.adam_update(parameters, grads, v, s, t, lr, b1, b2, 0.0, "outside_sqrt")
        inside = ops.adam_update(parameters, grads, v, s, t, lr, b1, b2, 0.0, "inside_sqrt")
    for a, b in zip(outside, inside):
        assert_trees_equal(a, b)


@SETTINGS
@given(states(dtype=np.float64), open_betas, open_betas, st.floats(1e-4, 1e-1), learning_rates)
def test_epsilon_placement_differs_when_epsilon_is_not_zero(state, b1, b2, eps, lr):
    """A sanity check that the convention is honoured: from zero moments at t = 1 the step is
    ``lr*g/(|g|+eps)`` outside and ``lr*g/sqrt(g**2+eps)`` inside, which differ for every g != 0."""
    _, parameters, grads, _, _ = state
    v, s = ops.adam_init(parameters)
    outside, _, _ = ops.adam_update(parameters, grads, v, s, 1, lr, b1, b2, eps, "outside_sqrt")
    inside, _, _ = ops.adam_update(parameters, grads, v, s, 1, lr, b1, b2, eps, "inside_sqrt")
    assume(any(np.any(np.abs(g) > 1e-3) for g in grads.values()))
    assert any(not np.array_equal(outside[k], inside[k]) for k in outside)


# ---------------------------------------------------------------- dtypes


@SETTINGS
@given(states(dtype=np.float32), betas, learning_rates, open_betas, open_betas, epsilons, st.integers(1, 50))
def test_float32_inputs_give_float32_outputs(state, beta, lr, b1, b2, eps, t):
    _, parameters, grads, v, s = state
    X = np.arange(12, dtype=np.float32).reshape(2, 6)
    Y = np.arange(6, dtype=np.float32).reshape(1, 6)
    for name, (_, run) in _run_every_op(parameters, grads, v, s, X, Y, beta, lr, b1, b2, eps, t).items():
        with np.errstate(all="ignore"):
            result = run()
        arrays = list(all_arrays(result))
        assert arrays, name
        assert all(a.dtype == np.float32 for a in arrays), (name, {a.dtype for a in arrays})


# ---------------------------------------------------------------- course names


def test_course_aliases_are_the_same_functions():
    assert course.initialize_parameters_Adam is course.initialize_adam
    assert course.update_parameters_Adam is course.update_parameters_with_adam


@SETTINGS
@given(states(), betas, learning_rates, open_betas, open_betas, epsilons, st.integers(1, 50), batch_inputs())
def test_course_functions_equal_the_ops(state, beta, lr, b1, b2, eps, t, batch_args):
    _, parameters, grads, v, s = state
    X, Y, size, seed = batch_args

    got = course.random_mini_batches(X, Y, size, seed)
    want = ops.mini_batches(X, Y, size, seed)
    assert len(got) == len(want)
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)
    got = course.random_mini_batches(X, Y)
    want = ops.mini_batches(X, Y, 64, 0)
    assert [x.shape for x, _ in got] == [x.shape for x, _ in want]
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)

    assert_trees_equal(course.initialize_velocity(parameters), ops.momentum_init(parameters))
    for init in (course.initialize_adam, course.initialize_parameters_Adam):
        for a, b in zip(init(parameters), ops.adam_init(parameters)):
            assert_trees_equal(a, b)

    for a, b in zip(course.update_parameters_with_momentum(parameters, grads, v, beta, lr),
                    ops.momentum_update(parameters, grads, v, beta, lr, "ema")):
        assert_trees_equal(a, b)

    for update in (course.update_parameters_with_adam, course.update_parameters_Adam):
        with np.errstate(all="ignore"):
            got = update(parameters, grads, v, s, t, lr, b1, b2, eps)
            want = ops.adam_update(parameters, grads, v, s, t, lr, b1, b2, eps, "outside_sqrt")
            got_default = update(parameters, grads, v, s, t)
            want_default = ops.adam_update(parameters, grads, v, s, t, 0.01, 0.9, 0.999, 1e-8, "outside_sqrt")
            got_kw = update(parameters=parameters, grads=grads, v=v, s=s, t=t, learning_rate=lr,
                            beta1=b1, beta2=b2, epsilon=eps)
        assert len(got) >= 3
        for triple in (zip(got[:3], want), zip(got_default[:3], want_default), zip(got_kw[:3], want)):
            for a, b in triple:
                assert_trees_equal(a, b)


def test_reference_declares_its_conventions():
    assert course.OPTCONFORM_CONVENTIONS == {
        "adam.epsilon": "outside_sqrt", "rmsprop.epsilon": "outside_sqrt", "momentum.form": "ema",
        "mini_batches.rng": "numpy_legacy", "mini_batches.y_rows": "multi_row", "platform.subnormals": "kept"}


@pytest.mark.parametrize("bad", [{"form": "nesterov"}, {"epsilon_placement": "both"}])
def test_unknown_conventions_are_refused(bad):
    p = {"W1": np.ones((1, 1)), "b1": np.ones((1, 1))}
    g = {"dW1": np.ones((1, 1)), "db1": np.ones((1, 1))}
    with pytest.raises(ValueError):
        if "form" in bad:
            ops.momentum_update(p, g, g, 0.9, 0.1, **bad)
        else:
            ops.adam_update(p, g, g, g, 1, **bad)


def test_beta_power_underflow_is_handled():
    """t large enough that beta**t underflows: corrections become exactly 1, nothing is NaN."""
    assert math.pow(0.9713, 1_000_000) == 0.0
    p = {"W1": np.array([[0.5]]), "b1": np.array([[-0.25]])}
    g = {"dW1": np.array([[0.1]]), "db1": np.array([[-3.0]])}
    new_p, new_v, new_s = ops.adam_update(p, g, g, {k: x * x for k, x in g.items()}, 1_000_000, 0.01, 0.83,
                                          0.9713, 1e-8)
    for tree in (new_p, new_v, new_s):
        assert all(np.all(np.isfinite(x)) for x in tree.values())
