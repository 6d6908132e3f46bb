"""numpy-ml (``numpy_ml.neural_nets``) behind the course's functions: a pure-NumPy library, ported.

Every update is computed by numpy-ml's own optimizer objects. This module only loads the course's state
into an optimizer's ``cache``, calls its ``update`` once per parameter, and reads the state back
(``optconform.port.per_slot`` runs the loop). ``docs/ports.md`` walks through it as the example port.

- momentum: ``SGD(lr, momentum=beta)`` computes ``update = momentum*cache + lr*g`` and returns
  ``param - update``: its state is the step itself, ``momentum.form=lr_scaled``.
- Adam: ``Adam(lr, decay1=beta1, decay2=beta2, eps)`` with ``cache = {"t": t-1, "mean": v, "var": s}``:
  ``lr * m_hat / (sqrt(v_hat) + eps)``, ``adam.epsilon=outside_sqrt``.
- RMSprop: ``RMSProp(lr, decay=beta2, eps)`` with ``cache = s``: ``lr*g / (sqrt(s) + eps)``,
  ``rmsprop.epsilon=outside_sqrt``.
- gradient descent: ``SGD(lr, momentum=0)``.
- mini-batches: ``numpy_ml.neural_nets.utils.minibatch(X.T, size)`` after ``np.random.seed(seed)``; it
  shuffles ``np.arange(m)`` with the legacy global generator, so it is ``mini_batches.rng=numpy_legacy``.
- numpy-ml has no inverse-time decay (its schedulers are constant, exponential, Noam and King), so
  ``update_lr`` and ``schedule_lr_decay`` are not implemented; the initialisers are zeros, as numpy-ml's
  lazily created caches are.

numpy-ml 0.1.2 (its last release) imports ``collections.Hashable``, which Python 3.10 removed; this module
restores that one alias (``collections.abc.Hashable``) before importing it, and changes nothing else.
"""

from __future__ import annotations

import collections
import collections.abc
import warnings

import numpy as np

from optconform.port import batch_arguments, check_step, cut_batches, declare, per_slot, zeros_like

if not hasattr(collections, "Hashable"):
    collections.Hashable = collections.abc.Hashable  # numpy-ml 0.1.2 predates Python 3.10
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy-ml warns at import that OpenAI gym is missing
        from numpy_ml.neural_nets.optimizers import SGD, Adam, RMSProp
        from numpy_ml.neural_nets.utils import minibatch
except ImportError as exc:  # pragma: no cover - exercised only without numpy-ml
    raise ImportError("optconform.harness.adapters.numpy_ml_port needs numpy-ml, which is not installed. "
                      "Install it with: pip install numpy-ml") from exc

#: What numpy-ml computes (each read from its source, and checked by the vectors).
OPTCONFORM_CONVENTIONS = declare({"momentum.form": "lr_scaled", "rmsprop.epsilon": "outside_sqrt",
                                  "mini_batches.rng": "numpy_legacy"})


def _each_parameter(step, *trees):
    """``per_slot(step, ...)``; numpy-ml's gradient-norm test (``norm(g) > inf`` when clipping is off)
    overflows harmlessly at float32 for large gradients, and its warning is not the port's output."""
    with np.errstate(over="ignore"):
        return per_slot(step, *trees)


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """``minibatch(X.T, size)``'s index batches, after ``np.random.seed(seed)``."""
    X, Y, size, m = batch_arguments(X, Y, mini_batch_size)
    np.random.seed(seed)
    batches, _ = minibatch(X.T, batchsize=size, shuffle=True)  # numpy-ml: one example per row
    return cut_batches(X, Y, np.concatenate([np.asarray(ix, dtype=np.intp) for ix in batches]), size)


def initialize_velocity(parameters):
    return zeros_like(parameters)


def initialize_adam(parameters):
    return zeros_like(parameters), zeros_like(parameters)


def initialize_rmsprop(parameters):
    return zeros_like(parameters)


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    def step(name, p, g, velocity):
        optimizer = SGD(lr=learning_rate, momentum=beta)
        optimizer.cache[name] = velocity
        return optimizer.update(p, g, name), optimizer.cache[name]

    return _each_parameter(step, parameters, grads, v)


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    t = check_step(t)

    def step(name, p, g, mean, var):
        optimizer = Adam(lr=learning_rate, decay1=beta1, decay2=beta2, eps=epsilon)
        optimizer.cache[name] = {"t": t - 1, "mean": mean, "var": var}
        new_p = optimizer.update(p, g, name)
        return new_p, optimizer.cache[name]["mean"], optimizer.cache[name]["var"]

    return _each_parameter(step, parameters, grads, v, s)


def update_parameters_with_gd(parameters, grads, learning_rate):
    def step(name, p, g):
        return (SGD(lr=learning_rate, momentum=0.0).update(p, g, name),)

    return _each_parameter(step, parameters, grads)[0]


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    def step(name, p, g, square):
        optimizer = RMSProp(lr=learning_rate, decay=beta2, eps=epsilon)
        optimizer.cache[name] = square
        return optimizer.update(p, g, name), optimizer.cache[name]

    return _each_parameter(step, parameters, grads, s)
