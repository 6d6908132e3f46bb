"""``jax.example_libraries.optimizers`` behind the course's functions: JAX's own reference optimizers.

Every update is computed by the library's ``(init_fn, update_fn, params_fn)`` triples, on a pytree keyed
by parameter name. The course's state is loaded with the library's own ``pack_optimizer_state`` (a
``JoinPoint`` per parameter holding ``(x, *state)``) and read back with ``unpack_optimizer_state``.
Importing this module turns on JAX's 64-bit mode, so float64 inputs are computed in float64.

- momentum: ``optimizers.momentum(lr, mass=beta)``: ``velocity = mass*velocity + g; x -= lr*velocity``,
  ``momentum.form=heavy_ball``.
- Adam: ``optimizers.adam(lr, b1, b2, eps)`` at step index ``i = t - 1``: ``x -= lr*mhat/(sqrt(vhat) + eps)``,
  ``adam.epsilon=outside_sqrt``.
- RMSprop: ``optimizers.rmsprop(lr, gamma=beta2, eps)``: ``x -= lr*g/sqrt(avg_sq_grad + eps)``,
  ``rmsprop.epsilon=inside_sqrt``: epsilon inside the root here, outside it in Adam.
- gradient descent: ``optimizers.sgd(lr)``.
- learning-rate decay: ``optimizers.inverse_time_decay(lr0, decay_steps, decay_rate, staircase)``, with
  ``decay_steps = 1`` for ``update_lr`` and ``decay_steps = time_interval, staircase=True`` for
  ``schedule_lr_decay``.
- the initialisers are the library's ``init_fn``; it has no mini-batches.
- ``platform.subnormals`` is measured, not assumed: XLA on the CPU flushes them to zero.
"""

from __future__ import annotations

import numpy as np

from optconform.port import XLA_FLUSHES_SUBNORMALS, check_step, declare, dtype_of, jax_subnormals, slot_names, to_numpy

try:
    import jax
    import jax.numpy as jnp
    from jax.example_libraries import optimizers
except ImportError as exc:  # pragma: no cover - exercised only without jax
    raise ImportError("optconform.harness.adapters.jax_example_port needs JAX, which is not installed. "
                      "Install it with: pip install jax jaxlib") from exc

jax.config.update("jax_enable_x64", True)

#: What jax.example_libraries computes; whether subnormals survive is this platform's answer.
OPTCONFORM_CONVENTIONS = declare({
    "momentum.form": "heavy_ball", "adam.epsilon": "outside_sqrt", "rmsprop.epsilon": "inside_sqrt",
    "platform.subnormals": jax_subnormals()})

#: Where this port's library deviates, and its source (the conformance matrix prints it beside the evidence).
OPTCONFORM_DEVIATIONS = {
    "platform.subnormals=flushed": XLA_FLUSHES_SUBNORMALS,
}


def _tree(source: dict, parameters: dict, key_index: int) -> dict:
    """A pytree keyed by parameter name, each array in its parameter's dtype (``key_index`` 1: keyed ``dW1``...)."""
    return {param: jnp.asarray(np.asarray(source[(param, grad)[key_index]], dtype=dtype_of(parameters[param])))
            for param, grad in slot_names(parameters)}


def _step(optimizer, i: int, parameters: dict, grads: dict, *states: dict) -> tuple[dict, ...]:
    """One ``update_fn(i, grads, state)`` from the course's state; returns ``(parameters, *states)``."""
    x = _tree(parameters, parameters, 0)
    loaded = [_tree(state, parameters, 1) for state in states]
    if loaded:
        marked = {name: optimizers.JoinPoint((x[name], *(state[name] for state in loaded))) for name in x}
    else:  # sgd's state is the parameter itself
        marked = {name: optimizers.JoinPoint(x[name]) for name in x}
    new = optimizers.unpack_optimizer_state(
        optimizer.update_fn(i, _tree(grads, parameters, 1), optimizers.pack_optimizer_state(marked)))
    results = tuple({} for _ in range(1 + len(states)))
    for param, grad in slot_names(parameters):
        values = new[param].subtree if loaded else (new[param].subtree,)
        for index, value in enumerate(values):
            results[index][param if index == 0 else grad] = to_numpy(value, dtype_of(parameters[param]))
    return results


def _initial_state(optimizer, parameters: dict) -> list[dict]:
    """The state ``init_fn`` gives, keyed as the course keys it (``dW1``...)."""
    unpacked = optimizers.unpack_optimizer_state(optimizer.init_fn(_tree(parameters, parameters, 0)))
    states = []
    for index in range(1, len(unpacked[next(iter(unpacked))].subtree)):
        states.append({grad: to_numpy(unpacked[param].subtree[index], dtype_of(parameters[param]))
                       for param, grad in slot_names(parameters)})
    return states


def initialize_velocity(parameters):
    return _initial_state(optimizers.momentum(0.0, 0.0), parameters)[0]


def initialize_adam(parameters):
    return tuple(_initial_state(optimizers.adam(0.0), parameters))


def initialize_rmsprop(parameters):
    return _initial_state(optimizers.rmsprop(0.0), parameters)[0]


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    return _step(optimizers.momentum(learning_rate, mass=beta), 0, parameters, grads, v)


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    t = check_step(t)
    return _step(optimizers.adam(learning_rate, b1=beta1, b2=beta2, eps=epsilon), t - 1, parameters, grads, v, s)


def update_parameters_with_gd(parameters, grads, learning_rate):
    return _step(optimizers.sgd(learning_rate), 0, parameters, grads)[0]


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    return _step(optimizers.rmsprop(learning_rate, gamma=beta2, eps=epsilon), 0, parameters, grads, s)


def update_lr(learning_rate0, epoch_num, decay_rate):
    return float(optimizers.inverse_time_decay(learning_rate0, 1, decay_rate)(epoch_num))


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    return float(optimizers.inverse_time_decay(learning_rate0, time_interval, decay_rate, staircase=True)(epoch_num))
