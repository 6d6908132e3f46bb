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


def update_parameters_with_gd(parameters, grads, learning_rate):
    """One gradient-descent step, returning ``parameters``; see :func:`ops.gd_update`."""
    return ops.gd_update(parameters, grads, learning_rate)


def initialize_rmsprop(parameters):
    """Zero second moment ``s``; see :func:`ops.rmsprop_init`."""
    return ops.rmsprop_init(parameters)


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    """One RMSprop step, epsilon outside the root, returning ``(parameters, s)``; see :func:`ops.rmsprop_update`."""
    return ops.rmsprop_update(parameters, grads, s, beta2, learning_rate, epsilon)


def update_lr(learning_rate0, epoch_num, decay_rate):
    """The learning rate after inverse-time decay; see :func:`ops.lr_inverse_time`."""
    return ops.lr_inverse_time(learning_rate0, epoch_num, decay_rate)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """The learning rate after decay at fixed intervals; see :func:`ops.lr_scheduled`."""
    return ops.lr_scheduled(learning_rate0, epoch_num, decay_rate, time_interval)


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
    "initialize_rmsprop",
    "random_mini_batches",
    "schedule_lr_decay",
    "update_lr",
    "update_parameters_Adam",
    "update_parameters_with_adam",
    "update_parameters_with_gd",
    "update_parameters_with_momentum",
    "update_parameters_with_rmsprop",
]
