"""What every framework adapter shares: the course's layout and argument rules.

The parameter layout (``W1, b1, ...`` with gradients ``dW1, db1, ...``) is the
reference's own (:func:`optconform.reference.ops.slot_names`); the rest are the
checks a port makes before handing arguments to its framework.
"""

from __future__ import annotations

import numpy as np

from optconform.reference.ops import slot_names

#: What a framework adapter computes by default: every family's default, its own RNG, labels of any height.
STRUCTURAL_CONVENTIONS = {"adam.epsilon": "outside_sqrt", "momentum.form": "ema", "mini_batches.rng": "structural",
                          "mini_batches.y_rows": "multi_row"}

_FLOAT_DTYPES = (np.float32, np.float64)

__all__ = ["STRUCTURAL_CONVENTIONS", "batch_arguments", "check_step", "dtype_of", "slot_names"]


def dtype_of(array) -> np.dtype:
    """The dtype a parameter is computed in: its own if float32/float64, else float64."""
    dtype = np.asarray(array).dtype
    return dtype if dtype.type in _FLOAT_DTYPES else np.dtype(np.float64)


def check_step(t) -> int:
    """``t`` as an int, refusing what is not a step count from 1."""
    if isinstance(t, bool) or int(t) != t or int(t) < 1:
        raise ValueError(f"t counts Adam steps from 1; got {t!r}")
    return int(t)


def batch_arguments(X, Y, mini_batch_size) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(X, Y, size, m)`` checked: a size of at least 1, as many columns in Y as in X."""
    X, Y = np.asarray(X), np.asarray(Y)
    size = int(mini_batch_size)
    if size < 1:
        raise ValueError(f"mini_batch_size must be at least 1, not {mini_batch_size!r}")
    m = X.shape[1]
    if Y.shape[1] != m:
        raise ValueError(f"X has {m} columns but Y has {Y.shape[1]}")
    return X, Y, size, m
