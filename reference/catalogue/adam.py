"""Scenarios of ``update_parameters_with_adam``."""

from __future__ import annotations

import numpy as np

from .scenario import (
    ADAM_EPSILONS,
    COURSE_DIMS,
    DEEP_DIMS,
    Scenario,
    backprop_order,
    log_uniform_magnitudes,
    network,
    partly_subnormal,
    random_dims,
    second_moments,
    zeros_like,
)

# ---------------------------------------------------------------- adam.update



def _adam(dims=COURSE_DIMS, t=3, lr=0.0231, beta1=0.83, beta2=0.9713, epsilon=3.7e-7, state="random",
          grads=None, params_scale=1.0):
    def build(rng):
        parameters = network(rng, dims, params_scale)
        g = grads(rng, dims) if grads else network(rng, dims, 1.0, "d")
        if state == "zeros":
            v, s = zeros_like(g), zeros_like(g)
        else:
            v, s = network(rng, dims, 0.3, "d"), second_moments(rng, dims)
        return {"parameters": parameters, "grads": g, "v": v, "s": s, "t": t, "learning_rate": lr,
                "beta1": beta1, "beta2": beta2, "epsilon": epsilon}

    return build


def adam_scenarios():
    course = dict(lr=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8)
    specs = [
        ("nondefault", _adam(), "lr 0.0231, beta1 0.83, beta2 0.9713, epsilon 3.7e-7 at t = 3",
         "a learning rate, beta or epsilon hard-coded to the course defaults", ("defaults-differ",)),
        ("t-1", _adam(t=1, state="zeros"), "the first step from zero moments",
         "no bias correction (the first step is then off by a factor (1-beta1)/sqrt(1-beta2))",
         ("bias-correction", "first-step")),
        ("t-2", _adam(t=2), "t = 2 with non-zero moments", "t off by one in the bias correction",
         ("bias-correction",)),
        ("t-10", _adam(t=10), "t = 10", "a private step counter or t off by one", ("bias-correction",)),
        ("t-1000", _adam(t=1000, beta2=0.999), "t = 1000, beta2 0.999: beta1**t is negligible, beta2**t = 0.37 is not",
         "only the first or only the second bias correction applied", ("bias-correction",)),
        ("t-20000", _adam(t=20_000, beta2=0.9999), "t = 20000 with beta2 0.9999: beta2**t = 0.14",
         "a step counter capped (at 10000, say) or kept in a small integer type", ("bias-correction", "large-t")),
        ("t-100000", _adam(t=100_000, beta2=0.9999), "t = 100000 with beta2 0.9999: beta2**t = 4.5e-5",
         "a step counter capped or wrapped; beta2**t still matters after 10**5 steps", ("bias-correction", "large-t")),
        ("t-underflow", _adam(t=1_000_000), "t = 1e6: beta1**t and beta2**t underflow to 0",
         "a correction computed as exp(t*log(beta)) or in a way that breaks at large t", ("bias-correction", "edge")),
        ("course-defaults-t-1", _adam(t=1, state="zeros", **course), "the course's defaults at t = 1",
         "the seed's arithmetic at its own defaults", ("course",)),
        ("course-defaults-t-7", _adam(t=7, **course), "the course's defaults at t = 7, non-zero moments",
         "the seed's arithmetic at its own defaults", ("course",)),
        ("beta1-zero", _adam(beta1=0.0), "beta1 = 0: no first-moment averaging",
         "beta1 hard-coded, or v kept when beta1 = 0", ("edge",)),
        ("betas-apart", _adam(beta1=0.5, beta2=0.99, t=4), "beta1 0.5 and beta2 0.99, far apart",
         "beta1 and beta2 swapped between the two moments", ("defaults-differ",)),
        ("large-epsilon", _adam(epsilon=1e-2, grads=lambda rng, dims: network(rng, dims, 1e-3, "d"),
                                state="zeros", t=1),
         "epsilon 1e-2 with squared gradients near 1e-6: placement of epsilon dominates the step",
         "epsilon inside instead of outside the square root, or dropped", ("epsilon",)),
        ("zero-grads", _adam(grads=lambda rng, dims: zeros_like(network(rng, dims, 1.0, "d"))),
         "zero gradients with non-zero moments", "the update skipped when the gradient is zero", ("zeros", "edge")),
        ("zero-everything", _adam(grads=lambda rng, dims: zeros_like(network(rng, dims, 1.0, "d")), state="zeros"),
         "zero gradients and zero moments: nothing moves", "0/0 without epsilon, giving NaN", ("zeros", "edge")),
        ("one-layer-1x1", _adam(dims=[1, 1]), "one layer with 1x1 weight and bias", "scalars mishandled",
         ("shapes", "layers")),
        ("four-layers", _adam(dims=[6, 5, 4, 3, 1], t=6), "four layers at t = 6", "a layer or the biases skipped",
         ("layers",)),
        ("row-and-column", _adam(dims=[7, 1, 6]), "weights that are a row and a column",
         "transposed moments", ("shapes",)),
        ("mixed-magnitudes", _adam(grads=lambda rng, dims: log_uniform_magnitudes(rng, dims, -20, 20), state="zeros"),
         "gradients of mixed sign with magnitudes from 1e-20 to 1e20",
         "|g| or g*|g| for g**2, and overflow handling", ("magnitudes",)),
        ("subnormal", _adam(grads=lambda rng, dims: log_uniform_magnitudes(rng, dims, -320, -310), state="zeros",
                            params_scale=1e-310, epsilon=1e-300),
         "gradients in float64's subnormal range, so g**2 underflows to zero",
         "flush-to-zero or a division by an underflowed denominator", ("subnormal", "magnitudes")),
        ("subnormal-mixed", _adam(grads=partly_subnormal, t=2, state="zeros"),
         "ordinary gradients with about half their entries subnormal",
         "subnormals flushed to zero while the other entries are exact (tells flush-to-zero from float32)",
         ("subnormal", "magnitudes")),
        ("backprop-key-order", _adam(dims=[4, 3, 3, 2], grads=backprop_order),
         "grads listed in back-propagation order: dW3, db3, dW2, db2, dW1, db1",
         "parameters and gradients paired by position (zip(parameters, grads)) instead of by name",
         ("layers", "keys")),
        ("eleven-layers", _adam(dims=DEEP_DIMS, t=4), "eleven layers: W10, W11 have two-digit layer numbers",
         "the layer number read as key[-1] or a hard-coded depth", ("layers", "keys")),
        ("signs", _adam(grads=lambda rng, dims: {k: np.where(rng.random(v.shape) < 0.5, -1.0, 1.0) * (1 + rng.random(v.shape))
                                                  for k, v in network(rng, dims, 1.0, "d").items()}, t=2),
         "gradients of both signs, magnitude 1 to 2", "the sign of the step flipped", ("signs",)),
    ]
    scenarios = [Scenario("adam.update", name, description, why, ("adam",) + tags, build, ADAM_EPSILONS)
                 for name, build, description, why, tags in specs]
    scenarios.append(Scenario(
        "adam.update", "default-arguments",
        "update_parameters_with_adam(parameters, grads, v, s, t) at t = 5: the defaults lr 0.01, beta1 0.9, "
        "beta2 0.999, epsilon 1e-8",
        "a wrong default hyperparameter (PyTorch's lr 0.001, Keras' epsilon 1e-7); the call gives none",
        ("adam", "defaults"), _adam(t=5, **course), ADAM_EPSILONS,
        omitted=("learning_rate", "beta1", "beta2", "epsilon")))
    sweep = np.random.default_rng(13)
    for k in range(30):
        dims = random_dims(sweep)
        t = int(sweep.integers(1, 60))
        beta1, beta2 = round(float(sweep.uniform(0.6, 0.95)), 4), round(float(sweep.uniform(0.95, 0.9999)), 5)
        lr, eps = round(float(10 ** sweep.uniform(-3, -1)), 6), float(f"{10 ** sweep.uniform(-9, -4):.3g}")
        scenarios.append(Scenario(
            "adam.update", f"sweep-{k:02d}", f"layers {dims}, t {t}, beta1 {beta1}, beta2 {beta2}, lr {lr}, eps {eps}",
            "any arithmetic or bookkeeping error on ordinary inputs", ("adam", "sweep"),
            _adam(dims=dims, t=t, lr=lr, beta1=beta1, beta2=beta2, epsilon=eps), ADAM_EPSILONS))
    return scenarios
