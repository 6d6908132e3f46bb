"""Golden values are exact, and the tolerances admit every reasonable order of evaluation.

Each variant below is a correct Adam or momentum step written the way real code
writes it (the course's order, the parenthesised quotient, Keras' folded
constants, ``**0.5``, ``np.power``, in-place updates, 80-bit ``longdouble``
rounded once). Every one must pass every update case, and every trajectory step
teacher-forced, at float64 and (where the case runs there) at float32. A float64
implementation that rounds its gradients to float32 must still fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from optconform.harness.checking.compare import compare_case_outputs
from optconform.reference import exact, ops
from optconform.vectors import load_suite

CASES = load_suite()
UPDATE_CASES = [c for c in CASES if c.op in ("adam.update", "momentum.update")]
TRAJECTORY_CASES = [c for c in CASES if c.op in ("adam.trajectory", "momentum.trajectory")]


def _slots(parameters):
    return ops.slot_names(parameters)


# ---------------------------------------------------------------- Adam, written several ways


def adam_variant(form):
    """A correct Adam step evaluated in ``form``'s order, in the dtype of its arrays."""
    def step(parameters, grads, v, s, t, lr, beta1, beta2, eps, placement):
        parameters = {k: a.copy() for k, a in parameters.items()}
        v = {k: a.copy() for k, a in v.items()}
        s = {k: a.copy() for k, a in s.items()}
        c1, c2 = 1 - beta1**t, 1 - beta2**t
        if form == "np.power":
            c1, c2 = 1 - np.power(beta1, t), 1 - np.power(beta2, t)
        for param, grad in _slots(parameters):
            g = grads[grad]
            v[grad] = beta1 * v[grad] + (1 - beta1) * g
            square = np.power(g, 2) if form == "np.power" else g * g if form == "g*g" else np.square(g)
            s[grad] = beta2 * s[grad] + (1 - beta2) * square
            v_hat, s_hat = v[grad] / c1, s[grad] / c2
            root = s_hat**0.5 if form == "**0.5" else np.sqrt(s_hat)
            eps_used = eps / math.sqrt(c2) if placement == "epsilon_hat" else eps
            den = np.sqrt(s_hat + eps) if placement == "inside_sqrt" else root + eps_used
            if form in ("lr*v_hat/den", "np.power", "g*g", "**0.5"):
                parameters[param] = parameters[param] - lr * v_hat / den
            elif form == "lr*(v_hat/den)":
                parameters[param] = parameters[param] - lr * (v_hat / den)
            elif form == "v_hat/den*lr":
                parameters[param] = parameters[param] - v_hat / den * lr
            elif form == "in-place":
                parameters[param] -= lr * v_hat / den
            elif form == "lr/c1 folded":
                folded = (np.sqrt(s[grad] / c2 + eps) if placement == "inside_sqrt"
                          else np.sqrt(s[grad]) / math.sqrt(c2) + eps_used)
                parameters[param] = parameters[param] - (lr / c1) * v[grad] / folded
            elif form == "keras":
                lr_t = lr * math.sqrt(c2) / c1
                keras_eps = eps if placement == "epsilon_hat" else eps * math.sqrt(c2)  # Keras's own is the hat
                parameters[param] = parameters[param] - lr_t * v[grad] / (np.sqrt(s[grad]) + keras_eps)
            else:
                raise ValueError(form)
        return parameters, v, s

    return step


def adam_longdouble(parameters, grads, v, s, t, lr, beta1, beta2, eps, placement):
    """The course's order in 80-bit extended precision (where the platform has it), rounded once."""
    wide = np.longdouble
    widen = lambda tree: {k: a.astype(wide) for k, a in tree.items()}  # noqa: E731
    p, v1, s1 = ops.adam_update(widen(parameters), widen(grads), widen(v), widen(s), t, wide(lr), wide(beta1),
                                wide(beta2), wide(eps), placement)
    narrow = lambda tree: {k: a.astype(np.float64) for k, a in tree.items()}  # noqa: E731
    return narrow(p), narrow(v1), narrow(s1)


ADAM_FORMS = ["lr*v_hat/den", "lr*(v_hat/den)", "v_hat/den*lr", "lr/c1 folded", "keras", "**0.5", "np.power",
              "g*g", "in-place"]
ADAM_VARIANTS = {form: adam_variant(form) for form in ADAM_FORMS} | {"longdouble": adam_longdouble}


# ---------------------------------------------------------------- momentum, written several ways


def momentum_variant(form):
    def step(parameters, grads, v, beta, lr, momentum_form):
        parameters = {k: a.copy() for k, a in parameters.items()}
        v = {k: a.copy() for k, a in v.items()}
        gain = {"ema": 1 - beta, "heavy_ball": 1.0, "lr_scaled": lr}[momentum_form]
        rate = 1.0 if momentum_form == "lr_scaled" else lr
        for param, grad in _slots(parameters):
            g = grads[grad]
            if form == "lerp" and momentum_form == "ema":
                v[grad] = v[grad] + (1 - beta) * (g - v[grad])
            elif form == "keras" and momentum_form == "lr_scaled":  # m = -v: m = beta*m - lr*g; p = p + m
                m = beta * -v[grad] - lr * g
                parameters[param] = parameters[param] + m
                v[grad] = -m
                continue
            else:
                v[grad] = beta * v[grad] + gain * g
            if form == "in-place":
                parameters[param] -= v[grad] if momentum_form == "lr_scaled" else lr * v[grad]
            else:
                parameters[param] = parameters[param] - rate * v[grad]
        return parameters, v

    return step


MOMENTUM_VARIANTS = {form: momentum_variant(form) for form in ("course", "lerp", "in-place", "keras")}


# ---------------------------------------------------------------- running a variant on a case


def _cast(tree, dtype):
    return {k: np.asarray(a).astype(dtype) for k, a in tree.items()}


def _call(case, fn, inputs, dtype, t=None):
    conventions = case.conventions
    family = case.op.split(".")[0]
    state = {"parameters": _cast(inputs["parameters"], dtype), "grads": _cast(inputs["grads"], dtype),
             "v": _cast(inputs["v"], dtype)}
    if family == "adam":
        p, v, s = fn(state["parameters"], state["grads"], state["v"], _cast(inputs["s"], dtype),
                     inputs["t"] if t is None else t, case.full_inputs["learning_rate"], case.full_inputs["beta1"],
                     case.full_inputs["beta2"], case.full_inputs["epsilon"], conventions["adam.epsilon"])
        return {"parameters": p, "v": v, "s": s}
    p, v = fn(state["parameters"], state["grads"], state["v"], case.full_inputs["beta"], case.full_inputs["learning_rate"],
              conventions["momentum.form"])
    return {"parameters": p, "v": v}


def _failures(case, fn, dtype):
    """Where ``fn`` misses the case at ``dtype`` (teacher-forced for a trajectory): a list of messages."""
    with np.errstate(all="ignore"):
        if case.op.endswith(".update"):
            comparison = compare_case_outputs(case, _call(case, fn, case.full_inputs, dtype), dtype)
            return [] if comparison.ok else [comparison.message()]
        steps, scales, problems = case.expected["steps"], case.tolerance["scale"]["steps"], []
        zeros = {k: np.zeros_like(a) for k, a in steps[0]["v"].items()}
        state = {"parameters": case.full_inputs["parameters"], "v": zeros, "s": zeros}
        for index, grads in enumerate(case.full_inputs["grads"]):
            got = _call(case, fn, {**state, "grads": grads}, dtype, t=index + 1)
            comparison = compare_case_outputs(case, got, dtype, steps[index], scales[index])
            if not comparison.ok:
                problems.append(f"step {index + 1}: {comparison.message()}")
            state = {**state, **steps[index]}
        return problems


def _variants(case):
    if not case.op.startswith("adam"):
        return MOMENTUM_VARIANTS
    if case.conventions["adam.epsilon"] == "inside_sqrt":  # Keras' folded epsilon is the outside formula only
        return {name: fn for name, fn in ADAM_VARIANTS.items() if name != "keras"}
    return ADAM_VARIANTS


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", UPDATE_CASES + TRAJECTORY_CASES, ids=lambda c: c.id)
def test_every_reasonable_order_conforms(case, dtype):
    if not case.runs_at(dtype):
        pytest.skip(case.float64_only)
    missed = {}
    for name, fn in _variants(case).items():
        if name == "longdouble" and (dtype == "float32" or np.finfo(np.longdouble).nmant <= 52):
            continue  # extended precision is a float64 claim, and only where the platform has it
        problems = _failures(case, fn, dtype)
        if problems:
            missed[name] = problems[0]
    assert not missed, missed


def test_the_subnormal_case_that_broke_on_evaluation_order_now_passes_both_orders():
    """The exact value, not one order's: ``lr*v_hat`` underflows, and both orders conform."""
    case = next(c for c in CASES if c.id == "adam.update/outside_sqrt/subnormal")
    first, second = (_call(case, ADAM_VARIANTS[form], case.full_inputs, "float64")
                     for form in ("lr*v_hat/den", "lr*(v_hat/den)"))
    assert not np.array_equal(first["parameters"]["W1"], second["parameters"]["W1"])  # the orders differ ...
    assert not _failures(case, ADAM_VARIANTS["lr*v_hat/den"], "float64")              # ... and both pass
    assert not _failures(case, ADAM_VARIANTS["lr*(v_hat/den)"], "float64")
    exact_w1 = exact.adam_update(*(case.full_inputs[k] for k in ("parameters", "grads", "v", "s", "t", "learning_rate",
                                                            "beta1", "beta2", "epsilon")))[0]["W1"]
    assert np.array_equal(case.expected["parameters"]["W1"], exact_w1)


def test_float64_code_that_rounds_its_gradients_to_float32_still_fails():
    def rounding(fn):
        def step(parameters, grads, *rest):
            return fn(parameters, {k: a.astype(np.float32).astype(np.float64) for k, a in grads.items()}, *rest)
        return step

    exact_in_float32 = lambda case: all(  # noqa: E731
        np.array_equal(a.astype(np.float32).astype(np.float64), a) for a in case.full_inputs["grads"].values())
    checked = [c for c in UPDATE_CASES if not exact_in_float32(c)]
    assert len(checked) > 50
    passing = [c.id for c in checked
               if not _failures(c, rounding(_variants(c)["in-place"]), "float64")]
    assert not passing, passing


def test_reference_ops_agree_with_the_exact_values_within_tolerance():
    """``reference/ops.py`` (one float64 order) is the readable spec; it stays within tolerance of the exact values."""
    for case in UPDATE_CASES + TRAJECTORY_CASES:
        spec = (lambda *a: ops.adam_update(*a)) if case.op.startswith("adam") else (
            lambda p, g, v, beta, lr, form: ops.momentum_update(p, g, v, beta, lr, form))
        assert not _failures(case, spec, "float64"), case.id


def test_exact_rounding_is_correct_on_known_values():
    third = exact.exact(1) / 3
    assert exact.rounded(third) == 1 / 3
    assert exact.rounded(exact.sqrt(exact.exact(2))) == math.sqrt(2)
    assert exact.rounded(exact.exact(2.0**-1074) / 2) == 0.0          # a tie rounds to even: 0
    assert exact.rounded(exact.exact(2.0**-1074) * 3 / 2) == 2.0**-1073  # 1.5 units: to even, 2 units
    assert exact.rounded(exact.power(exact.exact(0.5), 5000)) == 0.0
    assert exact.power(exact.exact(0.9999), 20000) == pytest.approx(0.9999**20000, rel=1e-12)
