"""Mistakes of plain gradient descent and RMSprop."""

from __future__ import annotations

import numpy as np

from optconform.reference import ops
from optconform.reference.ops import layer_count, slot_names

from .model import COURSE_LR, SKIP_TEXT, Mistake, in_float32
from .states import INIT_MISTAKES, init_pair


def _gd_variant(*, sign=1.0, fixed_lr=None, skip=None):
    def fn(parameters, grads, learning_rate):
        lr = learning_rate if fixed_lr is None else fixed_lr
        layers = layer_count(parameters)
        return {param: np.array(parameters[param], copy=True) if skip and skip(param, layers)
                else parameters[param] - sign * lr * grads[grad] for param, grad in slot_names(parameters)}

    return fn


def _rmsprop_variant(*, placement=None, swap=False, corrected=False, old_s=False, no_sqrt=False, keep_s=False,
                     skip=None):
    def fn(parameters, grads, s, beta2, learning_rate, epsilon=1e-8, epsilon_placement="outside_sqrt"):
        placed = placement or epsilon_placement
        layers = layer_count(parameters)
        new_parameters, new_s = {}, {}
        with np.errstate(all="ignore"):
            for param, grad in slot_names(parameters):
                if skip and skip(param, layers):
                    new_parameters[param], new_s[grad] = (np.array(parameters[param], copy=True),
                                                          np.array(s[grad], copy=True))
                    continue
                g = grads[grad]
                keep, gain = (1.0 - beta2, beta2) if swap else (beta2, 1.0 - beta2)
                s1 = keep * s[grad] + gain * np.square(g)
                used = (s[grad] if old_s else s1) / ((1.0 - beta2) if corrected else 1.0)
                if no_sqrt:
                    den = used + epsilon
                else:
                    den = np.sqrt(used) + epsilon if placed == "outside_sqrt" else np.sqrt(used + epsilon)
                new_parameters[param] = parameters[param] - learning_rate * g / den
                new_s[grad] = np.array(s[grad], copy=True) if keep_s else s1
        return new_parameters, new_s

    return fn



def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append
    # gd.update ---------------------------------------------------------------------------------
    op = "gd.update"
    add(Mistake("wrong-sign", op, "step in the wrong direction",
                "the parameters move up the gradient (p + learning_rate * g) instead of down.",
                "subtract: p = p - learning_rate * g.", _gd_variant(sign=-1.0)))
    add(Mistake("hardcoded-learning-rate", op, "learning rate hard-coded to 0.01",
                "the step uses learning_rate = 0.01 whatever learning rate it is given.",
                "use the learning_rate argument.", _gd_variant(fixed_lr=COURSE_LR)))
    for name, (skip, title, explanation, fix) in SKIP_TEXT.items():
        add(Mistake(name, op, title, explanation.replace(" (and its state)", ""), fix, _gd_variant(skip=skip)))
    add(Mistake("float32", op, "computed in float32 although float64 was declared",
                "the results agree with the reference only to float32 precision (about 7 digits).",
                "compute in float64 (no float32 casts or tensors), or check with --dtype float32.",
                in_float32(ops.gd_update), float64_declared=True))

    # rmsprop ---------------------------------------------------------------------------------
    for name, knobs, title, explanation, fix in INIT_MISTAKES:
        add(Mistake(name, "rmsprop.init", title, "s: " + explanation, fix, init_pair(**knobs)[0]))
    op = "rmsprop.update"
    add(Mistake("epsilon-inside-sqrt", op, "epsilon inside the square root",
                "you divide by sqrt(s + epsilon), but this case expects sqrt(s) + epsilon (PyTorch's RMSprop).",
                "use sqrt(s) + epsilon, or declare rmsprop.epsilon=inside_sqrt if inside is what you mean.",
                _rmsprop_variant(placement="inside_sqrt"), when=(("rmsprop.epsilon", "outside_sqrt"),)))
    add(Mistake("epsilon-outside-sqrt", op, "epsilon outside the square root",
                "you divide by sqrt(s) + epsilon, but this case expects sqrt(s + epsilon).",
                "use sqrt(s + epsilon), or declare rmsprop.epsilon=outside_sqrt (the default).",
                _rmsprop_variant(placement="outside_sqrt"), when=(("rmsprop.epsilon", "inside_sqrt"),)))
    add(Mistake("beta-swapped", op, "beta2 and 1-beta2 swapped",
                "your s is (1-beta2)*s + beta2*g**2, so the new squared gradient gets the large weight.",
                "use s = beta2*s + (1 - beta2)*g**2.", _rmsprop_variant(swap=True)))
    add(Mistake("bias-corrected", op, "a bias correction added",
                "s is divided by 1 - beta2 (Adam's correction at t = 1); RMSprop has no bias correction.",
                "step with s itself: p = p - lr * g / (sqrt(s) + epsilon).", _rmsprop_variant(corrected=True)))
    add(Mistake("old-s", op, "stepping with the old s",
                "the step divides by the s given to the call, before it is updated with g.",
                "update s first, then step: p = p - lr * g / (sqrt(s) + epsilon).", _rmsprop_variant(old_s=True)))
    add(Mistake("no-sqrt", op, "no square root",
                "the step divides by s (plus epsilon) instead of by its square root.",
                "divide by np.sqrt(s) + epsilon.", _rmsprop_variant(no_sqrt=True)))
    add(Mistake("s-not-stored", op, "s not stored",
                "the parameters step with the new s, but s comes back unchanged.",
                "assign the new s into s and return it.", _rmsprop_variant(keep_s=True)))
    for name, (skip, title, explanation, fix) in SKIP_TEXT.items():
        add(Mistake(name, op, title, explanation.replace("(and its state)", "(and its s)"), fix,
                    _rmsprop_variant(skip=skip)))

    return mistakes


#: This family's mistakes, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())
