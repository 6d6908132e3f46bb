"""What a scenario is, and the inputs its builders draw."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: The course network's layer sizes, and a deep one for the order of the layers.
COURSE_DIMS = [3, 4, 1]
DEEP_DIMS = [3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 1]
#: The conventions a case of each family is generated under, both ways.
MOMENTUM_FORMS = ({"momentum.form": "ema"}, {"momentum.form": "heavy_ball"}, {"momentum.form": "lr_scaled"})
ADAM_EPSILONS = ({"adam.epsilon": "outside_sqrt"}, {"adam.epsilon": "inside_sqrt"}, {"adam.epsilon": "epsilon_hat"})
RMSPROP_EPSILONS = ({"rmsprop.epsilon": "outside_sqrt"}, {"rmsprop.epsilon": "inside_sqrt"})

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


def random_dims(sweep: np.random.Generator) -> list[int]:
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


def backprop_order(rng, dims):
    """Gradients keyed as back-propagation produces them: the last layer first."""
    grads = network(rng, dims, 1.0, "d")
    layers = range(len(dims) - 1, 0, -1)
    return {key: grads[key] for layer in layers for key in (f"dW{layer}", f"db{layer}")}
