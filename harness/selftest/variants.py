"""Correct implementations written the ways real code writes them: each must conform.

The reference at float32; course-style code that updates ``parameters`` in place,
builds keys with ``str(l)`` and loops over ``L = len(parameters) // 2``; rearranged
algebra (``**0.5``, the parenthesised quotient, the lerp form of the EMA,
``beta**t``); and the seed notebook's function names. A tolerance too tight for
one of them, or a check too strict about style, makes selftest fail.
"""

from __future__ import annotations

import math
import types

import numpy as np

from optconform import reference


def _in_place_momentum(parameters, grads, v, beta, learning_rate):
    L = len(parameters) // 2
    for l in range(1, L + 1):  # noqa: E741 - the course's name
        for name in ("W", "b"):
            key, grad = name + str(l), "d" + name + str(l)
            v[grad] = beta * v[grad] + (1 - beta) * grads[grad]
            parameters[key] -= learning_rate * v[grad]
    return parameters, v


def _in_place_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8):
    L = len(parameters) // 2
    v_corrected, s_corrected = {}, {}
    for l in range(1, L + 1):  # noqa: E741
        for name in ("W", "b"):
            key, grad = name + str(l), "d" + name + str(l)
            v[grad] = beta1 * v[grad] + (1 - beta1) * grads[grad]
            v_corrected[grad] = v[grad] / (1 - beta1**t)
            s[grad] = beta2 * s[grad] + (1 - beta2) * np.power(grads[grad], 2)
            s_corrected[grad] = s[grad] / (1 - beta2**t)
            parameters[key] -= learning_rate * v_corrected[grad] / (np.sqrt(s_corrected[grad]) + epsilon)
    return parameters, v, s


def _rearranged_momentum(parameters, grads, v, beta, learning_rate):
    new_v = {k: a + (1 - beta) * (grads[k] - a) for k, a in v.items()}  # lerp: v + (1-beta)(g - v)
    return {k: p - learning_rate * new_v["d" + k] for k, p in parameters.items()}, new_v


def _rearranged_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8):
    new_v = {k: beta1 * a + (1 - beta1) * grads[k] for k, a in v.items()}
    new_s = {k: beta2 * a + (1 - beta2) * (grads[k] * grads[k]) for k, a in s.items()}
    c1, c2 = 1 - math.pow(beta1, t), 1 - math.pow(beta2, t)
    new_parameters = {k: p - learning_rate * ((new_v["d" + k] / c1) / ((new_s["d" + k] / c2) ** 0.5 + epsilon))
                      for k, p in parameters.items()}
    return new_parameters, new_v, new_s


def _rearranged_scheduled(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    return learning_rate0 * (1 / (1 + decay_rate * (epoch_num // time_interval)))


def _course_mini_batches(X, Y, mini_batch_size=64, seed=0):
    np.random.seed(seed)
    m = X.shape[1]
    permutation = list(np.random.permutation(m))
    shuffled_X, shuffled_Y = X[:, permutation], Y[:, permutation].reshape((Y.shape[0], m))
    batches = []
    for k in range(math.floor(m / mini_batch_size)):
        start = k * mini_batch_size
        batches.append((shuffled_X[:, start:start + mini_batch_size], shuffled_Y[:, start:start + mini_batch_size]))
    if m % mini_batch_size != 0:
        tail = math.floor(m / mini_batch_size) * mini_batch_size
        batches.append((shuffled_X[:, tail:], shuffled_Y[:, tail:]))
    return batches


def _namespace(**functions) -> types.SimpleNamespace:
    conventions = {**reference.OPTCONFORM_CONVENTIONS}
    return types.SimpleNamespace(OPTCONFORM_CONVENTIONS=conventions, **functions)


def _reference_functions() -> dict:
    return {name: getattr(reference, name) for name in reference.__all__ if callable(getattr(reference, name))}


def correct_variants() -> dict[str, tuple[object, str]]:
    """``{name: (namespace, dtype)}``: correct targets, each of which must conform."""
    base = _reference_functions()
    seed_names = {k: f for k, f in base.items() if k not in ("initialize_adam", "update_parameters_with_adam")}
    return {
        "reference at float32": (_namespace(**base), "float32"),
        "course style, in place": (_namespace(**{**base, "random_mini_batches": _course_mini_batches,
                                                 "update_parameters_with_momentum": _in_place_momentum,
                                                 "update_parameters_with_adam": _in_place_adam}), "float64"),
        "course style, in place, float32": (_namespace(**{**base, "update_parameters_with_momentum": _in_place_momentum,
                                                          "update_parameters_with_adam": _in_place_adam}), "float32"),
        "rearranged algebra": (_namespace(**{**base, "update_parameters_with_momentum": _rearranged_momentum,
                                             "update_parameters_with_adam": _rearranged_adam,
                                             "schedule_lr_decay": _rearranged_scheduled}), "float64"),
        "seed notebook names": (_namespace(**seed_names), "float64"),
    }
