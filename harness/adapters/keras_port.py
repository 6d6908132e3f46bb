"""Keras 3 (``keras.optimizers``, JAX backend) behind the course's functions.

Every update is computed by a Keras optimizer's ``apply_gradients`` on ``keras.Variable`` parameters.
This module builds the optimizer, assigns the course's state to its slot variables (and ``iterations``
for Adam), applies the gradients once and reads the variables back. Keras computes in its ``floatx``,
so each call sets ``floatx`` to the parameters' dtype (float64 for the learning-rate decays, whose
inputs are Python floats), as a Keras user computing in float64 does. Importing this module selects the
JAX backend (unless ``KERAS_BACKEND`` is set) and turns on JAX's 64-bit mode.

- momentum: ``SGD(lr, momentum=beta)`` computes ``m = beta*m - lr*g; p = p + m``: a state that holds the
  step, negated. The course's ``v`` under ``momentum.form=lr_scaled`` is ``-m`` (negation is exact).
- Adam: ``Adam(lr, beta_1, beta_2, epsilon)`` computes ``alpha = lr*sqrt(1-beta_2**t)/(1-beta_1**t)``,
  ``p -= alpha*m/(sqrt(v) + epsilon)``: ``adam.epsilon=epsilon_hat``.
- RMSprop: ``RMSprop(lr, rho=beta2, momentum=0, epsilon)`` computes ``lr*g/sqrt(v + epsilon)``:
  ``rmsprop.epsilon=inside_sqrt``.
- gradient descent: ``SGD(lr)``; learning-rate decay: ``schedules.InverseTimeDecay(lr0, decay_steps,
  decay_rate, staircase)``, as in the jax.example_libraries port. No mini-batches; the initialisers
  are the zero slot variables ``build`` creates.
- ``platform.subnormals`` is measured: XLA on the CPU flushes them to zero.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from optconform.port import XLA_FLUSHES_SUBNORMALS, check_step, declare, dtype_of, jax_subnormals, slot_names, to_numpy

os.environ.setdefault("KERAS_BACKEND", "jax")
try:
    import jax
    import keras
except ImportError as exc:  # pragma: no cover - exercised only without keras
    raise ImportError("optconform.harness.adapters.keras_port needs Keras 3 and JAX, which are not installed. "
                      "Install them with: pip install keras jax jaxlib") from exc

jax.config.update("jax_enable_x64", True)

#: What Keras computes; whether subnormals survive is this platform's answer.
OPTCONFORM_CONVENTIONS = declare({
    "momentum.form": "lr_scaled", "adam.epsilon": "epsilon_hat", "rmsprop.epsilon": "inside_sqrt",
    "platform.subnormals": jax_subnormals()})

#: Where this port's library deviates, and its source (the conformance matrix prints it beside the evidence).
OPTCONFORM_DEVIATIONS = {
    "intervals-in-float32": "keras/src/backend/common/dtypes.py, _lattice_result_type ('Force to be 32-bit dtype "
                            "when encountering 64-bit dtype') makes keras/src/backend/jax/numpy.py floor() cast a "
                            "float64 step/decay_steps to float32, so InverseTimeDecay(staircase=True) counts "
                            "intervals in float32 (keras 3.15.1)",
    "platform.subnormals=flushed": XLA_FLUSHES_SUBNORMALS,
}


@contextlib.contextmanager
def _floatx(dtype):
    """Keras's default float type set to ``dtype`` for the duration of one call."""
    before = keras.config.floatx()
    keras.config.set_floatx(np.dtype(dtype).name)
    try:
        yield
    finally:
        keras.config.set_floatx(before)


def _apply(make_optimizer, parameters: dict, grads: dict, slots: tuple[str, ...], states: tuple[dict, ...],
           signs: tuple[float, ...], iterations: int = 0) -> tuple[dict, ...]:
    """``apply_gradients`` once on the optimizer ``make_optimizer()`` builds (in the parameters' ``floatx``, so
    that its learning-rate variable has their dtype), with ``optimizer.<slot>[k]`` loaded from ``sign * state``.

    Returns ``(parameters, *states)`` read back (each slot times its sign again), in the course's keys.
    """
    pairs = slot_names(parameters)
    dtype = dtype_of(parameters[pairs[0][0]])
    with _floatx(dtype):
        optimizer = make_optimizer()
        variables = [keras.Variable(np.asarray(parameters[param], dtype=dtype), dtype=dtype.name)
                     for param, _ in pairs]
        optimizer.build(variables)
        for slot, state, sign in zip(slots, states, signs):
            for variable, (_, grad) in zip(getattr(optimizer, slot), pairs):
                variable.assign(sign * np.asarray(state[grad], dtype=dtype))
        optimizer.iterations.assign(iterations)
        optimizer.apply_gradients(zip([np.asarray(grads[grad], dtype=dtype) for _, grad in pairs], variables))
        new_parameters = {param: to_numpy(variable.value, dtype) for variable, (param, _) in zip(variables, pairs)}
        new_states = tuple({grad: to_numpy(sign * np.asarray(variable.value), dtype)
                            for variable, (_, grad) in zip(getattr(optimizer, slot), pairs)}
                           for slot, sign in zip(slots, signs))
    return (new_parameters, *new_states)


def _zero_slots(make_optimizer, parameters: dict, slots: tuple[str, ...]) -> tuple[dict, ...]:
    """The slot variables ``build`` creates, in the course's keys."""
    pairs = slot_names(parameters)
    dtype = dtype_of(parameters[pairs[0][0]])
    with _floatx(dtype):
        optimizer = make_optimizer()
        optimizer.build([keras.Variable(np.asarray(parameters[param], dtype=dtype), dtype=dtype.name)
                         for param, _ in pairs])
        return tuple({grad: to_numpy(variable.value, dtype) for variable, (_, grad) in zip(getattr(optimizer, slot),
                                                                                           pairs)}
                     for slot in slots)


def initialize_velocity(parameters):
    return _zero_slots(lambda: keras.optimizers.SGD(momentum=0.5), parameters, ("momentums",))[0]


def initialize_adam(parameters):
    return _zero_slots(keras.optimizers.Adam, parameters, ("_momentums", "_velocities"))


def initialize_rmsprop(parameters):
    return _zero_slots(keras.optimizers.RMSprop, parameters, ("_velocities",))[0]


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    if beta == 0:  # Keras keeps no momentum slot at momentum 0; its m would be 0*m - g*lr, computed as it does
        new_parameters = update_parameters_with_gd(parameters, grads, learning_rate)
        return new_parameters, {grad: to_numpy(keras.ops.multiply(np.asarray(grads[grad]), learning_rate),
                                               dtype_of(parameters[param])) for param, grad in slot_names(parameters)}
    return _apply(lambda: keras.optimizers.SGD(learning_rate=learning_rate, momentum=beta), parameters, grads,
                  ("momentums",), (v,), (-1.0,))


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    t = check_step(t)
    def make():
        return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=epsilon)

    return _apply(make, parameters, grads, ("_momentums", "_velocities"), (v, s), (1.0, 1.0), t - 1)


def update_parameters_with_gd(parameters, grads, learning_rate):
    return _apply(lambda: keras.optimizers.SGD(learning_rate=learning_rate), parameters, grads, (), (), ())[0]


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    def make():
        return keras.optimizers.RMSprop(learning_rate=learning_rate, rho=beta2, epsilon=epsilon)

    return _apply(make, parameters, grads, ("_velocities",), (s,), (1.0,))


def _decay(learning_rate0, epoch_num, decay_rate, decay_steps, staircase):
    with _floatx(np.float64):
        schedule = keras.optimizers.schedules.InverseTimeDecay(learning_rate0, decay_steps, decay_rate, staircase)
        return float(np.asarray(schedule(epoch_num)))


def update_lr(learning_rate0, epoch_num, decay_rate):
    return _decay(learning_rate0, epoch_num, decay_rate, 1, False)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    return _decay(learning_rate0, epoch_num, decay_rate, time_interval, True)
