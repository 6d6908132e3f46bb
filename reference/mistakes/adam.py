"""Mistakes of ``update_parameters_with_adam``: the moments, their bias corrections, epsilon, defaults."""

from __future__ import annotations

import math

import numpy as np

from optconform.reference import ops
from optconform.reference.ops import layer_count, slot_names

from .model import (
    COURSE_BETA1,
    COURSE_BETA2,
    COURSE_EPSILON,
    COURSE_LR,
    FLUSH_TEXT,
    SKIP_TEXT,
    Mistake,
    flushing,
    in_float32,
    layer_of,
)


def _adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8,
          epsilon_placement="outside_sqrt", *, step=None, swap_moment_betas=False, corrections=None,
          square=None, denominator=None, sign=1.0, skip=None, aliased=False, keep_state=False, placement=None,
          fixed=None, v_without_beta=False, epsilon_on_step=False, amsgrad=False, weight_decay=0.0,
          nesterov=False, clip=None, s_with_beta1=False, epsilon_hat=False):
    """Adam with knobs: each knob is one way of getting it wrong (see ``ops.adam_update``)."""
    if fixed:
        learning_rate, beta1, beta2, epsilon = (fixed.get(k, given) for k, given in (
            ("learning_rate", learning_rate), ("beta1", beta1), ("beta2", beta2), ("epsilon", epsilon)))
    epsilon_placement = placement or epsilon_placement
    layers = layer_count(parameters)
    new_parameters, new_v, new_s = {}, {}, {}
    with np.errstate(all="ignore"):
        for param, grad in slot_names(parameters):
            if skip and skip(param, layers):
                new_parameters[param] = np.array(parameters[param], copy=True)
                new_v[grad], new_s[grad] = np.array(v[grad], copy=True), np.array(s[grad], copy=True)
                continue
            t_used = step(t, layer_of(param)) if step else t
            b1, b2 = (beta2, beta1) if swap_moment_betas else (beta1, beta2)
            g = np.clip(grads[grad], -clip, clip) if clip else grads[grad]
            v1 = (1.0 if v_without_beta else b1) * v[grad] + (1.0 - b1) * g
            squared = square(g, v1) if square else np.square(g)
            if s_with_beta1:
                b2 = beta1
            s1 = b2 * (v1 if aliased else s[grad]) + (1.0 - b2) * squared
            if amsgrad:
                s1 = np.maximum(s[grad], s1)
            if corrections:
                c1, c2 = corrections(beta1, beta2, t_used)
            else:
                c1, c2 = 1.0 - math.pow(beta1, t_used), 1.0 - math.pow(beta2, t_used)
            v_hat, s_hat = v1 / c1, s1 / c2
            if nesterov:
                v_hat = beta1 * v_hat + (1.0 - beta1) * g / c1
            if epsilon_on_step:
                update = learning_rate * (v_hat / np.sqrt(s_hat) + epsilon)
            else:
                if denominator:
                    den = denominator(s_hat, epsilon)
                elif epsilon_hat or epsilon_placement == "epsilon_hat":
                    # Keras: lr*sqrt(c2)/c1 * v/(sqrt(s) + eps) = lr*v_hat/(sqrt(s_hat) + eps/sqrt(c2))
                    den = np.sqrt(s_hat) + float(epsilon / np.sqrt(np.float64(c2)))
                elif epsilon_placement == "outside_sqrt":
                    den = np.sqrt(s_hat) + epsilon
                else:
                    den = np.sqrt(s_hat + epsilon)
                update = learning_rate * v_hat / den
            if weight_decay:
                update = update + learning_rate * weight_decay * parameters[param]
            new_parameters[param] = parameters[param] - sign * update
            if keep_state:
                new_v[grad], new_s[grad] = np.array(v[grad], copy=True), np.array(s[grad], copy=True)
            else:
                new_v[grad], new_s[grad] = (s1 if aliased else v1), s1
    return new_parameters, new_v, new_s


def _adam_variant(defaults=(0.01, 0.9, 0.999, 1e-8), **knobs):
    """A buggy Adam: ``_adam`` with ``knobs``; ``defaults`` are the function's own default hyperparameters.

    The knobs are kept on the function (``fn.knobs``) so that two mistakes can be
    combined into one (:func:`combined`).
    """
    lr0, beta1_0, beta2_0, epsilon0 = defaults

    def fn(parameters, grads, v, s, t, learning_rate=lr0, beta1=beta1_0, beta2=beta2_0, epsilon=epsilon0,
           epsilon_placement="outside_sqrt"):
        return _adam(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon, epsilon_placement, **knobs)

    fn.knobs = knobs
    return fn


def _adam_hardcoded(**fixed):
    return _adam_variant(fixed=fixed)


def _adam_placement(placement):
    return _adam_variant(placement=placement)



def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append
    # adam.update -------------------------------------------------------------------------------
    op = "adam.update"
    add(Mistake("no-bias-correction", op, "no bias correction",
                "the update uses v and s directly instead of v/(1-beta1**t) and s/(1-beta2**t).",
                "divide v by (1 - beta1**t) and s by (1 - beta2**t) before the step.",
                _adam_variant(corrections=lambda b1, b2, t: (1.0, 1.0))))
    add(Mistake("only-first-correction", op, "only the first bias correction",
                "v is divided by (1 - beta1**t) but s is used without dividing by (1 - beta2**t).",
                "also divide s by (1 - beta2**t).",
                _adam_variant(corrections=lambda b1, b2, t: (1.0 - math.pow(b1, t), 1.0))))
    add(Mistake("only-second-correction", op, "only the second bias correction",
                "s is divided by (1 - beta2**t) but v is used without dividing by (1 - beta1**t).",
                "also divide v by (1 - beta1**t).",
                _adam_variant(corrections=lambda b1, b2, t: (1.0, 1.0 - math.pow(b2, t)))))
    add(Mistake("t-plus-one", op, "t off by one (t + 1)",
                "the bias corrections use t + 1 instead of the t given, as if t were incremented before use.",
                "use t as given; the caller counts steps from 1.", _adam_variant(step=lambda t, layer: t + 1)))
    add(Mistake("t-minus-one", op, "t off by one (t - 1)",
                "the bias corrections use t - 1 instead of the t given, as if steps were counted from 0.",
                "use t as given; the caller counts steps from 1.", _adam_variant(step=lambda t, layer: t - 1)))
    add(Mistake("t-plus-layer", op, "t plus the layer number",
                "layer l's corrections use t + l, as if t were incremented inside the loop over layers.",
                "use the same t for every layer; never change t inside the loop.",
                _adam_variant(step=lambda t, layer: t + layer)))
    add(Mistake("t-plus-layer-index", op, "t plus the 0-based layer index",
                "layer l's corrections use t + l - 1, so layer 1 is right and every later layer is off.",
                "use the same t for every layer; never change t inside the loop.",
                _adam_variant(step=lambda t, layer: t + layer - 1)))
    add(Mistake("private-step-counter", op, "a private step counter instead of the given t",
                "the corrections use a step count of your own that starts at 1 instead of the t argument.",
                "use the t argument the caller passes; do not keep or reset a counter of your own.",
                _adam_variant(step=lambda t, layer: 1)))
    add(Mistake("epsilon-inside-sqrt", op, "epsilon inside the square root",
                "you divide by sqrt(s_hat + epsilon), but this case expects sqrt(s_hat) + epsilon "
                "(Kingma and Ba, PyTorch, the course).",
                "use sqrt(s_hat) + epsilon, or declare adam.epsilon=inside_sqrt if inside is what you mean.",
                _adam_placement("inside_sqrt"), when=(("adam.epsilon", "outside_sqrt"),)))
    add(Mistake("epsilon-outside-sqrt", op, "epsilon outside the square root",
                "you divide by sqrt(s_hat) + epsilon, but this case expects sqrt(s_hat + epsilon) "
                "(the seed notebook's form).",
                "use sqrt(s_hat + epsilon), or declare adam.epsilon=outside_sqrt (the default).",
                _adam_placement("outside_sqrt"), when=(("adam.epsilon", "inside_sqrt"),)))
    add(Mistake("epsilon-dropped", op, "epsilon dropped",
                "the step divides by sqrt(s_hat) with no epsilon at all, which also divides by zero when s is 0.",
                "add epsilon to the denominator.", _adam_variant(denominator=lambda sh, eps: np.sqrt(sh))))
    add(Mistake("betas-swapped", op, "beta1 and beta2 swapped in the moments",
                "v is averaged with beta2 and s with beta1.",
                "v = beta1*v + (1-beta1)*g and s = beta2*s + (1-beta2)*g**2.",
                _adam_variant(swap_moment_betas=True)))
    add(Mistake("corrections-swapped", op, "bias corrections swapped",
                "v is divided by (1 - beta2**t) and s by (1 - beta1**t).",
                "v_hat = v/(1 - beta1**t) and s_hat = s/(1 - beta2**t).",
                _adam_variant(corrections=lambda b1, b2, t: (1.0 - math.pow(b2, t), 1.0 - math.pow(b1, t)))))
    add(Mistake("beta1-in-second-correction", op, "beta1 in the second bias correction",
                "s is divided by (1 - beta1**t) instead of (1 - beta2**t).",
                "s_hat = s/(1 - beta2**t); beta1 belongs to v alone.",
                _adam_variant(corrections=lambda b1, b2, t: (1.0 - math.pow(b1, t), 1.0 - math.pow(b1, t)))))
    add(Mistake("s-decayed-with-beta1", op, "s averaged with beta1",
                "s = beta1*s + (1-beta1)*g**2: the second moment decays with the first moment's beta.",
                "s = beta2*s + (1-beta2)*g**2.", _adam_variant(s_with_beta1=True)))
    add(Mistake("epsilon-hat", op, "Keras's epsilon hat",
                "epsilon is added before the second bias correction, as Keras and TensorFlow do (lr_t = "
                "lr*sqrt(1-beta2**t)/(1-beta1**t), then v/(sqrt(s) + epsilon)), so it acts as "
                "epsilon/sqrt(1-beta2**t) against sqrt(s_hat).",
                "divide by sqrt(s_hat) + epsilon, with s_hat = s/(1 - beta2**t).",
                _adam_variant(epsilon_hat=True), when=(("adam.epsilon", "outside_sqrt"),)))
    add(Mistake("epsilon-without-hat", op, "epsilon without its hat",
                "you divide by sqrt(s_hat) + epsilon, but this case expects Keras's epsilon hat: "
                "lr*sqrt(1-beta2**t)/(1-beta1**t) * v/(sqrt(s) + epsilon), where epsilon is added before the second "
                "bias correction.",
                "add epsilon to sqrt(s) before the correction, or declare adam.epsilon=outside_sqrt (the default).",
                _adam_placement("outside_sqrt"), when=(("adam.epsilon", "epsilon_hat"),)))
    add(Mistake("bias-correction-float32", op, "bias corrections computed in float32",
                "beta1**t and beta2**t are float32 numbers (as with float32 scalars or tensors) in an otherwise "
                "float64 update, so the corrections are off in the 8th digit.",
                "compute beta**t in float64 (Python floats or math.pow).",
                _adam_variant(corrections=lambda b1, b2, t: (
                    float(np.float32(1.0) - np.float32(b1) ** np.float32(t)),
                    float(np.float32(1.0) - np.float32(b2) ** np.float32(t))))))
    add(Mistake("one-minus-beta-power", op, "(1-beta)**t instead of 1-beta**t",
                "the corrections divide by (1 - beta)**t; the power belongs to beta alone.",
                "write 1 - beta1**t and 1 - beta2**t.",
                _adam_variant(corrections=lambda b1, b2, t: (math.pow(1.0 - b1, t), math.pow(1.0 - b2, t)))))
    add(Mistake("hardcoded-learning-rate", op, "learning rate hard-coded to 0.01",
                "the step uses learning_rate = 0.01 whatever learning rate it is given.",
                "use the learning_rate argument.", _adam_hardcoded(learning_rate=COURSE_LR)))
    add(Mistake("hardcoded-beta1", op, "beta1 hard-coded to 0.9",
                "the first moment and its correction use beta1 = 0.9 whatever beta1 is given.",
                "use the beta1 argument.", _adam_hardcoded(beta1=COURSE_BETA1)))
    add(Mistake("hardcoded-beta2", op, "beta2 hard-coded to 0.999",
                "the second moment and its correction use beta2 = 0.999 whatever beta2 is given.",
                "use the beta2 argument.", _adam_hardcoded(beta2=COURSE_BETA2)))
    add(Mistake("hardcoded-epsilon", op, "epsilon hard-coded to 1e-8",
                "the step uses epsilon = 1e-8 whatever epsilon is given.",
                "use the epsilon argument.", _adam_hardcoded(epsilon=COURSE_EPSILON)))
    add(Mistake("hardcoded-defaults", op, "all hyperparameters hard-coded to the course defaults",
                "the step uses learning_rate 0.01, beta1 0.9, beta2 0.999 and epsilon 1e-8 whatever it is given.",
                "use the learning_rate, beta1, beta2 and epsilon arguments.",
                _adam_hardcoded(learning_rate=COURSE_LR, beta1=COURSE_BETA1, beta2=COURSE_BETA2,
                                epsilon=COURSE_EPSILON)))
    add(Mistake("abs-for-square", op, "|g| instead of g**2 in s",
                "the second moment averages the absolute gradient instead of its square.",
                "s = beta2*s + (1-beta2)*np.square(g).", _adam_variant(square=lambda g, v1: np.abs(g))))
    add(Mistake("v-squared-for-square", op, "v**2 instead of g**2 in s",
                "the second moment averages the square of the new first moment v instead of the square of g.",
                "s = beta2*s + (1-beta2)*np.square(g), with g the gradient.",
                _adam_variant(square=lambda g, v1: np.square(v1))))
    add(Mistake("no-sqrt", op, "no square root",
                "the step divides by s_hat (plus epsilon) instead of by its square root.",
                "divide by np.sqrt(s_hat) + epsilon.",
                _adam_variant(denominator=lambda sh, eps: sh + eps)))
    add(Mistake("wrong-sign", op, "step in the wrong direction",
                "the parameters move up the gradient (p + learning_rate * ...) instead of down.",
                "subtract the step: p = p - learning_rate * v_hat / (sqrt(s_hat) + epsilon).",
                _adam_variant(sign=-1.0)))
    add(Mistake("moments-not-stored", op, "moments not stored",
                "the parameters step with the new moments, but v and s come back unchanged, so the next step "
                "starts from the old moments.",
                "assign the new moments into v and s and return them.", _adam_variant(keep_state=True)))
    add(Mistake("v-s-aliased", op, "v and s are the same dictionary",
                "s is computed from the new v (s = beta2*v + (1-beta2)*g**2) and v comes back equal to s, as "
                "happens when v and s are one object (s = v, or v = s = a single dict at init).",
                "keep two separate dictionaries: create v and s each with their own zeros, never s = v.",
                _adam_variant(aliased=True)))
    for name, (skip, title, explanation, fix) in SKIP_TEXT.items():
        add(Mistake(name, op, title, explanation.replace("(and its state)", "(and their v and s)"), fix,
                    _adam_variant(skip=skip)))
    add(Mistake("one-plus-beta-power", op, "1 + beta**t instead of 1 - beta**t",
                "the bias corrections divide by 1 + beta**t; the correction subtracts the power from 1.",
                "v_hat = v/(1 - beta1**t) and s_hat = s/(1 - beta2**t).",
                _adam_variant(corrections=lambda b1, b2, t: (1.0 + math.pow(b1, t), 1.0 + math.pow(b2, t)))))
    add(Mistake("beta2-squared-for-power", op, "beta2**2 instead of beta2**t",
                "the second correction divides by 1 - beta2**2 whatever the step.",
                "use the step: s_hat = s/(1 - beta2**t).",
                _adam_variant(corrections=lambda b1, b2, t: (1.0 - math.pow(b1, t), 1.0 - b2 * b2))))
    add(Mistake("v-without-beta1", op, "first moment accumulated without beta1",
                "your first moment is v = v + (1-beta1)*g: the old v is not multiplied by beta1.",
                "use v = beta1*v + (1 - beta1)*g.", _adam_variant(v_without_beta=True)))
    add(Mistake("epsilon-added-to-step", op, "epsilon added to the step",
                "epsilon is added to the quotient, lr*(v_hat/sqrt(s_hat) + epsilon), instead of to the "
                "denominator.",
                "add epsilon to the denominator: lr * v_hat / (sqrt(s_hat) + epsilon).",
                _adam_variant(epsilon_on_step=True)))
    add(Mistake("amsgrad", op, "AMSGrad instead of Adam",
                "s keeps the running maximum of the second moment (AMSGrad), so it never decreases.",
                "use s = beta2*s + (1-beta2)*g**2 itself, without the maximum.", _adam_variant(amsgrad=True)))
    add(Mistake("decoupled-weight-decay", op, "AdamW's decoupled weight decay",
                "the parameters also shrink by learning_rate * 0.01 * p, as torch.optim.AdamW's default "
                "weight decay does.",
                "plain Adam has no weight decay: p = p - lr * v_hat / (sqrt(s_hat) + epsilon).",
                _adam_variant(weight_decay=0.01)))
    add(Mistake("nesterov", op, "Nesterov momentum in Adam (NAdam)",
                "the step uses beta1*v_hat + (1-beta1)*g/(1-beta1**t), NAdam's look-ahead, instead of v_hat.",
                "step with v_hat itself.", _adam_variant(nesterov=True)))
    add(Mistake("gradient-clipping", op, "gradients clipped at magnitude 1",
                "gradients larger than 1 in magnitude were clipped before the update.",
                "use the gradients as given; clipping is not part of the update.", _adam_variant(clip=1.0)))
    add(Mistake("pytorch-default-learning-rate", op, "default learning rate 0.001",
                "called without hyperparameters, your function steps with learning_rate 0.001 (PyTorch's "
                "default); the course's default is 0.01.",
                "declare learning_rate=0.01 in the signature.",
                _adam_variant(defaults=(0.001, 0.9, 0.999, 1e-8))))
    add(Mistake("keras-default-epsilon", op, "default epsilon 1e-7",
                "called without hyperparameters, your function uses epsilon 1e-7 (Keras' default); the "
                "course's default is 1e-8.",
                "declare epsilon=1e-8 in the signature.", _adam_variant(defaults=(0.01, 0.9, 0.999, 1e-7))))
    add(Mistake("keras-defaults", op, "default learning rate 0.001 and epsilon 1e-7",
                "called without hyperparameters, your function uses Keras's defaults, learning_rate 0.001 and "
                "epsilon 1e-7; the course's are 0.01 and 1e-8.",
                "declare learning_rate=0.01 and epsilon=1e-8 in the signature.",
                _adam_variant(defaults=(0.001, 0.9, 0.999, 1e-7))))
    add(Mistake("float32", op, "computed in float32 although float64 was declared",
                "the results agree with the reference only to float32 precision (about 7 digits).",
                "compute in float64 (no float32 casts or tensors), or check with --dtype float32.",
                in_float32(ops.adam_update), float64_declared=True))
    add(Mistake("subnormals-flushed", op, *FLUSH_TEXT, flushing(ops.adam_update)))

    return mistakes


#: This family's mistakes, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())
