"""Writing a Python port: the adapter contract, and the helpers every port shares.

A *port* is any Python module (or object) that ``optconform check`` can point at::

    optconform check my_port                  # a module on sys.path
    optconform check my_port:keras_like       # an object in it, e.g. a SimpleNamespace

It offers the course's functions, under the course's names, for the ops it implements;
an op it leaves out is reported as "not implemented", never as a failure:

- ``random_mini_batches(X, Y, mini_batch_size=64, seed=0) -> [(X_k, Y_k), ...]``
- ``initialize_velocity(parameters) -> v``
- ``update_parameters_with_momentum(parameters, grads, v, beta, learning_rate) -> (parameters, v)``
- ``initialize_adam(parameters) -> (v, s)``
- ``update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
  epsilon=1e-8) -> (parameters, v, s)``
- ``update_parameters_with_gd(parameters, grads, learning_rate) -> parameters``
- ``initialize_rmsprop(parameters) -> s``
- ``update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8) -> (parameters, s)``
- ``update_lr(learning_rate0, epoch_num, decay_rate) -> learning_rate``
- ``schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000) -> learning_rate``

- ``parameters`` holds ``W1, b1, ..., WL, bL``; ``grads``, ``v`` and ``s`` hold ``dW1, db1, ...``
  (:func:`slot_names` pairs them). Arrays arrive as NumPy float64 or float32; compute each in its
  own dtype (:func:`dtype_of`) and return fresh NumPy arrays of that dtype. Never change an input.
- ``t`` counts Adam steps from 1 (:func:`check_step`). ``X`` and ``Y`` hold one example per column.
- ``OPTCONFORM_CONVENTIONS`` declares where the port legitimately differs from the course: where
  epsilon goes, what momentum's state holds, which RNG shuffles, whether the platform flushes
  subnormal numbers (``optconform list`` prints them all; :func:`declare` checks a declaration).
  Only the cases that assume the same conventions are run.

``docs/ports.md`` walks through a port of a real library (numpy-ml) with these helpers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from optconform.reference.conventions import validate
from optconform.reference.ops import slot_names

__all__ = ["STRUCTURAL_CONVENTIONS", "XLA_FLUSHES_SUBNORMALS", "batch_arguments", "check_step", "cut_batches",
           "declare", "dtype_of", "jax_subnormals", "per_slot", "slot_names", "subnormals", "to_numpy", "zeros_like"]

#: What a framework port computes by default: every family's default, its own RNG, labels of any height.
STRUCTURAL_CONVENTIONS = {"adam.epsilon": "outside_sqrt", "momentum.form": "ema", "mini_batches.rng": "structural",
                          "mini_batches.y_rows": "multi_row"}

#: Why a JAX-based port measures ``platform.subnormals=flushed`` on the CPU (for its ``OPTCONFORM_DEVIATIONS``).
XLA_FLUSHES_SUBNORMALS = ("JAX sets the CPU's flush-to-zero mode for XLA computations, by design (jax-ml/jax#16200; "
                          "JAX's Sharp Bits, on subnormal flush-to-zero)")

_FLOAT_DTYPES = (np.float32, np.float64)


def declare(conventions: dict) -> dict:
    """``STRUCTURAL_CONVENTIONS`` with ``conventions`` on top, every name and value checked
    (a typo raises ``ValueError`` when the port is imported, not a silent default later)."""
    return dict(validate(name, value) for name, value in {**STRUCTURAL_CONVENTIONS, **conventions}.items())


def dtype_of(array) -> np.dtype:
    """The dtype a parameter is computed in: its own if float32/float64, else float64."""
    dtype = np.asarray(array).dtype
    return dtype if dtype.type in _FLOAT_DTYPES else np.dtype(np.float64)


def to_numpy(array, dtype=None) -> np.ndarray:
    """A fresh, writable NumPy array (of ``dtype`` if given) from whatever the framework returned."""
    return np.array(np.asarray(array), dtype=dtype, copy=True)


def zeros_like(parameters: dict) -> dict:
    """Zero state for every parameter, keyed like ``grads`` (``dW1, db1, ...``), in each parameter's dtype."""
    return {grad: np.zeros(np.shape(parameters[param]), dtype=dtype_of(parameters[param]))
            for param, grad in slot_names(parameters)}


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


def cut_batches(X: np.ndarray, Y: np.ndarray, order, size: int) -> list:
    """The course's batches from a column order the framework drew: ``X[:, order]`` cut into
    ``size`` columns at a time, the last batch holding the rest."""
    order = np.asarray(order)
    shuffled_X, shuffled_Y = X[:, order], Y[:, order]
    return [(to_numpy(shuffled_X[:, k:k + size]), to_numpy(shuffled_Y[:, k:k + size]))
            for k in range(0, X.shape[1], size)]


def per_slot(step: Callable, parameters: dict, grads: dict, *states: dict) -> tuple[dict, ...]:
    """Run ``step(name, p, g, *state arrays) -> (p, *state arrays)`` on every parameter, in the course's order.

    Returns ``(parameters, *states)`` as dicts keyed as the course keys them, each array a fresh
    NumPy array in its parameter's dtype, so a port writes the framework call once, for one array.
    """
    new = tuple({} for _ in range(1 + len(states)))
    for param, grad in slot_names(parameters):
        dtype = dtype_of(parameters[param])
        given = [np.array(parameters[param], dtype=dtype, copy=True), np.array(grads[grad], dtype=dtype, copy=True),
                 *(np.array(state[grad], dtype=dtype, copy=True) for state in states)]
        results = step(param, *given)
        if len(results) != len(new):
            raise RuntimeError(f"the port's step for {param} returned {len(results)} arrays, not {len(new)}")
        for index, value in enumerate(results):
            new[index][param if index == 0 else grad] = to_numpy(value, dtype)
    return new


def subnormals(multiply: Callable) -> str:
    """``"kept"`` or ``"flushed"``: what the framework's arithmetic does to a float64 subnormal number.

    ``multiply(a, b)`` must compute ``a * b`` with the framework (e.g. ``lambda a, b: jnp.asarray(a) * b``
    under ``jax.jit``); declare the result as ``platform.subnormals``.
    """
    tiny = np.float64(2.0**-1070)  # subnormal: below float64's smallest normal, 2**-1022
    return "kept" if float(np.asarray(multiply(np.array([tiny]), np.float64(1.0)))[0]) == tiny else "flushed"


def jax_subnormals() -> str:
    """:func:`subnormals` of a multiplication compiled by XLA (``jax.jit``): the answer of every JAX-based port
    (JAX itself, optax, Keras on the JAX backend). Imports JAX, which the caller has."""
    import jax

    return subnormals(jax.jit(lambda a, b: a * b))
