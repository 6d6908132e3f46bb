"""Scenarios of the state initialisations (``initialize_velocity``, ``initialize_adam``, RMSprop's)."""

from __future__ import annotations

from .scenario import Scenario, network

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


def init_state(dims):
    return lambda rng: {"parameters": network(rng, dims)}


def init_scenarios():
    scenarios = []
    for op, what in (("momentum.init", "v"), ("adam.init", "v and s")):
        for name, dims, description in INIT_SHAPES:
            scenarios.append(Scenario(
                op, name, f"{what} for {description}",
                "zeros of the wrong shape (transposed, (n,) for (n, 1)), a layer missed, "
                "keys named W1 instead of dW1, or values copied from the parameters",
                ("init", "shapes", "layers"), init_state(dims)))
    return scenarios
