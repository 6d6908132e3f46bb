"""A buggy submission, as students write them: try `optconform check examples/buggy_submission.py`.

Two mistakes: the last, partial mini-batch is dropped, and Adam skips the bias
correction. The report names both.
"""
import math

import numpy as np


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    np.random.seed(seed)
    m = X.shape[1]
    permutation = list(np.random.permutation(m))
    shuffled_X, shuffled_Y = X[:, permutation], Y[:, permutation]
    mini_batches = []
    for k in range(math.floor(m / mini_batch_size)):  # the last, partial batch is forgotten
        mini_batches.append((shuffled_X[:, k * mini_batch_size:(k + 1) * mini_batch_size],
                             shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size]))
    return mini_batches


def initialize_velocity(parameters):
    return {"d" + key: np.zeros_like(value) for key, value in parameters.items()}


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    for key in parameters:
        v["d" + key] = beta * v["d" + key] + (1 - beta) * grads["d" + key]
        parameters[key] = parameters[key] - learning_rate * v["d" + key]
    return parameters, v


def initialize_adam(parameters):
    return initialize_velocity(parameters), initialize_velocity(parameters)


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,
                                beta1=0.9, beta2=0.999, epsilon=1e-8):
    for key in parameters:
        g = grads["d" + key]
        v["d" + key] = beta1 * v["d" + key] + (1 - beta1) * g
        s["d" + key] = beta2 * s["d" + key] + (1 - beta2) * g ** 2
        # no bias correction: v and s are used as they are
        parameters[key] = parameters[key] - learning_rate * v["d" + key] / (np.sqrt(s["d" + key]) + epsilon)
    return parameters, v, s
