"""optax (JAX) behind the course-signature target interface: a real port.

Every update is computed by an optax ``GradientTransformation``; this module only maps
the course's arguments and state onto optax's state and back. Importing it turns on
JAX's 64-bit mode (``jax.config.update("jax_enable_x64", True)``) for the whole process,
so float64 inputs are computed in float64 (without it JAX silently computes in float32).

Targets (``optconform check TARGET``):

- ``optconform.harness.adapters.optax_port`` -- the course's conventions: EMA momentum
  through ``optax.sgd`` and Adam through ``optax.adam(eps=epsilon)`` (epsilon outside).
- ``optconform.harness.adapters.optax_port:eps_root`` -- Adam through
  ``optax.adam(eps=0, eps_root=epsilon)``, which computes
  ``p -= lr * vh / sqrt(sh + epsilon)`` with ``sh`` the *bias-corrected* second moment:
  exactly the seed notebook's ``adam.epsilon=inside_sqrt``.
- ``optconform.harness.adapters.optax_port:heavy_ball`` -- plain ``optax.sgd`` momentum
  (``v = beta*v + g``), declared as ``momentum.form=heavy_ball``.

The mappings (see ``docs/ports.md``):

- EMA momentum ``v = beta*v + (1-beta)*g; p -= lr*v`` is
  ``optax.chain(optax.scale(1 - beta), optax.sgd(lr, momentum=beta))`` with the
  ``TraceState.trace`` loaded from ``v``: ``optax.trace`` computes ``g' + beta*trace``,
  and feeding it ``g' = (1-beta)*g`` makes that the course's EMA. (optax's trace starts
  from zeros, so unlike PyTorch's SGD it has no special first step.)
- heavy-ball momentum is ``optax.sgd(lr, momentum=beta)`` with the trace loaded from ``v``.
- Adam at step ``t`` is ``optax.adam(lr, b1, b2, eps)`` with
  ``ScaleByAdamState(count=t-1, mu=v, nu=s)`` loaded, so that it performs step ``t``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from optconform.port import (
    XLA_FLUSHES_SUBNORMALS,
    batch_arguments,
    check_step,
    cut_batches,
    declare,
    dtype_of,
    jax_subnormals,
    slot_names,
    to_numpy,
)

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as exc:  # pragma: no cover - exercised only without jax/optax
    raise ImportError(
        "optconform.harness.adapters.optax_port needs JAX and optax, which are not installed. "
        "Install them with: pip install jax jaxlib optax"
    ) from exc

jax.config.update("jax_enable_x64", True)

#: What the default target computes; whether subnormals survive is measured (XLA on the CPU flushes them).
OPTCONFORM_CONVENTIONS = declare({"platform.subnormals": jax_subnormals()})

#: Where this port's library deviates, and its source (the conformance matrix prints it beside the evidence).
OPTCONFORM_DEVIATIONS = {
    "platform.subnormals=flushed": XLA_FLUSHES_SUBNORMALS,
}



# --------------------------------------------------------------------------- helpers


def _tree(source: dict, slots, key_index: int, parameters: dict) -> dict:
    """A JAX pytree keyed by parameter name (``W1``, ...), in each parameter's dtype.

    ``source`` is keyed like ``parameters`` (``key_index=0``) or like ``grads``, ``v``
    and ``s`` (``key_index=1``: ``dW1``, ...).
    """
    tree = {}
    for param, grad in slots:
        dtype = dtype_of(parameters[param])
        tree[param] = jnp.asarray(np.array(source[(param, grad)[key_index]], dtype=dtype, copy=True))
    return tree


def _load_state(state, state_type, **fields):
    """``state`` (a tuple of states, nested as ``optax.chain`` nests them) with the one
    ``state_type`` in it replaced by ``state_type._replace(**fields)``."""
    found = []

    def walk(node):
        if isinstance(node, state_type):
            found.append(node)
            return node._replace(**fields)
        if isinstance(node, tuple) and not hasattr(node, "_fields"):
            return tuple(walk(child) for child in node)
        return node

    new_state = walk(state)
    if len(found) != 1:  # pragma: no cover - an optax behaviour change
        raise RuntimeError(f"expected one {state_type.__name__} in the optax state, found {len(found)}")
    return new_state


def _find_state(state, state_type):
    if isinstance(state, state_type):
        return state
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        for child in state:
            hit = _find_state(child, state_type)
            if hit is not None:
                return hit
    return None


def _check_step(t) -> int:
    """``t`` checked as a step count that optax's int32 counter holds."""
    t = check_step(t)
    if t > np.iinfo(np.int32).max:
        raise ValueError(f"optax counts Adam steps in int32; t={t} does not fit")
    return int(t)


# --------------------------------------------------------------------------- operations


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffle the columns of X and Y with one ``jax.random.permutation`` and cut them.

    The order is JAX's (``jax.random.permutation(jax.random.key(seed), m)``), not
    NumPy's: this conforms under ``mini_batches.rng=structural`` only.
    """
    X, Y, size, m = batch_arguments(X, Y, mini_batch_size)
    if m == 0:
        return []
    return cut_batches(X, Y, np.asarray(jax.random.permutation(jax.random.key(int(seed)), m)), size)


def initialize_velocity(parameters):
    """Zero velocity, from ``optax.sgd(...).init``'s ``TraceState`` (keys ``dW1, db1, ...``)."""
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    trace = _find_state(optax.sgd(0.0, momentum=0.9).init(params), optax.TraceState).trace
    return {grad: to_numpy(trace[param]) for param, grad in slots}


def _momentum_step(parameters, grads, v, beta, learning_rate, gradient_scale):
    """One ``optax.sgd(lr, momentum=beta)`` step on ``gradient_scale * g``, trace = ``v``."""
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    g = _tree(grads, slots, 1, parameters)
    transform = optax.sgd(float(learning_rate), momentum=float(beta))
    if gradient_scale is not None:
        transform = optax.chain(optax.scale(float(gradient_scale)), transform)
    state = _load_state(transform.init(params), optax.TraceState, trace=_tree(v, slots, 1, parameters))
    updates, new_state = transform.update(g, state, params)
    new_params = optax.apply_updates(params, updates)
    trace = _find_state(new_state, optax.TraceState).trace
    return (
        {param: to_numpy(new_params[param]) for param, _ in slots},
        {grad: to_numpy(trace[param]) for param, grad in slots},
    )


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """EMA momentum via ``optax.chain(optax.scale(1-beta), optax.sgd(lr, momentum=beta))``."""
    return _momentum_step(parameters, grads, v, beta, learning_rate, gradient_scale=1.0 - float(beta))


def initialize_adam(parameters):
    """Zero ``(v, s)``, from ``optax.adam(...).init``'s ``ScaleByAdamState`` (mu, nu)."""
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    adam_state = _find_state(optax.adam(0.01).init(params), optax.ScaleByAdamState)
    return (
        {grad: to_numpy(adam_state.mu[param]) for param, grad in slots},
        {grad: to_numpy(adam_state.nu[param]) for param, grad in slots},
    )


def _adam_step(parameters, grads, v, s, t, learning_rate, beta1, beta2, eps, eps_root):
    t = _check_step(t)
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    g = _tree(grads, slots, 1, parameters)
    transform = optax.adam(float(learning_rate), b1=float(beta1), b2=float(beta2), eps=eps, eps_root=eps_root)
    state = _load_state(
        transform.init(params),
        optax.ScaleByAdamState,
        count=jnp.asarray(t - 1, dtype=jnp.int32),
        mu=_tree(v, slots, 1, parameters),
        nu=_tree(s, slots, 1, parameters),
    )
    updates, new_state = transform.update(g, state, params)
    new_params = optax.apply_updates(params, updates)
    adam_state = _find_state(new_state, optax.ScaleByAdamState)
    if int(adam_state.count) != t:  # pragma: no cover - an optax behaviour change
        raise RuntimeError(f"optax.adam performed step {int(adam_state.count)}, not {t}")
    return (
        {param: to_numpy(new_params[param]) for param, _ in slots},
        {grad: to_numpy(adam_state.mu[param]) for param, grad in slots},
        {grad: to_numpy(adam_state.nu[param]) for param, grad in slots},
    )


def update_parameters_with_adam(
    parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
):
    """Adam step ``t`` via ``optax.adam(lr, b1, b2, eps=epsilon)``, state (count=t-1, mu=v, nu=s).

    Returns ``(parameters, v, s)``; optax computes ``p -= lr * vh / (sqrt(sh) + eps)``.
    """
    return _adam_step(parameters, grads, v, s, t, learning_rate, beta1, beta2, float(epsilon), 0.0)


#: The seed notebook's names for the Adam functions.
initialize_parameters_Adam = initialize_adam
update_parameters_Adam = update_parameters_with_adam


def update_parameters_with_gd(parameters, grads, learning_rate):
    """Gradient descent ``p -= lr*g`` via ``optax.sgd(lr)`` (no momentum)."""
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    transform = optax.sgd(float(learning_rate))
    updates, _ = transform.update(_tree(grads, slots, 1, parameters), transform.init(params), params)
    new_params = optax.apply_updates(params, updates)
    return {param: to_numpy(new_params[param]) for param, _ in slots}


def initialize_rmsprop(parameters):
    """Zero ``s``, from ``optax.rmsprop(...).init``'s ``ScaleByRmsState`` (nu)."""
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    nu = _find_state(optax.rmsprop(0.01).init(params), optax.ScaleByRmsState).nu
    return {grad: to_numpy(nu[param]) for param, grad in slots}


def _rmsprop_step(parameters, grads, s, beta2, learning_rate, epsilon, eps_in_sqrt):
    slots = slot_names(parameters)
    params = _tree(parameters, slots, 0, parameters)
    transform = optax.rmsprop(float(learning_rate), decay=float(beta2), eps=float(epsilon), eps_in_sqrt=eps_in_sqrt)
    state = _load_state(transform.init(params), optax.ScaleByRmsState, nu=_tree(s, slots, 1, parameters))
    updates, new_state = transform.update(_tree(grads, slots, 1, parameters), state, params)
    new_params = optax.apply_updates(params, updates)
    nu = _find_state(new_state, optax.ScaleByRmsState).nu
    return ({param: to_numpy(new_params[param]) for param, _ in slots},
            {grad: to_numpy(nu[param]) for param, grad in slots})


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    """RMSprop via ``optax.rmsprop(lr, decay=beta2, eps, eps_in_sqrt=False)``: ``p -= lr*g/(sqrt(s)+eps)``.

    optax's own default, ``eps_in_sqrt=True``, divides by ``sqrt(s + eps)`` (``adam.epsilon=inside_sqrt``):
    the ``eps_root`` variant below.
    """
    return _rmsprop_step(parameters, grads, s, beta2, learning_rate, epsilon, eps_in_sqrt=False)


def _rmsprop_eps_in_sqrt(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    """optax.rmsprop's default ``eps_in_sqrt=True``: ``p -= lr * g / sqrt(s + eps)``."""
    return _rmsprop_step(parameters, grads, s, beta2, learning_rate, epsilon, eps_in_sqrt=True)


def update_lr(learning_rate0, epoch_num, decay_rate):
    """Inverse-time decay as ``optax.inverse_time_decay``-style arithmetic: ``lr0 / (1 + decay_rate*epoch)``."""
    return float(learning_rate0) / (1.0 + float(decay_rate) * epoch_num)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """Staircase inverse-time decay: ``lr0 / (1 + decay_rate*floor(epoch/interval))`` (plain arithmetic)."""
    return float(learning_rate0) / (1.0 + float(decay_rate) * math.floor(epoch_num / time_interval))


def _adam_eps_root(
    parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
):
    """Adam via ``optax.adam(lr, b1, b2, eps=0, eps_root=epsilon)``.

    optax adds ``eps_root`` to the bias-corrected ``nu_hat`` before the root:
    ``p -= lr * vh / (sqrt(sh + epsilon) + 0)``, i.e. ``adam.epsilon=inside_sqrt``.
    """
    return _adam_step(parameters, grads, v, s, t, learning_rate, beta1, beta2, 0.0, float(epsilon))


def _heavy_ball_momentum(parameters, grads, v, beta, learning_rate):
    """optax's own momentum ``v = beta*v + g; p -= lr*v``: ``optax.sgd(lr, momentum=beta)``."""
    return _momentum_step(parameters, grads, v, beta, learning_rate, gradient_scale=None)


def _variant(doc: str, conventions: dict, **functions) -> SimpleNamespace:
    base = dict(
        random_mini_batches=random_mini_batches,
        initialize_velocity=initialize_velocity,
        update_parameters_with_momentum=update_parameters_with_momentum,
        initialize_adam=initialize_adam,
        update_parameters_with_adam=update_parameters_with_adam,
        update_parameters_with_gd=update_parameters_with_gd,
        initialize_rmsprop=initialize_rmsprop,
        update_parameters_with_rmsprop=update_parameters_with_rmsprop,
        update_lr=update_lr,
        schedule_lr_decay=schedule_lr_decay,
    )
    base.update(functions)
    base["initialize_parameters_Adam"] = base["initialize_adam"]
    base["update_parameters_Adam"] = base["update_parameters_with_adam"]
    return SimpleNamespace(
        __doc__=doc, OPTCONFORM_CONVENTIONS={**OPTCONFORM_CONVENTIONS, **conventions}, **base
    )


#: Target ``optconform.harness.adapters.optax_port:eps_root``: epsilon inside the root.
eps_root = _variant(
    "optax_port with optax.adam(eps=0, eps_root=epsilon): p -= lr*vh/sqrt(sh+eps); adam.epsilon=inside_sqrt.",
    {"adam.epsilon": "inside_sqrt"},
    update_parameters_with_adam=_adam_eps_root,
    update_parameters_with_rmsprop=_rmsprop_eps_in_sqrt,
)

#: Target ``optconform.harness.adapters.optax_port:heavy_ball``: plain optax.sgd momentum.
heavy_ball = _variant(
    "optax_port with plain optax.sgd momentum (v = beta*v + g); momentum.form=heavy_ball.",
    {"momentum.form": "heavy_ball"},
    update_parameters_with_momentum=_heavy_ball_momentum,
)

__all__ = [
    "OPTCONFORM_CONVENTIONS",
    "eps_root",
    "heavy_ball",
    "initialize_adam",
    "initialize_parameters_Adam",
    "initialize_velocity",
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
