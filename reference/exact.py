"""The golden values: each formula of :mod:`.ops` in exact arithmetic, rounded once.

``ops`` is the readable specification, evaluated in floating point in one
order; the vectors must not depend on that order. Here every input is taken as
the exact rational number its float64 holds, every ``+ - * /`` is done in
``fractions.Fraction``, and only the result is rounded, once, to float64
(``float(Fraction)`` divides two integers, which CPython rounds correctly,
subnormals included). Two operations are not rational and are computed to
``GUARD_BITS`` bits instead:

- ``sqrt(x)`` is ``isqrt`` of ``x`` scaled by a power of four, so it is exact to
  within one unit in its ``GUARD_BITS``-th bit;
- ``beta**t`` is exact for ``t <= EXACT_POWER_MAX`` and beyond that is carried by
  repeated squaring, truncated to ``GUARD_BITS`` bits at each step (a relative
  error below ``2 * t * 2**-GUARD_BITS``).

Both errors are far below float64's ``2**-53``, so the one rounding at the end
decides the result unless the exact value lies within ``2**-200`` of a rounding
boundary (a chance of about ``2**-140`` per element). The method is recorded in
the vectors' manifest as :data:`METHOD`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .conventions import ADAM_EPSILON, MOMENTUM_FORM, RMSPROP_EPSILON
from .ops import slot_names

GUARD_BITS = 256
EXACT_POWER_MAX = 4096
METHOD = (f"exact rational arithmetic (fractions.Fraction) on the float64 inputs, rounded once to float64; "
          f"sqrt by integer square root and beta**t for t > {EXACT_POWER_MAX} by truncated squaring, "
          f"both to {GUARD_BITS} bits")


def exact(x) -> Fraction:
    """The rational value a float holds (a NumPy scalar or a Python float or int)."""
    return Fraction(float(x)) if not isinstance(x, (int, Fraction)) else Fraction(x)


def rounded(x: Fraction) -> float:
    """``x`` rounded once to the nearest float64 (ties to even); overflow gives an infinity."""
    try:
        return float(x)
    except OverflowError:
        return math.copysign(math.inf, x)


def sqrt(x: Fraction) -> Fraction:
    """``sqrt(x)`` for ``x >= 0``, exact to ``GUARD_BITS`` bits (truncated)."""
    if x == 0:
        return Fraction(0)
    n, d = x.numerator, x.denominator
    product = n * d
    shift = max(0, (2 * GUARD_BITS + 4 - product.bit_length() + 1) // 2)
    return Fraction(math.isqrt(product << (2 * shift)), d << shift)


def power(beta: Fraction, t: int) -> Fraction:
    """``beta**t`` for ``0 <= beta <= 1``: exact up to ``EXACT_POWER_MAX``, else to ``GUARD_BITS`` bits."""
    if t <= EXACT_POWER_MAX:
        return beta**t
    result, base, remaining = Fraction(1), beta, t
    while remaining:
        if remaining & 1:
            result = _truncate(result * base)
        base = _truncate(base * base)
        remaining >>= 1
    return result


def _truncate(x: Fraction) -> Fraction:
    """``x`` (positive) cut to ``GUARD_BITS`` significant bits, as a dyadic fraction."""
    if x == 0:
        return x
    scale = GUARD_BITS - (x.numerator.bit_length() - x.denominator.bit_length())
    if scale >= 0:
        return Fraction((x.numerator << scale) // x.denominator, 1 << scale)
    return Fraction(x.numerator // (x.denominator << -scale) << -scale)


#: Half the spacing of float64's subnormals: the most a rounding into that range can move a value.
HALF_SUBNORMAL = Fraction(1, 2**1075)


def underflow(x: Fraction) -> Fraction:
    """The most rounding exact ``x`` to float64 can cost in absolute terms when the result is subnormal.

    Round to nearest moves a value by at most half a subnormal spacing, and a
    value below that spacing rounds to 0, losing all of itself: ``min(eta, |x|)``.
    (The relative part of every rounding is the error scale's business.)
    """
    return min(HALF_SUBNORMAL, abs(x))


def _sqrt_error(error: Fraction, root: Fraction) -> Fraction:
    """How far ``sqrt`` moves when its argument moves by ``error``: ``min(error/(2 root), sqrt(error))``."""
    by_root = error / (2 * root) if root > 0 else None
    by_sqrt = sqrt(error)
    return by_sqrt if by_root is None else min(by_root, by_sqrt)


def _array(values: list[float], like: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(np.shape(like))


def _elements(array) -> list[Fraction]:
    return [Fraction(value) for value in np.asarray(array, dtype=np.float64).ravel().tolist()]


def momentum_update(parameters: dict, grads: dict, v: dict, beta, learning_rate, form: str = "ema"):
    """``v = beta*v + a*g`` (``a = 1-beta`` for ema, 1 for heavy_ball); ``p = p - lr*v``; or, for lr_scaled,
    ``v = beta*v + lr*g``; ``p = p - v``; exact, rounded once."""
    return momentum_update_with_underflow(parameters, grads, v, beta, learning_rate, form)[0]


def momentum_update_with_underflow(parameters, grads, v, beta, learning_rate, form="ema"):
    """``((parameters, v), (underflow of parameters, underflow of v))``: the exact step, rounded once, and
    the absolute error that intermediates rounded into the subnormal range can add, in any order of
    evaluation: each of ``beta*v``, ``a*g``, ``v``, ``lr*v`` and ``p`` carries ``underflow(x)``."""
    if form not in MOMENTUM_FORM:
        raise ValueError(f"momentum.form must be one of {MOMENTUM_FORM}, not {form!r}")
    beta, lr = exact(beta), exact(learning_rate)
    gain = {"ema": 1 - beta, "heavy_ball": Fraction(1), "lr_scaled": lr}[form]
    step_rate = Fraction(1) if form == "lr_scaled" else lr
    outputs, errors = ({}, {}), ({}, {})
    for param, grad in slot_names(parameters):
        ps, vs, eps_, evs = [], [], [], []
        for p0, v0, g in zip(_elements(parameters[param]), _elements(v[grad]), _elements(grads[grad])):
            v1 = beta * v0 + gain * g
            p1 = p0 - step_rate * v1
            error_v = underflow(beta * v0) + underflow(gain * g) + underflow(v1)
            vs.append(rounded(v1))
            ps.append(rounded(p1))
            evs.append(float(error_v))
            eps_.append(float(step_rate * error_v + underflow(step_rate * v1) + underflow(p1)))
        outputs[0][param], outputs[1][grad] = _array(ps, parameters[param]), _array(vs, v[grad])
        errors[0][param], errors[1][grad] = _array(eps_, parameters[param]), _array(evs, v[grad])
    return outputs, errors


def adam_update(parameters: dict, grads: dict, v: dict, s: dict, t: int, learning_rate=0.01, beta1=0.9,
                beta2=0.999, epsilon=1e-8, epsilon_placement: str = "outside_sqrt"):
    """One Adam step as in ``ops.adam_update``, every output exact and rounded once.

    A zero denominator (epsilon 0 and s 0) gives what IEEE division gives: 0/0 is
    NaN, x/0 an infinity of x's sign.
    """
    return adam_update_with_underflow(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon,
                                      epsilon_placement)[0]


def adam_update_with_underflow(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                               epsilon=1e-8, epsilon_placement="outside_sqrt"):
    """``((parameters, v, s), (their underflow errors))``: see :func:`_adam_element`."""
    if epsilon_placement not in ADAM_EPSILON:
        raise ValueError(f"adam.epsilon must be one of {ADAM_EPSILON}, not {epsilon_placement!r}")
    b1, b2, lr, eps = exact(beta1), exact(beta2), exact(learning_rate), exact(epsilon)
    c1, c2 = 1 - power(b1, t), 1 - power(b2, t)
    root_c2 = sqrt(c2)
    outputs, errors = ({}, {}, {}), ({}, {}, {})
    for param, grad in slot_names(parameters):
        columns = zip(_elements(parameters[param]), _elements(v[grad]), _elements(s[grad]), _elements(grads[grad]))
        values = [_adam_element(p0, v0, s0, g, lr, b1, b2, eps, c1, c2, root_c2, epsilon_placement)
                  for p0, v0, s0, g in columns]
        for index, (name, like) in enumerate(((param, parameters[param]), (grad, v[grad]), (grad, s[grad]))):
            outputs[index][name] = _array([value[index] for value in values], like)
            errors[index][name] = _array([value[3 + index] for value in values], like)
    return outputs, errors


#: Inputs at least this large (or 0) cannot drive an Adam intermediate into the subnormal range,
#: so their underflow error is bounded in float arithmetic instead of exactly.
NORMAL_ENOUGH = 2.0**-400


def _adam_element(p0, v0, s0, g, lr, b1, b2, eps, c1, c2, root_c2, placement):
    """``(p1, v1, s1, underflow of p1, of v1, of s1)`` for one element, values exact and rounded once."""
    v1 = b1 * v0 + (1 - b1) * g
    s1 = b2 * s0 + (1 - b2) * g * g
    s_hat = s1 / c2
    if placement == "inside_sqrt":
        denominator = sqrt(s_hat + eps)
    else:
        denominator = sqrt(s_hat) + (eps / root_c2 if placement == "epsilon_hat" else eps)
    numerator = lr * v1 / c1
    if denominator == 0:
        p1 = rounded(p0) - (math.nan if numerator == 0 else math.copysign(math.inf, numerator))
        return p1, rounded(v1), rounded(s1), 0.0, 0.0, 0.0
    p1 = p0 - numerator / denominator
    inputs = (p0, v0, s0, g, lr, b1, b2, eps, c1, c2, root_c2)
    if all(x == 0 or abs(x) >= NORMAL_ENOUGH for x in (p0, v0, s0, g, eps)):
        errors = _adam_underflow(*(float(x) for x in inputs), placement, math.sqrt, 2.0**-1074)
    else:
        errors = _adam_underflow(*inputs, placement, sqrt, HALF_SUBNORMAL)
    return (rounded(p1), rounded(v1), rounded(s1), *(float(e) for e in errors))


def _adam_underflow(p0, v0, s0, g, lr, b1, b2, eps, c1, c2, root_c2, placement, root_of, eta):
    """The underflow errors ``(p1, v1, s1)`` of one element, in the number type of the arguments.

    Every intermediate ``x`` of the evaluation orders in use -- ``lr*v_hat/den``,
    ``lr*(v_hat/den)``, ``(lr/c1)*v/(sqrt(s)/sqrt(c2)+eps)`` and Keras'
    ``lr*sqrt(c2)/c1 * v/(sqrt(s)+eps*sqrt(c2))`` -- carries ``min(eta, |x|)``,
    propagated to the output to first order (through ``sqrt`` as
    ``min(e/(2r), sqrt(e))``, since a value rounded to 0 has no derivative).
    """
    def lost(x):
        return min(eta, abs(x))

    def through_root(error, root):
        return min(error / (2 * root), root_of(error)) if root > 0 else root_of(error)

    v1 = b1 * v0 + (1 - b1) * g
    square = g * g
    s1 = b2 * s0 + (1 - b2) * square
    v_hat, s_hat = v1 / c1, s1 / c2
    root = root_of(s_hat)
    if placement == "inside_sqrt":
        denominator = root_of(s_hat + eps)
    else:
        denominator = root + (eps / root_c2 if placement == "epsilon_hat" else eps)
    step = lr * v_hat / denominator
    error_v = lost(b1 * v0) + lost((1 - b1) * g) + lost(v1)
    error_s = lost(square) + lost((1 - b2) * square) + lost(b2 * s0) + lost(s1)
    error_v_hat = error_v / c1 + lost(v_hat)
    error_s_hat = error_s / c2 + lost(s_hat)
    if placement != "inside_sqrt":
        hat = placement == "epsilon_hat"
        plain = through_root(error_s_hat, root) + lost(root) + (lost(eps / root_c2) if hat else 0)
        root_s = root_of(s1)
        keras = (through_root(error_s, root_s) + lost(root_s) + (0 if hat else lost(eps * root_c2))) / root_c2
        error_den = max(plain, keras) + lost(denominator)
    else:
        error_den = through_root(error_s_hat + lost(s_hat + eps), denominator) + lost(denominator)
    error_step = ((lr * error_v_hat + abs(step) * error_den) / denominator
                  + lost(lr * v_hat) / denominator + lr * lost(v_hat / denominator)
                  + lost(lr * root_c2 / c1 * v1) / (denominator * root_c2) + lost(step))
    return error_step + lost(p0 - step), error_v, error_s


def gd_update(parameters: dict, grads: dict, learning_rate) -> dict:
    """``p = p - lr*g``, exact and rounded once."""
    return gd_update_with_underflow(parameters, grads, learning_rate)[0]


def gd_update_with_underflow(parameters, grads, learning_rate):
    """``(parameters, underflow of parameters)``: ``lr*g`` and ``p`` each carry ``underflow(x)``."""
    lr = exact(learning_rate)
    values, errors = {}, {}
    for param, grad in slot_names(parameters):
        ps, es = [], []
        for p0, g in zip(_elements(parameters[param]), _elements(grads[grad])):
            p1 = p0 - lr * g
            ps.append(rounded(p1))
            es.append(float(underflow(lr * g) + underflow(p1)))
        values[param], errors[param] = _array(ps, parameters[param]), _array(es, parameters[param])
    return values, errors


def rmsprop_update(parameters: dict, grads: dict, s: dict, beta2, learning_rate, epsilon=1e-8,
                   epsilon_placement: str = "outside_sqrt"):
    """One RMSprop step as in ``ops.rmsprop_update``, exact and rounded once."""
    return rmsprop_update_with_underflow(parameters, grads, s, beta2, learning_rate, epsilon, epsilon_placement)[0]


def rmsprop_update_with_underflow(parameters, grads, s, beta2, learning_rate, epsilon=1e-8,
                                  epsilon_placement="outside_sqrt"):
    """``((parameters, s), (their underflow errors))``: RMSprop is Adam with ``beta1 = 0`` and no correction,
    so each element is :func:`_adam_element` with ``v = 0``, ``beta1 = 0``, ``c1 = c2 = 1``."""
    if epsilon_placement not in RMSPROP_EPSILON:
        raise ValueError(f"rmsprop.epsilon must be one of {RMSPROP_EPSILON}, not {epsilon_placement!r}")
    b2, lr, eps, one = exact(beta2), exact(learning_rate), exact(epsilon), Fraction(1)
    outputs, errors = ({}, {}), ({}, {})
    for param, grad in slot_names(parameters):
        columns = zip(_elements(parameters[param]), _elements(s[grad]), _elements(grads[grad]))
        values = [_adam_element(p0, Fraction(0), s0, g, lr, Fraction(0), b2, eps, one, one, one, epsilon_placement)
                  for p0, s0, g in columns]
        outputs[0][param] = _array([value[0] for value in values], parameters[param])
        outputs[1][grad] = _array([value[2] for value in values], s[grad])
        errors[0][param] = _array([value[3] for value in values], parameters[param])
        errors[1][grad] = _array([value[5] for value in values], s[grad])
    return outputs, errors


def lr_inverse_time(learning_rate0, epoch_num, decay_rate) -> float:
    """``lr0 / (1 + decay_rate * epoch_num)``, exact and rounded once."""
    return rounded(exact(learning_rate0) / (1 + exact(decay_rate) * exact(epoch_num)))


def lr_scheduled(learning_rate0, epoch_num, decay_rate, time_interval=1000) -> float:
    """``lr0 / (1 + decay_rate * floor(epoch_num / time_interval))``, exact and rounded once."""
    steps = math.floor(exact(epoch_num) / exact(time_interval))
    return rounded(exact(learning_rate0) / (1 + exact(decay_rate) * steps))
