"""Scenarios of ``update_parameters_with_momentum``."""

from __future__ import annotations

import numpy as np

from .scenario import (
    COURSE_DIMS,
    DEEP_DIMS,
    MOMENTUM_FORMS,
    Scenario,
    backprop_order,
    log_uniform_magnitudes,
    network,
    partly_subnormal,
    random_dims,
    zeros_like,
)

# ---------------------------------------------------------------- momentum.update



def _momentum(dims=COURSE_DIMS, beta=0.83, lr=0.037, v="random", grads=None, params_scale=1.0):
    def build(rng):
        parameters = network(rng, dims, params_scale)
        g = grads(rng, dims) if grads else network(rng, dims, 1.0, "d")
        velocity = zeros_like(g) if v == "zeros" else (v(rng, dims, g) if callable(v) else network(rng, dims, 0.3, "d"))
        return {"parameters": parameters, "grads": g, "v": velocity, "beta": beta, "learning_rate": lr}

    return build


def _cancelling_velocity(beta):
    """``v`` with ``beta*v`` equal to ``-(1-beta)*g`` up to a tiny residual: v1 cancels to ~0."""
    def make(rng, dims, g):
        return {k: -(1 - beta) * value / beta * (1 + 1e-9 * rng.standard_normal(value.shape)) for k, value in g.items()}

    return make


#: Eleven layers: keys with two-digit layer numbers.


def momentum_scenarios():
    specs = [
        ("nondefault", _momentum(), "beta 0.83, lr 0.037 (not the course's 0.9 and 0.01), non-zero v",
         "beta or the learning rate hard-coded to the course defaults", ("defaults-differ",)),
        ("beta-zero", _momentum(beta=0.0), "beta = 0: momentum reduces to gradient descent",
         "v kept from the previous step although beta = 0 (e.g. v += ... instead of v = ...)", ("edge",)),
        ("beta-high", _momentum(beta=0.999), "beta = 0.999: the old velocity dominates",
         "beta and 1-beta swapped", ("edge",)),
        ("first-step", _momentum(v="zeros"), "zero incoming velocity, the first step",
         "the EMA and heavy-ball forms told apart on the first step: v = (1-beta)*g vs v = g", ("first-step",)),
        ("zero-grads", _momentum(grads=lambda rng, dims: zeros_like(network(rng, dims, 1.0, "d"))),
         "zero gradients with a non-zero velocity: parameters still move",
         "the update skipped when the gradient is zero, or stepping with g instead of v", ("edge", "zeros")),
        ("lr-small", _momentum(lr=1e-4, beta=0.95), "a small learning rate 1e-4",
         "the learning rate hard-coded", ("defaults-differ",)),
        ("lr-large", _momentum(lr=1.7, beta=0.6), "a large learning rate 1.7 and beta 0.6",
         "the learning rate applied to the gradient instead of the velocity", ("defaults-differ",)),
        ("one-layer-1x1", _momentum(dims=[1, 1]), "one layer with 1x1 weight and bias",
         "scalars mishandled or broadcast wrongly", ("shapes", "layers")),
        ("four-layers", _momentum(dims=[6, 5, 4, 3, 1]), "four layers: every layer must be updated",
         "a loop over range(L-1) or range(1, L) that skips a layer", ("layers",)),
        ("row-and-column", _momentum(dims=[7, 1, 6]), "weights that are a row and a column",
         "a transposed velocity or a broadcast that hides it", ("shapes",)),
        ("mixed-magnitudes", _momentum(grads=lambda rng, dims: log_uniform_magnitudes(rng, dims, -20, 20)),
         "gradients of mixed sign with magnitudes from 1e-20 to 1e20",
         "a relative or absolute shortcut that loses the small entries next to large ones", ("magnitudes",)),
        ("subnormal", _momentum(grads=lambda rng, dims: log_uniform_magnitudes(rng, dims, -315, -309), v="zeros",
                                params_scale=1e-310),
         "gradients and parameters in float64's subnormal range",
         "flush-to-zero, or a computation that rescales through a larger intermediate", ("subnormal", "magnitudes")),
        ("subnormal-mixed", _momentum(grads=partly_subnormal, v="zeros"),
         "ordinary gradients with about half their entries subnormal",
         "subnormals flushed to zero while the other entries are exact (tells flush-to-zero from float32)",
         ("subnormal", "magnitudes")),
        ("backprop-key-order", _momentum(dims=[4, 3, 3, 2], grads=backprop_order),
         "grads listed in back-propagation order: dW3, db3, dW2, db2, dW1, db1",
         "parameters and gradients paired by position (zip(parameters, grads)) instead of by name",
         ("layers", "keys")),
        ("eleven-layers", _momentum(dims=DEEP_DIMS), "eleven layers: W10, W11 have two-digit layer numbers",
         "the layer number read as key[-1] or a hard-coded depth", ("layers", "keys")),
        ("cancellation", _momentum(v=_cancelling_velocity(0.83)),
         "beta*v cancels (1-beta)*g to nearly zero",
         "tolerances derived from the result alone; checks that the cancellation is computed, not guessed",
         ("cancellation",)),
    ]
    scenarios = [Scenario("momentum.update", name, description, why, ("momentum",) + tags, build, MOMENTUM_FORMS)
                 for name, build, description, why, tags in specs]
    sweep = np.random.default_rng(11)
    for k in range(25):
        dims = random_dims(sweep)
        beta, lr = round(float(sweep.uniform(0.5, 0.99)), 4), round(float(10 ** sweep.uniform(-3, 0)), 5)
        scenarios.append(Scenario(
            "momentum.update", f"sweep-{k:02d}", f"layers {dims}, beta {beta}, lr {lr}",
            "any arithmetic or bookkeeping error on ordinary inputs", ("momentum", "sweep"),
            _momentum(dims=dims, beta=beta, lr=lr), MOMENTUM_FORMS))
    return scenarios
