"""Scenarios of ``random_mini_batches``."""

from __future__ import annotations

import numpy as np

from .scenario import Scenario, indexed_columns

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
