"""The optimizer operations of the course assignment, and RMSprop, one small pure function each.

This module is the specification. Every function takes NumPy arrays (or dicts of
them), never changes its inputs, and returns fresh arrays in the inputs' dtype.
Layers are numbered from 1: ``parameters`` holds ``W1, b1, ..., WL, bL`` and
``grads``, ``v`` and ``s`` hold ``dW1, db1, ..., dWL, dbL``.

Scalars (learning rate, betas, epsilon and the bias corrections) are Python
floats, so that an array in float32 stays float32 (NEP 50).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from .conventions import ADAM_EPSILON, MOMENTUM_FORM, RMSPROP_EPSILON


def layer_count(parameters: dict) -> int:
    """``L``, the number of layers: ``parameters`` holds ``W1, b1, ..., WL, bL``."""
    return len(parameters) // 2


def slot_names(parameters: dict) -> list[tuple[str, str]]:
    """Pairs ``(parameter key, gradient key)``: ``("W1", "dW1"), ("b1", "db1"), ...``."""
    pairs = []
    for layer in range(1, layer_count(parameters) + 1):
        pairs.append((f"W{layer}", f"dW{layer}"))
        pairs.append((f"b{layer}", f"db{layer}"))
    return pairs


def permutation(m: int, seed: int) -> np.ndarray:
    """The column order of ``mini_batches``: ``np.random.seed(seed); np.random.permutation(m)``.

    A private ``RandomState`` draws exactly what the legacy global generator
    draws after ``np.random.seed(seed)``, without touching global state.
    """
    return np.random.RandomState(seed).permutation(m)


def mini_batches(X: np.ndarray, Y: np.ndarray, mini_batch_size: int = 64, seed: int = 0) -> list:
    """Shuffle the columns of X and Y with one permutation, then cut them into batches.

    With ``m`` examples (columns), ``perm = permutation(m, seed)``,
    ``Xs = X[:, perm]`` and ``Ys = Y[:, perm]``: batch ``k`` for
    ``k < floor(m / size)`` is ``(Xs[:, k*size:(k+1)*size], Ys[:, k*size:(k+1)*size])``
    and, when ``m % size != 0``, one last batch holds the remaining
    ``m % size`` columns.
    """
    m = X.shape[1]
    perm = permutation(m, seed)
    shuffled_X, shuffled_Y = X[:, perm], Y[:, perm]
    starts = range(0, m, mini_batch_size)
    return [
        (shuffled_X[:, k : k + mini_batch_size].copy(), shuffled_Y[:, k : k + mini_batch_size].copy())
        for k in starts
    ]


def momentum_init(parameters: dict) -> dict:
    """``v[dWl] = zeros_like(Wl)`` and ``v[dbl] = zeros_like(bl)`` for every layer l."""
    return {grad: np.zeros_like(parameters[param]) for param, grad in slot_names(parameters)}


def momentum_update(
    parameters: dict, grads: dict, v: dict, beta: float, learning_rate: float, form: str = "ema"
) -> tuple[dict, dict]:
    """One momentum step for every parameter ``p`` with gradient ``g``.

    ``form="ema"`` (the course's):   ``v = beta*v + (1-beta)*g;  p = p - lr*v``
    ``form="heavy_ball"`` (PyTorch): ``v = beta*v + g;           p = p - lr*v``
    ``form="lr_scaled"`` (numpy-ml): ``v = beta*v + lr*g;        p = p - v``  (``v`` holds the step itself)
    """
    if form not in MOMENTUM_FORM:
        raise ValueError(f"momentum.form must be one of {MOMENTUM_FORM}, not {form!r}")
    new_parameters, new_v = {}, {}
    for param, grad in slot_names(parameters):
        if form == "lr_scaled":
            new_v[grad] = beta * v[grad] + learning_rate * grads[grad]
            new_parameters[param] = parameters[param] - new_v[grad]
            continue
        gain = (1.0 - beta) if form == "ema" else 1.0
        new_v[grad] = beta * v[grad] + gain * grads[grad]
        new_parameters[param] = parameters[param] - learning_rate * new_v[grad]
    return new_parameters, new_v


def adam_init(parameters: dict) -> tuple[dict, dict]:
    """``v`` and ``s``, both zeros shaped like the parameters (keys ``dW1, db1, ...``)."""
    return momentum_init(parameters), momentum_init(parameters)


def adam_update(
    parameters: dict,
    grads: dict,
    v: dict,
    s: dict,
    t: int,
    learning_rate: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    epsilon_placement: str = "outside_sqrt",
) -> tuple[dict, dict, dict]:
    """One Adam step (Kingma & Ba, Algorithm 1) at step ``t`` (counted from 1).

    ``v  = beta1*v + (1-beta1)*g``
    ``s  = beta2*s + (1-beta2)*g**2``
    ``vh = v / (1 - beta1**t)``;  ``sh = s / (1 - beta2**t)``
    ``p  = p - lr * vh / (sqrt(sh) + eps)``   (``epsilon_placement="outside_sqrt"``)
    ``p  = p - lr * vh / sqrt(sh + eps)``     (``epsilon_placement="inside_sqrt"``, the seed's)
    ``p  = p - lr * sqrt(1-beta2**t)/(1-beta1**t) * v / (sqrt(s) + eps)``
    ``   = p - lr * vh / (sqrt(sh) + eps/sqrt(1-beta2**t))``   (``epsilon_placement="epsilon_hat"``: Kingma & Ba
    section 2's "epsilon hat", Keras's and TensorFlow's Adam)
    """
    if epsilon_placement not in ADAM_EPSILON:
        raise ValueError(f"adam.epsilon must be one of {ADAM_EPSILON}, not {epsilon_placement!r}")
    correction1 = 1.0 - math.pow(beta1, t)
    correction2 = 1.0 - math.pow(beta2, t)
    new_parameters, new_v, new_s = {}, {}, {}
    for param, grad in slot_names(parameters):
        g = grads[grad]
        new_v[grad] = beta1 * v[grad] + (1.0 - beta1) * g
        new_s[grad] = beta2 * s[grad] + (1.0 - beta2) * np.square(g)
        v_hat = new_v[grad] / correction1
        s_hat = new_s[grad] / correction2
        if epsilon_placement == "outside_sqrt":
            denominator = np.sqrt(s_hat) + epsilon
        elif epsilon_placement == "epsilon_hat":
            denominator = np.sqrt(s_hat) + epsilon / math.sqrt(correction2)
        else:
            denominator = np.sqrt(s_hat + epsilon)
        new_parameters[param] = parameters[param] - learning_rate * v_hat / denominator
    return new_parameters, new_v, new_s


def gd_update(parameters: dict, grads: dict, learning_rate: float) -> dict:
    """One step of (batch or mini-batch) gradient descent: ``p = p - lr*g`` for every parameter."""
    return {param: parameters[param] - learning_rate * grads[grad] for param, grad in slot_names(parameters)}


def rmsprop_init(parameters: dict) -> dict:
    """``s``, zeros shaped like the parameters (keys ``dW1, db1, ...``)."""
    return momentum_init(parameters)


def rmsprop_update(
    parameters: dict, grads: dict, s: dict, beta2: float, learning_rate: float, epsilon: float = 1e-8,
    epsilon_placement: str = "outside_sqrt",
) -> tuple[dict, dict]:
    """One RMSprop step (Hinton's lecture 6e), no bias correction; PyTorch's ``alpha`` is ``beta2``.

    ``s = beta2*s + (1-beta2)*g**2``
    ``p = p - lr * g / (sqrt(s) + eps)``   (``epsilon_placement="outside_sqrt"``, PyTorch's)
    ``p = p - lr * g / sqrt(s + eps)``     (``epsilon_placement="inside_sqrt"``)
    """
    if epsilon_placement not in RMSPROP_EPSILON:
        raise ValueError(f"rmsprop.epsilon must be one of {RMSPROP_EPSILON}, not {epsilon_placement!r}")
    new_parameters, new_s = {}, {}
    for param, grad in slot_names(parameters):
        g = grads[grad]
        new_s[grad] = beta2 * s[grad] + (1.0 - beta2) * np.square(g)
        if epsilon_placement == "outside_sqrt":
            denominator = np.sqrt(new_s[grad]) + epsilon
        else:
            denominator = np.sqrt(new_s[grad] + epsilon)
        new_parameters[param] = parameters[param] - learning_rate * g / denominator
    return new_parameters, new_s


def lr_inverse_time(learning_rate0: float, epoch_num, decay_rate: float) -> float:
    """Learning-rate decay, once per epoch: ``lr = lr0 / (1 + decay_rate * epoch_num)``."""
    return learning_rate0 / (1.0 + decay_rate * epoch_num)


def lr_scheduled(learning_rate0: float, epoch_num, decay_rate: float, time_interval: int = 1000) -> float:
    """Learning-rate decay at fixed intervals: ``lr = lr0 / (1 + decay_rate * floor(epoch_num / time_interval))``."""
    return learning_rate0 / (1.0 + decay_rate * math.floor(epoch_num / time_interval))


def call_defaults(op: str) -> dict:
    """The default arguments of the course function behind ``op``, as this module's signatures give them.

    A case may leave these out of its call (``random_mini_batches(X, Y)``) so that a
    wrong default is caught; ``adam.update`` and ``mini_batches`` have them.
    """
    function = {"mini_batches": mini_batches, "adam.update": adam_update, "rmsprop.update": rmsprop_update,
                "lr_decay.scheduled": lr_scheduled}.get(op)
    if function is None:
        return {}
    return {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()
            if parameter.default is not parameter.empty and name != "epsilon_placement"}
