"""Tolerances, derived by first-order forward error analysis of each formula.

For every output element the analysis gives an *error scale* ``S``: a bound on
``|computed - exact| / u`` for an implementation that receives its inputs rounded
to a floating-point format with unit roundoff ``u`` and evaluates the formula in
that format in any reasonable order. A case then allows, in dtype ``d``,

    |got - expected| <= rtol[d] * S + atol[d],    rtol[d] = SAFETY * u[d]

elementwise. ``S`` is built from the magnitudes of the *terms* that make each
result, not from the result, so ``beta*v + (1-beta)*g`` cancelling to nearly 0
still gets the room its rounding needs. Each step below counts one ``u`` per
rounding of a term, and adds the condition of each scalar against the rounding of
its inputs, e.g. ``1-beta`` computed from a rounded ``beta`` is off by
``beta/(1-beta)`` u relative to itself, and ``1-beta**t`` by ``t*beta**t/(1-beta**t)``.

``SAFETY`` and the analysis are checked in ``tests/test_tolerances.py`` against
the measured error of float32 evaluation (NumPy, and the PyTorch-style
rearrangement) over many random inputs.
"""

from __future__ import annotations

import math

import numpy as np

from .ops import slot_names

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}
#: Factor between the first-order bound and the tolerance (room for second-order terms).
SAFETY = 4.0
#: Absolute floor: a few units in the last place of the smallest subnormal.
ATOL = {"float64": 16 * 2.0**-1074, "float32": 16 * 2.0**-149}
#: Where float32 values stop being normal numbers.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def rtol(dtype: str) -> float:
    """The relative tolerance of ``dtype`` (multiplies the error scale)."""
    return SAFETY * UNIT_ROUNDOFF[dtype]


def _safe_ratio(numerator, denominator):
    """``numerator / denominator`` elementwise, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.broadcast_to(np.asarray(denominator, dtype=np.float64), numerator.shape)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _power_condition(beta: float, t: int) -> float:
    """Relative error, in u, of ``1 - beta**t`` from rounding beta and evaluating the power."""
    power = math.pow(beta, t)
    return 3.0 + (t * power / (1.0 - power) if power < 1.0 else 0.0)


def input_scale(tree: dict) -> dict:
    """The error scale of inputs rounded once to the working format: ``|x|``."""
    return {key: np.abs(np.asarray(value, dtype=np.float64)) for key, value in tree.items()}


def momentum_scale(inputs: dict, outputs: dict, form: str, err: dict | None = None) -> tuple[dict, dict]:
    """Error scales ``(S_parameters, S_v)`` of one momentum step.

    ``v1 = beta*v0 + a*g`` (``a = 1-beta`` for ema, 1 for heavy_ball):
    ``S_v = 3|v0| + err(v0) + 4|a*g| + beta*|g|`` (the last term only for ema, from
    the rounding of beta inside ``1-beta``; ``3|v0|`` rather than ``|beta*v0|``
    admits the ``v + (1-beta)*(g - v)`` rearrangement).
    ``p1 = p0 - lr*v1``: ``S_p = 2|p0| + err(p0) + 3*lr*|v1| + lr*S_v``.
    lr_scaled (``v1 = beta*v0 + lr*g``, ``p1 = p0 - v1``): ``a*g`` is ``lr*g``, a product of two rounded inputs,
    and ``S_p = 2|p0| + err(p0) + 2|v1| + S_v``.

    ``err`` holds the error scales carried in with ``parameters`` and ``v`` (for a
    trajectory); by default they are the inputs' own rounding.
    """
    beta, lr = inputs["beta"], inputs["learning_rate"]
    err = err or {"parameters": input_scale(inputs["parameters"]), "v": input_scale(inputs["v"])}
    scale_p, scale_v = {}, {}
    for param, grad in slot_names(inputs["parameters"]):
        g, v0, p0 = (np.abs(inputs[k][n]) for k, n in (("grads", grad), ("v", grad), ("parameters", param)))
        gain = {"ema": 1.0 - beta, "heavy_ball": 1.0, "lr_scaled": abs(lr)}[form]
        scale_v[grad] = 3 * v0 + err["v"][grad] + 4 * gain * g + (beta * g if form == "ema" else 0.0)
        v1 = np.abs(outputs["v"][grad])
        if form == "lr_scaled":
            scale_p[param] = 2 * p0 + err["parameters"][param] + 2 * v1 + scale_v[grad]
        else:
            scale_p[param] = 2 * p0 + err["parameters"][param] + 3 * lr * v1 + lr * scale_v[grad]
    return scale_p, scale_v


def adam_scale(inputs: dict, outputs: dict, epsilon_placement: str, err: dict | None = None):
    """Error scales ``(S_parameters, S_v, S_s)`` of one Adam step.

    With ``c1 = 1-beta1**t``, ``c2 = 1-beta2**t`` and their relative errors
    ``k1, k2`` (see ``_power_condition``):

    - ``S_v = 3|v0| + err(v0) + 4(1-beta1)|g| + beta1|g|``
    - ``S_s = 3 s0 + err(s0) + 5(1-beta2) g**2 + beta2 g**2``
    - ``err(vh) = (S_v + |v1|(k1+1)) / c1``;  ``err(sh) = (S_s + s1(k2+1)) / c2``
    - outside: ``r = sqrt(sh)``, ``err(r) = err(sh)/(2r) + r``, ``den = r + eps``,
      ``err(den) = err(r) + eps + den``;
      inside: ``q = sh + eps``, ``den = sqrt(q)``, ``err(den) = (err(sh) + eps + q)/(2 den) + den``;
      epsilon hat: as outside with ``eps/sqrt(c2)`` for ``eps``, off by ``(k2/2 + 2)`` u relative to itself
    - ``U = lr*vh/den``: ``err(U) = lr*err(vh)/den + |U|(err(den)/den + 3)``
    - ``S_p = 2|p0| + err(p0) + 2|U| + err(U)``
    """
    lr, b1, b2, eps, t = (inputs[k] for k in ("learning_rate", "beta1", "beta2", "epsilon", "t"))
    err = err or {k: input_scale(inputs[k]) for k in ("parameters", "v", "s")}
    c1, c2 = 1.0 - math.pow(b1, t), 1.0 - math.pow(b2, t)
    k1, k2 = _power_condition(b1, t), _power_condition(b2, t)
    scale_p, scale_v, scale_s = {}, {}, {}
    with np.errstate(all="ignore"):
        for param, grad in slot_names(inputs["parameters"]):
            g, v0, s0, p0 = (
                np.abs(np.asarray(inputs[k][n], dtype=np.float64))
                for k, n in (("grads", grad), ("v", grad), ("s", grad), ("parameters", param))
            )
            v1, s1 = np.abs(outputs["v"][grad]), np.abs(outputs["s"][grad])
            scale_v[grad] = 3 * v0 + err["v"][grad] + 4 * (1 - b1) * g + b1 * g
            scale_s[grad] = 3 * s0 + err["s"][grad] + 5 * (1 - b2) * g * g + b2 * g * g
            err_vh = (scale_v[grad] + v1 * (k1 + 1)) / c1
            sh = s1 / c2
            err_sh = (scale_s[grad] + s1 * (k2 + 1)) / c2
            if epsilon_placement != "inside_sqrt":
                hat = epsilon_placement == "epsilon_hat"
                eps_used = eps / math.sqrt(c2) if hat else eps
                r = np.sqrt(sh)
                den = r + eps_used
                err_den = _safe_ratio(err_sh, 2 * r) + r + eps_used * ((k2 / 2 + 2) if hat else 1) + den
            else:
                q = sh + eps
                den = np.sqrt(q)
                err_den = _safe_ratio(err_sh + eps + q, 2 * den) + den
            update = _safe_ratio(lr * v1 / c1, den)
            err_update = _safe_ratio(lr * err_vh, den) + update * (_safe_ratio(err_den, den) + 3)
            scale_p[param] = 2 * p0 + err["parameters"][param] + 2 * update + err_update
    return scale_p, scale_v, scale_s


def with_underflow(scales: tuple[dict, ...], underflow: tuple[dict, ...]) -> tuple[dict, ...]:
    """Each error scale plus the absolute error of rounding into float64's subnormal range, in units of its u.

    ``underflow`` comes from :mod:`.exact`; it is negligible (below 1e-300) except
    where a subnormal intermediate is magnified, as ``lr*v_hat`` is by a tiny
    denominator. A case run at float32 has every intermediate normal in float32
    (``float32_obstacle``), so no rounding there underflows.
    """
    u = UNIT_ROUNDOFF["float64"]
    return tuple({key: scale[key] + underflow_tree[key] / u for key in scale}
                 for scale, underflow_tree in zip(scales, underflow))


def gd_scale(inputs: dict) -> dict:
    """Error scale of ``p1 = p0 - lr*g``: ``S_p = 2|p0| + 3 lr|g|`` (inputs rounded, one product, one difference)."""
    lr = inputs["learning_rate"]
    return {param: 2 * np.abs(inputs["parameters"][param]) + 3 * abs(lr) * np.abs(inputs["grads"][grad])
            for param, grad in slot_names(inputs["parameters"])}


def rmsprop_scale(inputs: dict, outputs: dict, epsilon_placement: str, err: dict | None = None):
    """Error scales ``(S_parameters, S_s)`` of one RMSprop step.

    RMSprop is Adam with ``v = g`` (``beta1 = 0``) and no bias correction, so its
    scales are :func:`adam_scale`'s for those inputs (``t`` so large that both
    corrections are 1), which bound every term of the RMSprop formula.
    """
    grads = inputs["grads"]
    zeros = {key: np.zeros_like(np.asarray(value, dtype=np.float64)) for key, value in grads.items()}
    as_adam = {**inputs, "v": zeros, "beta1": 0.0, "t": 10**9}
    scale_p, _, scale_s = adam_scale(as_adam, {**outputs, "v": grads}, epsilon_placement, err and {
        "parameters": err["parameters"], "v": zeros, "s": err["s"]})
    return scale_p, scale_s


def lr_decay_scale(learning_rate: float) -> float:
    """Error scale of a decayed learning rate ``lr0 / (1 + d*k)``: inputs rounded, a product, a sum and a
    quotient: ``6|lr|`` (``k`` is the epoch or a floor of it, an exact integer in every reasonable order)."""
    return 6.0 * abs(learning_rate)


def float32_obstacle(named_values: dict) -> str | None:
    """Why float32 cannot carry a case, or None.

    ``named_values`` maps a readable name to an array of the inputs, intermediates
    or outputs of the case; float32 can carry them when every non-zero magnitude
    is a normal float32 number.
    """
    for name, value in named_values.items():
        magnitude = np.abs(np.asarray(value, dtype=np.float64))
        nonzero = magnitude[magnitude > 0]
        if nonzero.size == 0:
            continue
        if not np.all(np.isfinite(nonzero)) or nonzero.max() > FLOAT32_MAX:
            return f"{name} reaches {nonzero.max():.3g}, beyond float32's largest value {FLOAT32_MAX:.3g}"
        if nonzero.min() < FLOAT32_TINY:
            return f"{name} holds {nonzero.min():.3g}, below float32's smallest normal {FLOAT32_TINY:.3g}"
    return None
