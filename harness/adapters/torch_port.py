"""PyTorch behind the course-signature target interface: a real port, not a re-derivation.

Every update is computed by ``torch.optim`` itself; this module only maps the course's
arguments and state onto the optimizer's and back.

Targets (``optconform check TARGET``):

- ``optconform.harness.adapters.torch_port`` -- the course's conventions:
  EMA momentum through ``torch.optim.SGD`` and Adam through ``torch.optim.Adam``.
- ``optconform.harness.adapters.torch_port:heavy_ball`` -- the same, but momentum is
  plain PyTorch SGD momentum (``v = beta*v + g``), declared as ``momentum.form=heavy_ball``.

The mappings (see ``docs/ports.md`` for the derivations and the differences found):

- EMA momentum ``v = beta*v + (1-beta)*g; p -= lr*v`` is
  ``SGD(momentum=beta, dampening=beta, lr=lr)`` **with the incoming ``v`` always loaded
  as ``state["momentum_buffer"]``, zeros included**. ``dampening`` alone is not enough:
  on a fresh optimizer SGD's first step sets the buffer to the raw gradient
  (``buf = g``, no ``(1-dampening)`` factor), so it would step by ``lr*g`` where the
  course steps by ``lr*(1-beta)*g``.
- heavy-ball momentum ``v = beta*v + g; p -= lr*v`` is ``SGD(momentum=beta, dampening=0)``
  with ``v`` loaded as the buffer (needed whenever ``v`` is non-zero).
- Adam at step ``t`` is ``Adam(lr, betas=(beta1, beta2), eps=epsilon)`` with
  ``exp_avg = v``, ``exp_avg_sq = s`` and ``step = t - 1`` loaded, so that its own
  increment makes it perform step ``t``. PyTorch puts ``eps`` outside the square root.

Inputs are NumPy arrays (float64 or float32); each parameter is computed in its own
dtype and returned as a fresh NumPy array of that dtype. Inputs are never changed.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from optconform.port import batch_arguments, check_step, cut_batches, declare, dtype_of, slot_names, subnormals

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "optconform.harness.adapters.torch_port needs PyTorch, which is not installed. "
        "Install the CPU build with: pip install torch==2.13.0"
    ) from exc

#: What the default target computes; whether subnormals survive is measured (PyTorch keeps them on the CPU
#: unless ``torch.set_flush_denormal(True)``).
OPTCONFORM_CONVENTIONS = declare({"platform.subnormals": subnormals(lambda a, b: (torch.from_numpy(a) * b).numpy())})



# --------------------------------------------------------------------------- helpers


def _tensor(array, dtype: np.dtype) -> torch.Tensor:
    """A fresh torch tensor (a copy: the NumPy input is never shared or changed)."""
    return torch.tensor(np.array(array, dtype=dtype, copy=True))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A fresh NumPy array owning its memory."""
    return tensor.detach().cpu().numpy().copy()


def _leaf_parameters(parameters: dict, grads: dict) -> tuple[list, list]:
    """Torch leaf parameters with ``.grad`` set, in slot order, and their slots."""
    slots = slot_names(parameters)
    tensors = []
    for param, grad in slots:
        dtype = dtype_of(parameters[param])
        p = _tensor(parameters[param], dtype).requires_grad_(True)
        p.grad = _tensor(grads[grad], dtype)
        tensors.append(p)
    return tensors, slots


# --------------------------------------------------------------------------- operations


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffle the columns of X and Y with one ``torch.randperm`` permutation and cut them.

    ``torch.Generator().manual_seed(seed)`` seeds the permutation, so the order is
    PyTorch's, not NumPy's: this conforms under ``mini_batches.rng=structural`` only.
    Batches are ``mini_batch_size`` columns each, the last one holds the rest.
    """
    X, Y, size, m = batch_arguments(X, Y, mini_batch_size)
    if m == 0:
        return []
    generator = torch.Generator().manual_seed(int(seed))
    return cut_batches(X, Y, torch.randperm(m, generator=generator).numpy(), size)


def initialize_velocity(parameters):
    """Zero velocity ``v[dWl]``, ``v[dbl]`` shaped and typed like ``Wl``, ``bl``."""
    return {
        grad: _numpy(torch.zeros_like(_tensor(parameters[param], dtype_of(parameters[param]))))
        for param, grad in slot_names(parameters)
    }


def _sgd_momentum_step(parameters, grads, v, beta, learning_rate, dampening):
    """One ``torch.optim.SGD`` step with every incoming ``v`` loaded as its buffer."""
    tensors, slots = _leaf_parameters(parameters, grads)
    optimizer = torch.optim.SGD(
        tensors, lr=float(learning_rate), momentum=float(beta), dampening=float(dampening)
    )
    for p, (param, grad) in zip(tensors, slots):
        # Loaded even when v is zero: without a buffer, SGD's first step takes buf = g.
        optimizer.state[p]["momentum_buffer"] = _tensor(v[grad], p.detach().numpy().dtype)
    optimizer.step()
    new_parameters, new_v = {}, {}
    for p, (param, grad) in zip(tensors, slots):
        new_parameters[param] = _numpy(p)
        if float(beta) == 0.0:
            # With momentum=0 SGD keeps no buffer at all (it neither reads nor writes
            # state["momentum_buffer"]) and steps by lr*g: the velocity is then g itself,
            # (1-0)*g in either form, which is exactly the gradient SGD stepped with.
            new_v[grad] = _numpy(p.grad)
        else:
            new_v[grad] = _numpy(optimizer.state[p]["momentum_buffer"])
    return new_parameters, new_v


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """EMA momentum ``v = beta*v + (1-beta)*g; p -= lr*v`` via ``SGD(momentum=beta, dampening=beta)``."""
    return _sgd_momentum_step(parameters, grads, v, beta, learning_rate, dampening=beta)


def initialize_adam(parameters):
    """Zero ``(v, s)``: what ``torch.optim.Adam`` initialises ``exp_avg``/``exp_avg_sq`` to."""
    return initialize_velocity(parameters), initialize_velocity(parameters)


def update_parameters_with_adam(
    parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
):
    """Adam step ``t`` via ``torch.optim.Adam`` with ``exp_avg=v``, ``exp_avg_sq=s``, ``step=t-1``.

    Returns ``(parameters, v, s)``. PyTorch computes
    ``p -= (lr/(1-beta1**t)) * v / (sqrt(s)/sqrt(1-beta2**t) + eps)``: epsilon outside.
    """
    t = check_step(t)
    tensors, slots = _leaf_parameters(parameters, grads)
    optimizer = torch.optim.Adam(
        tensors, lr=float(learning_rate), betas=(float(beta1), float(beta2)), eps=float(epsilon)
    )
    # torch keeps the step as a CPU float32 scalar; float64 once t-1 exceeds 2**24.
    step_dtype = torch.float32 if t - 1 <= 2**24 else torch.float64
    for p, (param, grad) in zip(tensors, slots):
        dtype = p.detach().numpy().dtype
        state = optimizer.state[p]
        state["step"] = torch.tensor(float(t - 1), dtype=step_dtype)
        state["exp_avg"] = _tensor(v[grad], dtype)
        state["exp_avg_sq"] = _tensor(s[grad], dtype)
    optimizer.step()
    new_parameters, new_v, new_s = {}, {}, {}
    for p, (param, grad) in zip(tensors, slots):
        state = optimizer.state[p]
        if float(state["step"]) != t:  # pragma: no cover - a torch behaviour change
            raise RuntimeError(f"torch.optim.Adam performed step {float(state['step'])}, not {t}")
        new_parameters[param] = _numpy(p)
        new_v[grad] = _numpy(state["exp_avg"])
        new_s[grad] = _numpy(state["exp_avg_sq"])
    return new_parameters, new_v, new_s


#: The seed notebook's names for the Adam functions.
initialize_parameters_Adam = initialize_adam
update_parameters_Adam = update_parameters_with_adam


def update_parameters_with_gd(parameters, grads, learning_rate):
    """Gradient descent ``p -= lr*g`` via ``torch.optim.SGD(lr)`` (no momentum)."""
    tensors, slots = _leaf_parameters(parameters, grads)
    torch.optim.SGD(tensors, lr=float(learning_rate)).step()
    return {param: _numpy(p) for p, (param, grad) in zip(tensors, slots)}


def initialize_rmsprop(parameters):
    """Zero ``s``: what ``torch.optim.RMSprop`` initialises ``square_avg`` to."""
    return initialize_velocity(parameters)


def update_parameters_with_rmsprop(parameters, grads, s, beta2, learning_rate, epsilon=1e-8):
    """RMSprop via ``torch.optim.RMSprop(lr, alpha=beta2, eps)`` with ``square_avg=s``.

    PyTorch computes ``s = alpha*s + (1-alpha)*g**2; p -= lr * g / (sqrt(s) + eps)``: epsilon outside.
    """
    tensors, slots = _leaf_parameters(parameters, grads)
    optimizer = torch.optim.RMSprop(tensors, lr=float(learning_rate), alpha=float(beta2), eps=float(epsilon))
    for p, (param, grad) in zip(tensors, slots):
        state = optimizer.state[p]
        state["step"] = torch.tensor(0.0)
        state["square_avg"] = _tensor(s[grad], p.detach().numpy().dtype)
    optimizer.step()
    new_parameters, new_s = {}, {}
    for p, (param, grad) in zip(tensors, slots):
        new_parameters[param] = _numpy(p)
        new_s[grad] = _numpy(optimizer.state[p]["square_avg"])
    return new_parameters, new_s


def update_lr(learning_rate0, epoch_num, decay_rate):
    """Inverse-time decay ``lr0 / (1 + decay_rate*epoch)``: plain arithmetic, the factor one hands ``LambdaLR``."""
    return float(learning_rate0) / (1.0 + float(decay_rate) * epoch_num)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """Decay at fixed intervals ``lr0 / (1 + decay_rate*floor(epoch/interval))``, the factor a ``LambdaLR`` takes."""
    return float(learning_rate0) / (1.0 + float(decay_rate) * math.floor(epoch_num / time_interval))


def _heavy_ball_momentum(parameters, grads, v, beta, learning_rate):
    """PyTorch's own momentum ``v = beta*v + g; p -= lr*v``: ``SGD(momentum=beta)``."""
    return _sgd_momentum_step(parameters, grads, v, beta, learning_rate, dampening=0.0)


#: Target ``optconform.harness.adapters.torch_port:heavy_ball``: plain SGD momentum.
heavy_ball = SimpleNamespace(
    __doc__="torch_port with plain torch.optim.SGD momentum (v = beta*v + g); momentum.form=heavy_ball.",
    OPTCONFORM_CONVENTIONS={**OPTCONFORM_CONVENTIONS, "momentum.form": "heavy_ball"},
    random_mini_batches=random_mini_batches,
    initialize_velocity=initialize_velocity,
    update_parameters_with_momentum=_heavy_ball_momentum,
    initialize_adam=initialize_adam,
    update_parameters_with_adam=update_parameters_with_adam,
    initialize_parameters_Adam=initialize_adam,
    update_parameters_Adam=update_parameters_with_adam,
    update_parameters_with_gd=update_parameters_with_gd,
    initialize_rmsprop=initialize_rmsprop,
    update_parameters_with_rmsprop=update_parameters_with_rmsprop,
    update_lr=update_lr,
    schedule_lr_decay=schedule_lr_decay,
)

__all__ = [
    "OPTCONFORM_CONVENTIONS",
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
