"""The case catalogue: which inputs the vectors hold, and why each exists.

Each :class:`Scenario` is a named recipe: an op, a description, the bug class it
exists to catch (``why``), tags, the conventions it is generated under, and a
builder that draws its inputs from a random generator. The generator turns each
scenario and convention into one case with a stable id ``op/convention/name``.

Each scenario's generator is seeded by the suite seed and the scenario's own
name, so adding or removing a scenario never changes another case's numbers, and
``--seed N`` gives the same catalogue with fresh numbers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

DEFAULT_SEED = 20261124


@dataclass(frozen=True)
class Scenario:
    op: str
    name: str
    description: str
    why: str
    tags: tuple[str, ...]
    build: Callable[[np.random.Generator], dict]
    conventions: tuple[dict, ...] = field(default_factory=lambda: ({},))
    #: Arguments left out of the call (and of the case's inputs): the function's defaults must apply.
    omitted: tuple[str, ...] = ()

    def rng(self, suite_seed: int) -> np.random.Generator:
        return np.random.default_rng([suite_seed, zlib.crc32(f"{self.op}/{self.name}".encode())])


# ---------------------------------------------------------------- input helpers


def network(rng, dims, scale=1.0, prefix=""):
    """A parameter-shaped dict for layer sizes ``dims = [n0, n1, ..., nL]``.

    With ``prefix=""`` the keys are ``W1, b1, ...``; with ``prefix="d"`` they are
    ``dW1, db1, ...`` (gradients, v, s). ``Wl`` is ``(n_l, n_{l-1})``, ``bl`` is ``(n_l, 1)``.
    """
    tree = {}
    for layer in range(1, len(dims)):
        tree[f"{prefix}W{layer}"] = rng.standard_normal((dims[layer], dims[layer - 1])) * scale
        tree[f"{prefix}b{layer}"] = rng.standard_normal((dims[layer], 1)) * scale
    return tree


def _random_dims(sweep: np.random.Generator) -> list[int]:
    """Layer sizes for a sweep case: 1 to 3 layers of 1 to 5 units (drawn in a fixed order)."""
    depth = int(sweep.integers(1, 4))
    return [int(n) for n in sweep.integers(1, 6, size=depth + 1)]


def zeros_like(tree):
    return {key: np.zeros_like(value) for key, value in tree.items()}


def second_moments(rng, dims, scale=1e-2):
    """Non-negative ``s`` for Adam: squared normal draws times ``scale``."""
    return {key: value**2 for key, value in network(rng, dims, np.sqrt(scale), "d").items()}


def log_uniform_magnitudes(rng, dims, low, high):
    """Gradients of random sign whose magnitudes spread over ``[10**low, 10**high]``.

    Both ends are always present (the first element is ``+10**low``, the last
    ``-10**high``): a few random draws alone rarely reach them.
    """
    tree = network(rng, dims, 1.0, "d")
    tree = {
        key: np.sign(value) * 10.0 ** rng.uniform(low, high, size=value.shape) for key, value in tree.items()
    }
    keys = list(tree)
    tree[keys[0]].flat[0] = 10.0**low
    tree[keys[-1]].flat[-1] = -(10.0**high)
    return tree


def partly_subnormal(rng, dims):
    """Gradients of ordinary size with about half their entries in float64's subnormal range."""
    tree = network(rng, dims, 1.0, "d")
    tiny = log_uniform_magnitudes(rng, dims, -318, -309)
    return {key: np.where(rng.random(value.shape) < 0.5, tiny[key], value) for key, value in tree.items()}


def indexed_columns(n_x, n_y, m):
    """X and Y whose every column is distinct and encodes its own index.

    ``X[i, j] = j + i/1024`` and ``Y[k, j] = -(j + 1) - k/1024``: dyadic, so exact in
    float32 too, and a harness recovers the permutation from any batch column.
    """
    j = np.arange(m, dtype=np.float64)
    X = j[None, :] + np.arange(n_x)[:, None] / 1024.0
    Y = -(j[None, :] + 1) - np.arange(n_y)[:, None] / 1024.0
    return X, Y


# ---------------------------------------------------------------- mini_batches

RNG_BOTH = ({"mini_batches.rng": "structural"}, {"mini_batches.rng": "numpy_legacy"})


def _rng_both(n_y: int) -> tuple[dict, ...]:
    """Both RNG conventions; a Y of several rows only under ``mini_batches.y_rows=multi_row``.

    The course (and the seed) reshape the shuffled Y to ``(1, m)``: labels of one
    row are the specification, and a port that supports more declares it.
    """
    if n_y == 1:
        return RNG_BOTH
    return tuple({**conventions, "mini_batches.y_rows": "multi_row"} for conventions in RNG_BOTH)


def _batches(n_x, n_y, m, size, seed=None):
    """X, Y of the given sizes; the shuffle seed is fixed, or (None) drawn per suite, so a
    private set from ``generate --seed`` shuffles differently."""
    def build(rng):
        X, Y = indexed_columns(n_x, n_y, m)
        drawn = int(rng.integers(0, 2**31 - 1)) if seed is None else seed
        return {"X": X, "Y": Y, "mini_batch_size": size, "seed": drawn}

    return build


def mini_batch_scenarios():
    fixed = [
        ("divisible", 3, 1, 128, 64, "m = 128 divisible by size 64: two full batches",
         "an extra empty batch, or an off-by-one in the number of complete batches", ("partition",)),
        ("remainder", 3, 1, 148, 64, "m = 148 with size 64: two full batches and a last batch of 20",
         "the last partial batch dropped, or cut at the wrong offset", ("partition", "last-batch")),
        ("m-smaller-than-size", 2, 1, 10, 64, "m = 10 smaller than size 64: one batch of all 10",
         "zero complete batches mishandled, so nothing is returned", ("partition", "edge")),
        ("size-one", 2, 1, 7, 1, "size 1: seven batches of one column",
         "slicing k:k+1 written as k:k, or batches of shape (n,) instead of (n, 1)", ("partition", "edge")),
        ("m-one", 2, 1, 1, 64, "m = 1: one batch of the single column",
         "a shape collapsed to 1-D or a reshape that assumes m > 1", ("edge",)),
        ("m-one-size-one", 1, 1, 1, 1, "m = 1 and size 1", "the smallest input mishandled", ("edge",)),
        ("one-exact-batch", 2, 1, 64, 64, "m equals the size: exactly one batch, no remainder",
         "an empty trailing batch appended when m % size == 0", ("partition", "last-batch")),
        ("last-batch-of-one", 2, 1, 65, 64, "m = 65, size 64: a last batch of one column",
         "the last batch dropped when it is small", ("partition", "last-batch")),
        ("size-m-minus-one", 2, 1, 33, 32, "size = m - 1: one full batch and a batch of one",
         "the last batch sliced from the start instead of from num_complete*size", ("last-batch",)),
        ("many-batches", 2, 1, 300, 32, "m = 300, size 32: nine full batches and one of 12",
         "batch boundaries drifting after the first few batches", ("partition",)),
        ("n-x-one", 1, 1, 40, 16, "n_x = 1: X is a single row",
         "X flattened to 1-D or transposed", ("shapes",)),
        ("n-x-large", 100, 1, 40, 16, "n_x = 100 features",
         "rows and columns confused: shuffling rows of X instead of columns", ("shapes",)),
        ("n-y-one", 4, 1, 40, 16, "n_y = 1, the course's binary labels",
         "Y reshaped with a hard-coded (1, m)", ("shapes",)),
        ("n-y-three", 4, 3, 40, 16, "n_y = 3: multi-output labels, for a port that declares multi_row",
         "a port that claims labels of several rows but reshapes Y to (1, m) or shuffles only its first row",
         ("shapes", "pairing")),
        ("pairing", 5, 1, 90, 32, "X and Y columns that name their own index (Y[0, j] = -(j + 1))",
         "X and Y shuffled with different permutations, losing their pairing", ("pairing",)),
        ("pairing-multi-row", 5, 2, 90, 32, "two rows of labels, each naming its column",
         "the rows of Y shuffled apart from each other or from X", ("pairing",)),
    ]
    scenarios = []
    for name, n_x, n_y, m, size, description, why, tags in fixed:
        scenarios.append(Scenario("mini_batches", name, description, why, ("mini_batches",) + tags,
                                  _batches(n_x, n_y, m, size), _rng_both(n_y)))
    scenarios.append(Scenario(
        "mini_batches", "default-arguments", "random_mini_batches(X, Y) with m = 150: the defaults size 64, seed 0",
        "a wrong default batch size or seed (the call gives neither)", ("mini_batches", "defaults"),
        _batches(2, 1, 150, 64, 0), RNG_BOTH, omitted=("mini_batch_size", "seed")))
    for seed in (0, 1, 2, 42, 1234, 2**31 - 1):
        scenarios.append(Scenario(
            "mini_batches", f"seed-{seed}", f"m = 50, size 16, seed {seed}",
            "the seed ignored, or a fixed permutation used whatever the seed", ("mini_batches", "seed"),
            _batches(3, 1, 50, 16, seed), RNG_BOTH))
    sweep = np.random.default_rng(7)
    for k in range(30):
        n_x, n_y = int(sweep.integers(1, 9)), int(sweep.integers(1, 4))
        m, size, _ = int(sweep.integers(2, 200)), int(sweep.integers(1, 70)), int(sweep.integers(0, 10_000))
        scenarios.append(Scenario(
            "mini_batches", f"sweep-{k:02d}", f"n_x={n_x}, n_y={n_y}, m={m}, size={size}",
            "any slicing or pairing error on ordinary sizes", ("mini_batches", "sweep"),
            _batches(n_x, n_y, m, size), _rng_both(n_y)))
    return scenarios


# ---------------------------------------------------------------- init

INIT_SHAPES = [
    ("one-layer-1x1", [1, 1], "one layer with a 1x1 weight and a 1x1 bias"),
    ("one-layer-row", [5, 1], "one layer whose weight is a row (1, 5)"),
    ("one-layer-column", [1, 4], "one layer whose weight is a column (4, 1)"),
    ("two-layers", [3, 4, 1], "two layers, the course's shapes"),
    ("three-layers", [2, 3, 3, 2], "three layers"),
    ("four-layers", [6, 5, 4, 3, 1], "four layers of decreasing width"),
    ("four-layers-widening", [1, 2, 3, 4, 5], "four layers of increasing width"),
    ("square", [4, 4], "one square layer, where a transpose goes unnoticed in the weight"),
    ("wide", [32, 16, 1], "two wide layers"),
    ("bias-column", [3, 9], "a bias of nine rows, which must stay a column (9, 1)"),
    ("eleven-layers", [3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 1], "eleven layers: keys W10 and W11 have two digits"),
]


def _init(dims):
    return lambda rng: {"parameters": network(rng, dims)}


def init_scenarios():
    scenarios = []
    for op, what in (("momentum.init", "v"), ("adam.init", "v and s")):
        for name, dims, description in INIT_SHAPES:
            scenarios.append(Scenario(
                op, name, f"{what} for {description}",
                "zeros of the wrong shape (transposed, (n,) for (n, 1)), a layer missed, "
                "keys named W1 instead of dW1, or values copied from the parameters",
                ("init", "shapes", "layers"), _init(dims)))
    return scenarios


# ---------------------------------------------------------------- momentum.update

MOMENTUM_FORMS = ({"momentum.form": "ema"}, {"momentum.form": "heavy_ball"})
COURSE_DIMS = [3, 4, 1]


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
DEEP_DIMS = [3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 1]


def _backprop_order(rng, dims):
    """Gradients keyed as back-propagation produces them: the last layer first."""
    grads = network(rng, dims, 1.0, "d")
    layers = range(len(dims) - 1, 0, -1)
    return {key: grads[key] for layer in layers for key in (f"dW{layer}", f"db{layer}")}


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
        ("backprop-key-order", _momentum(dims=[4, 3, 3, 2], grads=_backprop_order),
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
        dims = _random_dims(sweep)
        beta, lr = round(float(sweep.uniform(0.5, 0.99)), 4), round(float(10 ** sweep.uniform(-3, 0)), 5)
        scenarios.append(Scenario(
            "momentum.update", f"sweep-{k:02d}", f"layers {dims}, beta {beta}, lr {lr}",
            "any arithmetic or bookkeeping error on ordinary inputs", ("momentum", "sweep"),
            _momentum(dims=dims, beta=beta, lr=lr), MOMENTUM_FORMS))
    return scenarios


# ---------------------------------------------------------------- adam.update

EPSILON_BOTH = ({"adam.epsilon": "outside_sqrt"}, {"adam.epsilon": "inside_sqrt"})


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
        ("backprop-key-order", _adam(dims=[4, 3, 3, 2], grads=_backprop_order),
         "grads listed in back-propagation order: dW3, db3, dW2, db2, dW1, db1",
         "parameters and gradients paired by position (zip(parameters, grads)) instead of by name",
         ("layers", "keys")),
        ("eleven-layers", _adam(dims=DEEP_DIMS, t=4), "eleven layers: W10, W11 have two-digit layer numbers",
         "the layer number read as key[-1] or a hard-coded depth", ("layers", "keys")),
        ("signs", _adam(grads=lambda rng, dims: {k: np.where(rng.random(v.shape) < 0.5, -1.0, 1.0) * (1 + rng.random(v.shape))
                                                  for k, v in network(rng, dims, 1.0, "d").items()}, t=2),
         "gradients of both signs, magnitude 1 to 2", "the sign of the step flipped", ("signs",)),
    ]
    scenarios = [Scenario("adam.update", name, description, why, ("adam",) + tags, build, EPSILON_BOTH)
                 for name, build, description, why, tags in specs]
    scenarios.append(Scenario(
        "adam.update", "default-arguments",
        "update_parameters_with_adam(parameters, grads, v, s, t) at t = 5: the defaults lr 0.01, beta1 0.9, "
        "beta2 0.999, epsilon 1e-8",
        "a wrong default hyperparameter (PyTorch's lr 0.001, Keras' epsilon 1e-7); the call gives none",
        ("adam", "defaults"), _adam(t=5, **course), EPSILON_BOTH,
        omitted=("learning_rate", "beta1", "beta2", "epsilon")))
    sweep = np.random.default_rng(13)
    for k in range(30):
        dims = _random_dims(sweep)
        t = int(sweep.integers(1, 60))
        beta1, beta2 = round(float(sweep.uniform(0.6, 0.95)), 4), round(float(sweep.uniform(0.95, 0.9999)), 5)
        lr, eps = round(float(10 ** sweep.uniform(-3, -1)), 6), float(f"{10 ** sweep.uniform(-9, -4):.3g}")
        scenarios.append(Scenario(
            "adam.update", f"sweep-{k:02d}", f"layers {dims}, t {t}, beta1 {beta1}, beta2 {beta2}, lr {lr}, eps {eps}",
            "any arithmetic or bookkeeping error on ordinary inputs", ("adam", "sweep"),
            _adam(dims=dims, t=t, lr=lr, beta1=beta1, beta2=beta2, epsilon=eps), EPSILON_BOTH))
    return scenarios


# ---------------------------------------------------------------- trajectories

TRAJECTORY_STEPS = 12


def _trajectory(dims, hyper, steps=TRAJECTORY_STEPS, grad_scale=1.0):
    def build(rng):
        return {"parameters": network(rng, dims),
                "grads": [network(rng, dims, grad_scale, "d") for _ in range(steps)], **hyper}

    return build


def trajectory_scenarios():
    scenarios = []
    momentum_runs = [
        ("course", COURSE_DIMS, {"beta": 0.9, "learning_rate": 0.01}, "the course's beta 0.9 and lr 0.01"),
        ("nondefault", [4, 3, 2], {"beta": 0.77, "learning_rate": 0.05}, "beta 0.77, lr 0.05"),
        ("deep", [5, 4, 4, 3, 1], {"beta": 0.95, "learning_rate": 0.02}, "four layers, beta 0.95"),
        ("low-beta", [2, 2], {"beta": 0.5, "learning_rate": 0.3}, "beta 0.5, lr 0.3"),
    ]
    for name, dims, hyper, description in momentum_runs:
        scenarios.append(Scenario(
            "momentum.trajectory", name, f"{TRAJECTORY_STEPS} momentum steps from init, {description}",
            "state carried wrongly between calls: a stale or reset velocity, or v not returned",
            ("momentum", "trajectory"), _trajectory(dims, hyper), MOMENTUM_FORMS))
    adam_runs = [
        ("course", COURSE_DIMS, {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
         "the course's defaults"),
        ("nondefault", [4, 3, 2], {"learning_rate": 0.03, "beta1": 0.8, "beta2": 0.97, "epsilon": 1e-6},
         "lr 0.03, beta1 0.8, beta2 0.97, epsilon 1e-6"),
        ("deep", [5, 4, 4, 3, 1], {"learning_rate": 0.005, "beta1": 0.85, "beta2": 0.99, "epsilon": 1e-7},
         "four layers"),
        ("large-epsilon", [2, 3, 1], {"learning_rate": 0.02, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-3},
         "epsilon 1e-3, where its placement shows"),
    ]
    for name, dims, hyper, description in adam_runs:
        scenarios.append(Scenario(
            "adam.trajectory", name, f"{TRAJECTORY_STEPS} Adam steps from init (t = 1, 2, ...), {description}",
            "state carried wrongly between calls: a private step counter, v and s aliased to one dict, stale moments",
            ("adam", "trajectory"), _trajectory(dims, hyper), EPSILON_BOTH))
    return scenarios


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
        ("backprop-key-order", _gd(dims=[4, 3, 3, 2], grads=_backprop_order),
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
        dims = _random_dims(sweep)
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
        ("backprop-key-order", _rmsprop(dims=[4, 3, 3, 2], grads=_backprop_order),
         "grads listed in back-propagation order: dW3, db3, dW2, db2, dW1, db1",
         "parameters and gradients paired by position instead of by name", ("layers", "keys")),
    ]
    scenarios = [Scenario("rmsprop.update", name, description, why, ("rmsprop",) + tags, build, EPSILON_BOTH)
                 for name, build, description, why, tags in specs]
    scenarios.append(Scenario(
        "rmsprop.update", "default-epsilon",
        "update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate): epsilon left out, its default "
        "1e-8 against squared gradients near 1e-14", "a wrong default epsilon (the suite's mutation test found "
        "no case that left it out)", ("rmsprop", "defaults"),
        _rmsprop(epsilon=1e-8, state="zeros", grads=lambda rng, dims: network(rng, dims, 1e-7, "d")), EPSILON_BOTH,
        omitted=("epsilon",)))
    sweep = np.random.default_rng(19)
    for k in range(10):
        dims = _random_dims(sweep)
        beta2 = round(float(sweep.uniform(0.8, 0.9999)), 5)
        lr, eps = round(float(10 ** sweep.uniform(-3, -1)), 6), float(f"{10 ** sweep.uniform(-9, -4):.3g}")
        scenarios.append(Scenario(
            "rmsprop.update", f"sweep-{k:02d}", f"layers {dims}, beta2 {beta2}, lr {lr}, eps {eps}",
            "any arithmetic or bookkeeping error on ordinary inputs", ("rmsprop", "sweep"),
            _rmsprop(dims=dims, lr=lr, beta2=beta2, epsilon=eps), EPSILON_BOTH))
    return scenarios


# ---------------------------------------------------------------- learning-rate decay


def _decay(**arguments):
    return lambda rng: dict(arguments)


def lr_decay_scenarios():
    inverse = [
        ("epoch-0", dict(learning_rate0=0.5, epoch_num=0, decay_rate=1.0), "epoch 0: the rate is lr0",
         "the decay applied before the first epoch, or 1 + decay_rate written as decay_rate"),
        ("course-example", dict(learning_rate0=0.5, epoch_num=2, decay_rate=1.0), "lr0 0.5, epoch 2, decay 1",
         "the formula's parentheses misplaced: lr0 / 1 + decay_rate * epoch_num"),
        ("nondefault", dict(learning_rate0=0.0371, epoch_num=7, decay_rate=0.29), "lr0 0.0371, epoch 7, decay 0.29",
         "10 + decay_rate for 1 + decay_rate, or an exponential decay instead of the inverse-time one"),
        ("decay-zero", dict(learning_rate0=0.2, epoch_num=50, decay_rate=0.0), "decay 0: the rate never changes",
         "a decay applied whatever the rate"),
        ("huge-epoch", dict(learning_rate0=0.1, epoch_num=10**9, decay_rate=0.3), "epoch 1e9: the rate near 0",
         "an overflow or a sign flip at large epoch numbers"),
        ("float-epoch", dict(learning_rate0=0.25, epoch_num=2.5, decay_rate=0.4), "a float epoch number 2.5",
         "the epoch number truncated to an integer"),
    ]
    scenarios = [Scenario("lr_decay.inverse_time", name, description, why, ("lr_decay", "inverse-time"),
                          _decay(**arguments)) for name, arguments, description, why in inverse]
    scheduled = [
        ("epoch-0", dict(learning_rate0=0.5, epoch_num=0, decay_rate=1.0, time_interval=1000),
         "epoch 0: the rate is lr0", "the decay applied before the first interval", ()),
        ("before-boundary", dict(learning_rate0=0.5, epoch_num=999, decay_rate=1.0, time_interval=1000),
         "epoch 999, interval 1000: still lr0", "round() or plain division instead of floor", ()),
        ("on-boundary", dict(learning_rate0=0.5, epoch_num=2000, decay_rate=0.3, time_interval=1000),
         "epoch 2000, interval 1000: two decays", "ceil instead of floor, or an interval counted from 1", ()),
        ("after-boundary", dict(learning_rate0=0.5, epoch_num=1001, decay_rate=0.3, time_interval=1000),
         "epoch 1001, interval 1000: one decay", "the decay applied every epoch instead of every interval", ()),
        ("nondefault-interval", dict(learning_rate0=0.3, epoch_num=749, decay_rate=0.7, time_interval=250),
         "epoch 749, interval 250: two decays, one epoch before the third", "the interval hard-coded to 1000", ()),
        ("decay-zero", dict(learning_rate0=0.2, epoch_num=5000, decay_rate=0.0, time_interval=1000),
         "decay 0: the rate never changes", "a decay applied whatever the rate", ()),
        ("huge-epoch", dict(learning_rate0=0.1, epoch_num=10**9 + 999, decay_rate=0.3, time_interval=1000),
         "epoch 1e9 + 999", "round() instead of floor, or a precision loss at large epoch numbers", ()),
        ("float-epoch", dict(learning_rate0=0.4, epoch_num=1999.5, decay_rate=0.5, time_interval=1000),
         "a float epoch number 1999.5: one decay", "round() instead of floor on a fractional epoch", ()),
        ("default-interval", dict(learning_rate0=0.5, epoch_num=2500, decay_rate=0.3, time_interval=1000),
         "schedule_lr_decay(lr0, 2500, 0.3): the default interval 1000", "a wrong default time_interval",
         ("time_interval",)),
        ("default-interval-boundary", dict(learning_rate0=0.5, epoch_num=1000, decay_rate=0.3, time_interval=1000),
         "schedule_lr_decay(lr0, 1000, 0.3): the first decay falls exactly on the default interval",
         "a default time_interval a little over 1000 (epoch 2500 cannot tell 1000 from 1001)", ("time_interval",)),
        ("interval-on-rate", dict(learning_rate0=0.6, epoch_num=300, decay_rate=0.2, time_interval=100),
         "epoch 300, interval 100: three decays", "the interval applied to the learning rate instead of the epoch",
         ()),
    ]
    scenarios += [Scenario("lr_decay.scheduled", name, description, why, ("lr_decay", "scheduled"),
                           _decay(**arguments), omitted=omitted)
                  for name, arguments, description, why, omitted in scheduled]
    return scenarios


def all_scenarios() -> list[Scenario]:
    """Every scenario of the catalogue, in a fixed order."""
    rmsprop_init = [Scenario("rmsprop.init", name, f"s for {description}",
                             "zeros of the wrong shape, a layer missed, or keys named W1 instead of dW1",
                             ("init", "shapes", "layers"), _init(dims)) for name, dims, description in INIT_SHAPES]
    return (mini_batch_scenarios() + init_scenarios() + momentum_scenarios() + adam_scenarios()
            + trajectory_scenarios() + gd_scenarios() + rmsprop_init + rmsprop_scenarios() + lr_decay_scenarios())
