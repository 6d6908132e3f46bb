"""Scenarios of plain gradient descent and RMSprop."""

from __future__ import annotations

import numpy as np

from .scenario import (
    COURSE_DIMS,
    DEEP_DIMS,
    RMSPROP_EPSILONS,
    Scenario,
    backprop_order,
    log_uniform_magnitudes,
    network,
    random_dims,
    second_moments,
    zeros_like,
)

# ---------------------------------------------------------------- gradient descent


def _gd(dims=COURSE_DIMS, lr=0.037, grads=None, params_scale=1.0):
    def build(rng):
        parameters = network(rng, dims, params_scale)
        g = grads(rng, dims) if grads else network(rng, dims, 1.0, "d")
        return {"parameters": parameters, "grads": g, "learning_rate": lr}

    return build


def gd_scenarios():
    specs = [
        ("nondefault", _gd(), "lr 0.037 (not the course's 0.01)", "the learning rate hard-coded", ("defaults-differ",)),
        ("lr-large", _gd(lr=1.7), "a large learning rate 1.7", "the step added instead of subtracted, or scaled",
         ("defaults-differ",)),
        ("zero-grads", _gd(grads=lambda rng, dims: zeros_like(network(rng, dims, 1.0, "d"))),
         "zero gradients: nothing moves", "parameters changed although the gradient is zero", ("zeros", "edge")),
        ("one-layer-1x1", _gd(dims=[1, 1]), "one layer with 1x1 weight and bias", "scalars mishandled",
         ("shapes", "layers")),
        ("four-layers", _gd(dims=[6, 5, 4, 3, 1]), "four layers: every layer must be updated",
         "a loop over range(L-1) or range(1, L) that skips a layer", ("layers",)),
        ("eleven-layers", _gd(dims=DEEP_DIMS), "eleven layers: W10, W11 have two-digit layer numbers",
         "the layer number read as key[-1] or a hard-coded depth", ("layers", "keys")),
        ("backprop-key-order", _gd(dims=[4, 3, 3, 2], grads=backprop_order),
         "grads listed in back-propagation order: dW3, db3, dW2, db2, dW1, db1",
         "parameters and gradients paired by position (zip(parameters, grads)) instead of by name",
         ("layers", "keys")),
        ("mixed-magnitudes", _gd(grads=lambda rng, dims: log_uniform_magnitudes(rng, dims, -20, 20)),
         "gradients of mixed sign with magnitudes from 1e-20 to 1e20",
         "a relative or absolute shortcut that loses the small entries next to large ones", ("magnitudes",)),
    ]
    scenarios = [Scenario("gd.update", name, description, why, ("gd",) + tags, build)
                 for name, build, description, why, tags in specs]
    sweep = np.random.default_rng(17)
    for k in range(10):
        dims = random_dims(sweep)
        lr = round(float(10 ** sweep.uniform(-3, 0)), 5)
        scenarios.append(Scenario("gd.update", f"sweep-{k:02d}", f"layers {dims}, lr {lr}",
                                  "any arithmetic or bookkeeping error on ordinary inputs", ("gd", "sweep"),
                                  _gd(dims=dims, lr=lr)))
    return scenarios


# ---------------------------------------------------------------- RMSprop


def _rmsprop(dims=COURSE_DIMS, lr=0.0231, beta2=0.9713, epsilon=3.7e-7, state="random", grads=None):
    def build(rng):
        parameters = network(rng, dims)
        g = grads(rng, dims) if grads else network(rng, dims, 1.0, "d")
        s = zeros_like(g) if state == "zeros" else second_moments(rng, dims)
        return {"parameters": parameters, "grads": g, "s": s, "beta2": beta2, "learning_rate": lr,
                "epsilon": epsilon}

    return build


def rmsprop_scenarios():
    specs = [
        ("nondefault", _rmsprop(), "lr 0.0231, beta2 0.9713, epsilon 3.7e-7, non-zero s",
         "a learning rate, beta2 or epsilon hard-coded", ("defaults-differ",)),
        ("first-step", _rmsprop(state="zeros"), "the first step from zero s",
         "a bias correction added (RMSprop has none), or s used before it is updated", ("first-step",)),
        ("beta2-low", _rmsprop(beta2=0.5), "beta2 0.5: the new squared gradient weighs half",
         "beta2 and 1-beta2 swapped", ("edge",)),
        ("large-epsilon", _rmsprop(epsilon=1e-2, grads=lambda rng, dims: network(rng, dims, 1e-3, "d"),
                                   state="zeros"),
         "epsilon 1e-2 with squared gradients near 1e-6: placement of epsilon dominates the step",
         "epsilon inside instead of outside the square root, or dropped", ("epsilon",)),
        ("zero-grads", _rmsprop(grads=lambda rng, dims: zeros_like(network(rng, dims, 1.0, "d"))),
         "zero gradients with a non-zero s: s decays, nothing moves",
         "s left unchanged when the gradient is zero", ("zeros", "edge")),
        ("four-layers", _rmsprop(dims=[6, 5, 4, 3, 1]), "four layers", "a layer or the biases skipped",
         ("layers",)),
        ("eleven-layers", _rmsprop(dims=DEEP_DIMS), "eleven layers: W10, W11 have two-digit layer numbers",
         "the layer number read as key[-1] or a hard-coded depth", ("layers", "keys")),
        ("backprop-key-order", _rmsprop(dims=[4, 3, 3, 2], grads=backprop_order),
         "grads listed in back-propagation order: dW3, db3, dW2, db2, dW1, db1",
         "parameters and gradients paired by position instead of by name", ("layers", "keys")),
    ]
    scenarios = [Scenario("rmsprop.update", name, description, why, ("rmsprop",) + tags, build, RMSPROP_EPSILONS)
                 for name, build, description, why, tags in specs]
    scenarios.append(Scenario(
        "rmsprop.update", "default-epsilon",
        "update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate): epsilon left out, its default "
        "1e-8 against squared gradients near 1e-14", "a wrong default epsilon (the suite's mutation test found "
        "no case that left it out)", ("rmsprop", "defaults"),
        _rmsprop(epsilon=1e-8, state="zeros", grads=lambda rng, dims: network(rng, dims, 1e-7, "d")), RMSPROP_EPSILONS,
        omitted=("epsilon",)))
    sweep = np.random.default_rng(19)
    for k in range(10):
        dims = random_dims(sweep)
        beta2 = round(float(sweep.uniform(0.8, 0.9999)), 5)
        lr, eps = round(float(10 ** sweep.uniform(-3, -1)), 6), float(f"{10 ** sweep.uniform(-9, -4):.3g}")
        scenarios.append(Scenario(
            "rmsprop.update", f"sweep-{k:02d}", f"layers {dims}, beta2 {beta2}, lr {lr}, eps {eps}",
            "any arithmetic or bookkeeping error on ordinary inputs", ("rmsprop", "sweep"),
            _rmsprop(dims=dims, lr=lr, beta2=beta2, epsilon=eps), RMSPROP_EPSILONS))
    return scenarios
