"""Mistakes of ``update_parameters_with_momentum``."""

from __future__ import annotations

import numpy as np

from optconform.reference import ops
from optconform.reference.ops import layer_count, slot_names

from .model import COURSE_BETA, COURSE_LR, FLUSH_TEXT, SKIP_TEXT, Mistake, flushing, in_float32


def _momentum(parameters, grads, v, beta, learning_rate, form="ema", *, swap_gain=False,
              step_with="velocity", sign=1.0, keep_v=False, lr_in_velocity=False, skip=None,
              v_without_beta=False, clip=None):
    layers = layer_count(parameters)
    new_parameters, new_v = {}, {}
    for param, grad in slot_names(parameters):
        if skip and skip(param, layers):
            new_parameters[param] = np.array(parameters[param], copy=True)
            new_v[grad] = np.array(v[grad], copy=True)
            continue
        g = np.clip(grads[grad], -clip, clip) if clip else grads[grad]
        gain = {"ema": 1.0 - beta, "heavy_ball": 1.0, "lr_scaled": learning_rate}[form]
        rate = 1.0 if form == "lr_scaled" else learning_rate  # what multiplies v in the step
        keep = 1.0 if v_without_beta else beta
        if swap_gain:
            gain, keep = beta, 1.0 - beta
        if lr_in_velocity:
            velocity = keep * v[grad] + gain * learning_rate * g
            new_parameters[param] = parameters[param] - sign * velocity
        else:
            velocity = keep * v[grad] + gain * g
            direction = {"velocity": rate * velocity, "gradient": learning_rate * g, "old velocity": rate * v[grad],
                         "nesterov": rate * (beta * velocity + gain * g)}[step_with]
            new_parameters[param] = parameters[param] - sign * direction
        new_v[grad] = np.array(v[grad], copy=True) if keep_v else velocity
    return new_parameters, new_v


def _momentum_variant(**knobs):
    def fn(parameters, grads, v, beta, learning_rate, form="ema"):
        return _momentum(parameters, grads, v, beta, learning_rate, form, **knobs)

    return fn


def _momentum_hardcoded(**fixed):
    def fn(parameters, grads, v, beta, learning_rate, form="ema"):
        given = dict(beta=beta, learning_rate=learning_rate)
        given.update(fixed)
        return ops.momentum_update(parameters, grads, v, form=form, **given)

    return fn



def _negated_scaled_state(parameters, grads, v, beta, learning_rate, form="lr_scaled"):
    """Keras's SGD momentum with its state taken as given: ``m = beta*v - lr*g``, ``p = p + m``, ``v = m``."""
    new_v = {grad: beta * v[grad] - learning_rate * grads[grad] for _, grad in slot_names(parameters)}
    return {param: parameters[param] + new_v[grad] for param, grad in slot_names(parameters)}, new_v


def _momentum_form(form_used):
    def fn(parameters, grads, v, beta, learning_rate, form="ema"):
        return ops.momentum_update(parameters, grads, v, beta, learning_rate, form_used)

    return fn



def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append
    # momentum.update ---------------------------------------------------------------------------
    op = "momentum.update"
    add(Mistake("heavy-ball", op, "heavy-ball momentum instead of EMA",
                "your velocity is v = beta*v + g (PyTorch's heavy-ball form), but this case expects the course's "
                "v = beta*v + (1-beta)*g.",
                "use v = beta*v + (1 - beta)*g, or declare momentum.form=heavy_ball if heavy-ball is what you mean.",
                _momentum_form("heavy_ball"), when=(("momentum.form", "ema"),)))
    add(Mistake("ema", op, "EMA momentum instead of heavy-ball",
                "your velocity is v = beta*v + (1-beta)*g, but this case expects heavy-ball v = beta*v + g.",
                "use v = beta*v + g, or declare momentum.form=ema (the course's form).",
                _momentum_form("ema"), when=(("momentum.form", "heavy_ball"),)))
    add(Mistake("velocity-lr-scaled", op, "a velocity that holds the step (the learning rate inside it)",
                "your state is v = beta*v + learning_rate*g and the parameters step by v itself (numpy-ml's SGD, "
                "Keras's with the sign flipped), but this case expects v = beta*v + (1-beta)*g with p = p - lr*v.",
                "keep the learning rate out of v, or declare momentum.form=lr_scaled if that state is what you mean.",
                _momentum_form("lr_scaled"), when=(("momentum.form", "ema"),)))
    add(Mistake("velocity-not-lr-scaled", op, "velocity not scaled by the learning rate",
                "your velocity is v = beta*v + g and the parameters step by learning_rate*v, but this case expects "
                "the scaled state v = beta*v + learning_rate*g with the step p = p - v.",
                "put the learning rate into v and step by v, or declare momentum.form=heavy_ball.",
                _momentum_form("heavy_ball"), when=(("momentum.form", "lr_scaled"),)))
    add(Mistake("scaled-velocity-negated", op, "the scaled velocity kept with the opposite sign",
                "your state is m = beta*m - learning_rate*g with p = p + m (Keras's SGD), but this case's v is -m: "
                "v = beta*v + learning_rate*g with p = p - v.",
                "negate the state on the way in and out (m = -v), or compute v = beta*v + learning_rate*g, p = p - v.",
                _negated_scaled_state, when=(("momentum.form", "lr_scaled"),)))
    add(Mistake("step-with-gradient", op, "stepping with the gradient instead of the velocity",
                "the parameters move by learning_rate * g, so the velocity is computed but never used.",
                "update with the new velocity: p = p - learning_rate * v.", _momentum_variant(step_with="gradient")))
    add(Mistake("wrong-sign", op, "step in the wrong direction",
                "the parameters move up the gradient (p + learning_rate * v) instead of down.",
                "subtract: p = p - learning_rate * v.", _momentum_variant(sign=-1.0)))
    add(Mistake("velocity-not-stored", op, "velocity not stored",
                "the parameters step with the new velocity, but v comes back unchanged, so the next step "
                "starts from the old velocity.",
                "assign the new velocity into v (v of dWl = ...) and return that v.",
                _momentum_variant(keep_v=True)))
    add(Mistake("beta-swapped", op, "beta and 1-beta swapped",
                "your velocity is v = (1-beta)*v + beta*g, so the new gradient gets the large weight.",
                "use v = beta*v + (1 - beta)*g.", _momentum_variant(swap_gain=True),
                when=(("momentum.form", "ema"),)))
    add(Mistake("lr-in-velocity", op, "learning rate folded into the velocity",
                "the learning rate multiplies the gradient inside v, and the parameters step by v itself.",
                "keep v free of the learning rate: v = beta*v + (1-beta)*g, then p = p - learning_rate * v "
                "(or declare momentum.form=lr_scaled if a state scaled by the learning rate is what you mean).",
                _momentum_variant(lr_in_velocity=True), unless=(("momentum.form", "lr_scaled"),)))
    add(Mistake("hardcoded-beta", op, "beta hard-coded to 0.9",
                "the update uses beta = 0.9 whatever beta it is given.",
                "use the beta argument.", _momentum_hardcoded(beta=COURSE_BETA)))
    add(Mistake("hardcoded-learning-rate", op, "learning rate hard-coded to 0.01",
                "the update uses learning_rate = 0.01 whatever learning rate it is given.",
                "use the learning_rate argument.", _momentum_hardcoded(learning_rate=COURSE_LR)))
    for name, (skip, title, explanation, fix) in SKIP_TEXT.items():
        add(Mistake(name, op, title, explanation, fix, _momentum_variant(skip=skip)))
    add(Mistake("v-without-beta", op, "velocity accumulated without beta",
                "your velocity is v = v + (1-beta)*g: the old velocity is not multiplied by beta.",
                "use v = beta*v + (1 - beta)*g.", _momentum_variant(v_without_beta=True),
                when=(("momentum.form", "ema"),)))
    add(Mistake("step-with-old-velocity", op, "stepping with the old velocity",
                "the parameters move by the velocity given to the call, before it is updated with g "
                "(with zero incoming velocity nothing moves).",
                "update v first, then step with the new v: p = p - learning_rate * v.",
                _momentum_variant(step_with="old velocity")))
    add(Mistake("nesterov", op, "Nesterov momentum",
                "the parameters step with beta*v + (1-beta)*g, the look-ahead of Nesterov momentum, instead of v.",
                "step with the velocity itself: p = p - learning_rate * v.", _momentum_variant(step_with="nesterov")))
    add(Mistake("gradient-clipping", op, "gradients clipped at magnitude 1",
                "gradients larger than 1 in magnitude were clipped before the update.",
                "use the gradients as given; clipping is not part of the update.", _momentum_variant(clip=1.0)))
    add(Mistake("float32", op, "computed in float32 although float64 was declared",
                "the results agree with the reference only to float32 precision (about 7 digits).",
                "compute in float64 (no float32 casts or tensors), or check with --dtype float32.",
                in_float32(ops.momentum_update), float64_declared=True))
    add(Mistake("subnormals-flushed", op, *FLUSH_TEXT, flushing(ops.momentum_update)))

    return mistakes


#: This family's mistakes, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())
