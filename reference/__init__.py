"""The canonical reference, with the course's function names: itself a valid target.

``import optconform.reference as r; r.update_parameters_with_adam(...)`` computes
exactly what the golden vectors hold. The operations themselves, with the formulas
in their docstrings, are in :mod:`optconform.reference.ops`.
"""

from __future__ import annotations

from . import ops
from .conventions import CONVENTIONS, DEFAULTS

#: What this target computes: the default of every family, and the NumPy legacy RNG.
OPTCONFORM_CONVENTIONS = {**DEFAULTS, "mini_batches.rng": "numpy_legacy", "mini_batches.y_rows": "multi_row"}


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffled mini-batches ``[(X_batch, Y_batch), ...]``; see :func:`ops.mini_batches`."""
    return ops.mini_batches(X, Y, mini_batch_size, seed)


def initialize_velocity(parameters):
    """Zero velocity ``v`` for every parameter; see :func:`ops.momentum_init`."""
    return ops.momentum_init(parameters)


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """One EMA momentum step, returning ``(parameters, v)``; see :func:`ops.momentum_update`."""
    return ops.momentum_update(parameters, grads, v, beta, learning_rate)


def initialize_adam(parameters):
    """Zero first and second moments ``(v, s)``; see :func:`ops.adam_init`."""
    return ops.adam_init(parameters)


def update_parameters_with_adam(
    parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
):
    """One Adam step, epsilon outside the root, returning ``(parameters, v, s)``; see :func:`ops.adam_update`."""
    return ops.adam_update(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon)


#: The seed notebook's names for the Adam functions.
initialize_parameters_Adam = initialize_adam
update_parameters_Adam = update_parameters_with_adam

__all__ = [
    "CONVENTIONS",
    "OPTCONFORM_CONVENTIONS",
    "initialize_adam",
    "initialize_parameters_Adam",
    "initialize_velocity",
    "ops",
    "random_mini_batches",
    "update_parameters_Adam",
    "update_parameters_with_adam",
    "update_parameters_with_momentum",
]
