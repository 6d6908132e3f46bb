"""Known mistakes, as data beside the reference.

Each :class:`Mistake` is a named, buggy variant of one reference operation: its
``fn`` has the signature and return shape of the matching function in
:mod:`optconform.reference.ops` and computes what an implementation with that bug
returns. ``title`` names the bug in a few words, ``explanation`` says in one line
what the implementation does, ``fix`` how to put it right.

A mistake may hold only under some conventions (``when``): epsilon inside the
square root is a mistake when the case expects it outside, and the other way
round. ``float64_declared`` marks the one mistake that exists only when the
target declared float64 (computing in float32).

The harness (:mod:`optconform.harness.diagnose`) evaluates every mistake of a
failing case's op on the case's inputs and names those the output matches. The
vectors hold, for every mistake, a case telling it apart from the reference and
from every other mistake (``tests/test_distinguishability.py``).

Text rules: titles hold no ``:`` and no brackets; explanations and fixes hold no
brackets (the diagnosis marks mistake names as ``[name]``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import ops
from .conventions import resolve
from .ops import layer_count, slot_names

#: The course's defaults, the values a hard-coding implementation uses.
COURSE_LR = 0.01
COURSE_BETA = 0.9
COURSE_BETA1 = 0.9
COURSE_BETA2 = 0.999
COURSE_EPSILON = 1e-8

#: The op whose mistakes a trajectory case shows.
STEP_OP = {"momentum.trajectory": "momentum.update", "adam.trajectory": "adam.update"}


@dataclass(frozen=True)
class Mistake:
    """One known mistake: a buggy variant of a reference op."""

    name: str
    op: str
    title: str
    explanation: str
    fix: str
    fn: Callable
    #: Conventions under which this is a mistake, as ``(name, value)`` pairs; empty: always.
    when: tuple[tuple[str, str], ...] = ()
    #: Only a mistake when the target declared float64 (the float32-arithmetic mistake).
    float64_declared: bool = False

    def applies(self, conventions: dict | None = None, dtype: str = "float64") -> bool:
        """Whether this is a mistake for a case with ``conventions`` checked at ``dtype``."""
        if self.float64_declared and dtype != "float64":
            return False
        resolved = resolve(conventions or {})
        return all(resolved.get(name) == value for name, value in self.when)

    def describe(self) -> str:
        """``title [name]: explanation Fix: fix`` on one line."""
        return f"{self.title} [{self.name}]: {self.explanation} Fix: {self.fix}"


# ---------------------------------------------------------------- helpers


def _layer_of(key: str) -> int:
    """``"W3"`` or ``"db3"`` -> 3."""
    return int(key.lstrip("dWb"))


def _to_float32(value):
    if isinstance(value, np.ndarray):
        return value.astype(np.float32)
    if isinstance(value, dict):
        return {key: _to_float32(item) for key, item in value.items()}
    return value


def _in_float32(reference_fn: Callable) -> Callable:
    """``reference_fn`` evaluated on the inputs rounded to float32, returning float32 arrays."""
    @functools.wraps(reference_fn)
    def fn(*args, **kwargs):
        return reference_fn(*[_to_float32(a) for a in args], **{k: _to_float32(v) for k, v in kwargs.items()})

    return fn


def _flush_subnormals(value):
    """Subnormal float64 values (``0 < |x| < 2.2e-308``) set to zero, as flush-to-zero hardware modes do."""
    if isinstance(value, np.ndarray):
        return np.where(np.abs(value) < np.finfo(np.float64).tiny, 0.0, value)
    if isinstance(value, dict):
        return {key: _flush_subnormals(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_flush_subnormals(item) for item in value)
    return value


def _flushing(reference_fn: Callable) -> Callable:
    """``reference_fn`` with subnormal inputs and outputs flushed to zero (FTZ and DAZ)."""
    @functools.wraps(reference_fn)
    def fn(*args, **kwargs):
        flushed = reference_fn(*[_flush_subnormals(a) for a in args],
                               **{k: _flush_subnormals(v) for k, v in kwargs.items()})
        return _flush_subnormals(flushed)

    return fn


FLUSH_TEXT = ("subnormal numbers flushed to zero",
              "values below 2.2e-308 (subnormals) became 0, as in flush-to-zero modes (-ffast-math, "
              "FTZ/DAZ) and JAX on the CPU.",
              "compute without flush-to-zero; where the platform imposes it, list the subnormal cases in an "
              "--xfail file.")


def _last(key: str, layers: int) -> bool:
    return _layer_of(key) == layers


def _first(key: str, layers: int) -> bool:
    return _layer_of(key) == 1


def _bias(key: str, layers: int) -> bool:
    return key.startswith("b")


def _everything(key: str, layers: int) -> bool:
    return True


# ---------------------------------------------------------------- mini_batches


def _cut(X, Y, size):
    m = X.shape[1]
    return [(X[:, k : k + size].copy(), Y[:, k : k + size].copy()) for k in range(0, m, size)]


def mb_last_dropped(X, Y, mini_batch_size=64, seed=0):
    batches = ops.mini_batches(X, Y, mini_batch_size, seed)
    return batches[:-1] if X.shape[1] % mini_batch_size else batches


def mb_last_misaligned(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    batches = ops.mini_batches(X, Y, mini_batch_size, seed)
    rest = m % mini_batch_size
    if rest:
        perm = ops.permutation(m, seed)
        batches[-1] = (X[:, perm][:, :rest].copy(), Y[:, perm][:, :rest].copy())
    return batches


def mb_different_permutations(X, Y, mini_batch_size=64, seed=0):
    generator = np.random.RandomState(seed)
    first, second = generator.permutation(X.shape[1]), generator.permutation(X.shape[1])
    return list(zip([x for x, _ in _cut(X[:, first], Y, mini_batch_size)],
                    [y for _, y in _cut(X, Y[:, second], mini_batch_size)]))


def mb_unshuffled_x(X, Y, mini_batch_size=64, seed=0):
    perm = ops.permutation(X.shape[1], seed)
    return list(zip([x for x, _ in _cut(X, Y, mini_batch_size)],
                    [y for _, y in _cut(X, Y[:, perm], mini_batch_size)]))


def mb_every_batch_from_start(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    perm = ops.permutation(m, seed)
    Xs, Ys = X[:, perm], Y[:, perm]
    return [(Xs[:, : min(mini_batch_size, m - k)].copy(), Ys[:, : min(mini_batch_size, m - k)].copy())
            for k in range(0, m, mini_batch_size)]


def mb_with_replacement(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    columns = np.random.RandomState(seed).choice(m, m, replace=True)
    return _cut(X[:, columns], Y[:, columns], mini_batch_size)


def mb_default_size_32(X, Y, mini_batch_size=32, seed=0):
    return ops.mini_batches(X, Y, mini_batch_size, seed)


def mb_no_shuffle(X, Y, mini_batch_size=64, seed=0):
    return _cut(X, Y, mini_batch_size)


def mb_seed_ignored(X, Y, mini_batch_size=64, seed=0):
    return ops.mini_batches(X, Y, mini_batch_size, 0)


def mb_other_generator(X, Y, mini_batch_size=64, seed=0):
    perm = np.random.default_rng(seed).permutation(X.shape[1])
    return _cut(X[:, perm], Y[:, perm], mini_batch_size)


# ---------------------------------------------------------------- init


def _init(parameters, *, skip=None, source="zeros", key_prefix="d", bias_flat=False, transpose=False,
          constant_layer=False):
    layers = layer_count(parameters)
    v = {}
    for param, grad in slot_names(parameters):
        if skip and skip(param, layers):
            continue
        if constant_layer:  # v["dW" + str(1 + 1)]: every layer writes the keys of layer 2
            v[grad[:2] + "2"] = np.zeros_like(parameters[param])
            continue
        value = parameters[param]
        array = np.array(value, copy=True) if source == "parameters" else np.zeros_like(value)
        if transpose and param.startswith("W"):
            array = np.zeros_like(value.T)
        if bias_flat and param.startswith("b"):
            array = array.reshape(-1)
        v[grad if key_prefix == "d" else param] = array
    return v


def _init_pair(**knobs):
    def momentum_fn(parameters):
        return _init(parameters, **knobs)

    def adam_fn(parameters):
        return _init(parameters, **knobs), _init(parameters, **knobs)

    return momentum_fn, adam_fn


INIT_MISTAKES = [
    ("last-layer-skipped", dict(skip=_last), "the last layer skipped",
     "no zeros are created for the last layer's dW and db (a loop such as range(L - 1) stops one layer short).",
     "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    ("first-layer-skipped", dict(skip=_first), "the first layer skipped",
     "no zeros are created for layer 1 (a loop such as range(1, L) counted from 0 starts one layer late).",
     "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    ("biases-skipped", dict(skip=_bias), "the biases skipped",
     "zeros are created for every dW but for no db.",
     "create zeros for db1 ... dbL as well as for dW1 ... dWL."),
    ("copied-from-parameters", dict(source="parameters"), "copied from the parameters instead of zeros",
     "the moments start as copies of W and b instead of as zeros.",
     "use np.zeros_like(parameters of that key) for every entry."),
    ("keys-like-parameters", dict(key_prefix=""), "keys named W1, b1 instead of dW1, db1",
     "the entries are keyed like the parameters, but the update looks them up as dW1, db1, ...",
     "key the entries dW1, db1, ..., dWL, dbL."),
    ("bias-flat", dict(bias_flat=True), "bias entries of shape (n,) instead of (n, 1)",
     "the bias moments are 1-D, so they broadcast wrongly against the (n, 1) biases.",
     "use np.zeros_like on the bias itself, or np.zeros((n, 1))."),
    ("transposed", dict(transpose=True), "weight entries transposed",
     "the weight moments have the shape of W transposed.",
     "use np.zeros_like(W) or np.zeros(W.shape), not the shape reversed."),
    ("constant-layer-key", dict(constant_layer=True), "every layer keyed as layer 2",
     "the keys are built with a constant layer number (str(1 + 1) for str(l + 1)), so only dW2 and db2 exist.",
     "build the keys from the loop variable: \"dW\" + str(l) for l = 1 ... L."),
]


# ---------------------------------------------------------------- momentum.update


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
        gain = (1.0 - beta) if form == "ema" else 1.0
        keep = 1.0 if v_without_beta else beta
        if swap_gain:
            gain, keep = beta, 1.0 - beta
        if lr_in_velocity:
            velocity = keep * v[grad] + gain * learning_rate * g
            new_parameters[param] = parameters[param] - sign * velocity
        else:
            velocity = keep * v[grad] + gain * g
            direction = {"velocity": velocity, "gradient": g, "old velocity": v[grad],
                         "nesterov": beta * velocity + gain * g}[step_with]
            new_parameters[param] = parameters[param] - sign * learning_rate * direction
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


# ---------------------------------------------------------------- adam.update


def _adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8,
          epsilon_placement="outside_sqrt", *, step=None, swap_moment_betas=False, corrections=None,
          square=None, denominator=None, sign=1.0, skip=None, aliased=False, keep_state=False, placement=None,
          fixed=None, v_without_beta=False, epsilon_on_step=False, amsgrad=False, weight_decay=0.0,
          nesterov=False, clip=None):
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
            t_used = step(t, _layer_of(param)) if step else t
            b1, b2 = (beta2, beta1) if swap_moment_betas else (beta1, beta2)
            g = np.clip(grads[grad], -clip, clip) if clip else grads[grad]
            v1 = (1.0 if v_without_beta else b1) * v[grad] + (1.0 - b1) * g
            squared = square(g, v1) if square else np.square(g)
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


def _momentum_form(form_used):
    def fn(parameters, grads, v, beta, learning_rate, form="ema"):
        return ops.momentum_update(parameters, grads, v, beta, learning_rate, form_used)

    return fn


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


def _scheduled(intervals, one=1.0):
    def fn(learning_rate0, epoch_num, decay_rate, time_interval=1000):
        return learning_rate0 / (one + decay_rate * intervals(epoch_num, time_interval))

    return fn


SKIP_TEXT = {
    "last-layer-skipped": (_last, "the last layer skipped",
                           "the last layer's W and b (and its state) come back unchanged: the loop stops one layer "
                           "short, as range(L - 1) or range(1, L) does.",
                           "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    "first-layer-skipped": (_first, "the first layer skipped",
                            "layer 1's W and b (and its state) come back unchanged: the loop starts one layer late, "
                            "as range(1, L) used with str(l + 1) does.",
                            "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    "biases-skipped": (_bias, "the biases skipped",
                       "the weights are updated but every b (and its state) comes back unchanged.",
                       "update b1 ... bL with their db exactly as the weights are updated."),
    "nothing-updated": (_everything, "nothing updated",
                        "the parameters and the state come back exactly as they were given: the update is computed "
                        "into something that is not returned.",
                        "return the updated dictionaries (or assign into the ones you return)."),
}

# ---------------------------------------------------------------- the catalogue of mistakes


def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append

    # mini_batches ------------------------------------------------------------------------------
    op = "mini_batches"
    add(Mistake("last-batch-dropped", op, "last mini-batch dropped",
                "when m is not a multiple of the batch size, the final smaller batch is missing.",
                "after the full batches, append one more with the remaining m % size columns.", mb_last_dropped))
    add(Mistake("last-batch-misaligned", op, "last mini-batch cut at the wrong offset",
                "the final smaller batch is not the last m % size shuffled columns: it starts at the wrong "
                "column (often 0, or a fixed offset) or ends early.",
                "slice the last batch as shuffled_X with columns num_complete * size up to m.", mb_last_misaligned))
    add(Mistake("xy-different-permutations", op, "X and Y shuffled with different permutations",
                "X and Y were each shuffled with their own permutation, so the labels no longer belong to "
                "their examples.",
                "draw one permutation and index both: X of columns permutation, Y of columns permutation.",
                mb_different_permutations))
    add(Mistake("unshuffled-x", op, "batches sliced from the unshuffled X",
                "Y is shuffled but the X batches are cut from the original X, so the pairs are broken.",
                "cut the X batches from shuffled_X, not from X.", mb_unshuffled_x))
    add(Mistake("no-shuffle", op, "no shuffle",
                "the batches are cut from X and Y in their original order.",
                "shuffle first: permutation = np.random.permutation(m), then index X and Y with it.", mb_no_shuffle))
    add(Mistake("every-batch-from-start", op, "every mini-batch cut from the start",
                "each batch repeats the first columns of the shuffled data: the slice does not move with k.",
                "slice batch k as columns k * size up to (k + 1) * size.", mb_every_batch_from_start))
    add(Mistake("with-replacement", op, "columns drawn with replacement",
                "some examples appear twice and others never: the columns were drawn with replacement "
                "(np.random.choice without replace=False, or randint), not permuted.",
                "shuffle with permutation = np.random.permutation(m).", mb_with_replacement))
    add(Mistake("default-size-32", op, "default mini_batch_size of 32",
                "called without a batch size, your function cuts batches of 32; the course's default is 64.",
                "declare mini_batch_size=64 in the signature.", mb_default_size_32))
    add(Mistake("seed-ignored", op, "seed ignored",
                "the batches come out in the order of seed 0 whatever seed is given.",
                "call np.random.seed(seed) with the seed argument, not a fixed number.", mb_seed_ignored))
    add(Mistake("other-generator", op, "shuffled by another random generator",
                "the batches are a valid shuffle, but not the order np.random.seed(seed) then "
                "np.random.permutation(m) gives (unseeded, or another generator such as default_rng).",
                "call np.random.seed(seed) and then np.random.permutation(m), or declare "
                "mini_batches.rng=structural if your generator is meant to differ.", mb_other_generator,
                when=(("mini_batches.rng", "numpy_legacy"),)))

    # init --------------------------------------------------------------------------------------
    for name, knobs, title, explanation, fix in INIT_MISTAKES:
        momentum_fn, adam_fn = _init_pair(**knobs)
        add(Mistake(name, "momentum.init", title, "v: " + explanation, fix, momentum_fn))
        add(Mistake(name, "adam.init", title, "v and s: " + explanation, fix, adam_fn))

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
                "keep v free of the learning rate: v = beta*v + (1-beta)*g, then p = p - learning_rate * v.",
                _momentum_variant(lr_in_velocity=True)))
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
                _in_float32(ops.momentum_update), float64_declared=True))
    add(Mistake("subnormals-flushed", op, *FLUSH_TEXT, _flushing(ops.momentum_update)))

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
    add(Mistake("float32", op, "computed in float32 although float64 was declared",
                "the results agree with the reference only to float32 precision (about 7 digits).",
                "compute in float64 (no float32 casts or tensors), or check with --dtype float32.",
                _in_float32(ops.adam_update), float64_declared=True))
    add(Mistake("subnormals-flushed", op, *FLUSH_TEXT, _flushing(ops.adam_update)))

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
                _in_float32(ops.gd_update), float64_declared=True))

    # rmsprop ---------------------------------------------------------------------------------
    for name, knobs, title, explanation, fix in INIT_MISTAKES:
        add(Mistake(name, "rmsprop.init", title, "s: " + explanation, fix, _init_pair(**knobs)[0]))
    op = "rmsprop.update"
    add(Mistake("epsilon-inside-sqrt", op, "epsilon inside the square root",
                "you divide by sqrt(s + epsilon), but this case expects sqrt(s) + epsilon (PyTorch's RMSprop).",
                "use sqrt(s) + epsilon, or declare adam.epsilon=inside_sqrt if inside is what you mean.",
                _rmsprop_variant(placement="inside_sqrt"), when=(("adam.epsilon", "outside_sqrt"),)))
    add(Mistake("epsilon-outside-sqrt", op, "epsilon outside the square root",
                "you divide by sqrt(s) + epsilon, but this case expects sqrt(s + epsilon).",
                "use sqrt(s + epsilon), or declare adam.epsilon=outside_sqrt (the default).",
                _rmsprop_variant(placement="outside_sqrt"), when=(("adam.epsilon", "inside_sqrt"),)))
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

    # learning-rate decay ---------------------------------------------------------------------
    op = "lr_decay.inverse_time"
    add(Mistake("ten-plus-decay", op, "10 + decay_rate instead of 1 + decay_rate",
                "the denominator is 10 + decay_rate * epoch_num.", "divide by 1 + decay_rate * epoch_num.",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 / (10 + decay_rate * epoch_num)))
    add(Mistake("missing-parentheses", op, "the denominator without parentheses",
                "learning_rate0 / 1 + decay_rate * epoch_num adds the decay to the rate instead of dividing by it.",
                "write learning_rate0 / (1 + decay_rate * epoch_num).",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 / 1 + decay_rate * epoch_num))
    add(Mistake("exponential-decay", op, "exponential decay instead of inverse-time",
                "the rate is learning_rate0 * decay_rate**epoch_num.",
                "use the inverse-time form learning_rate0 / (1 + decay_rate * epoch_num).",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 * decay_rate**epoch_num))
    op = "lr_decay.scheduled"
    add(Mistake("round-for-floor", op, "round instead of floor",
                "the number of intervals is round(epoch_num / time_interval), so the decay starts half an "
                "interval early.", "use np.floor(epoch_num / time_interval).",
                _scheduled(lambda e, t: float(np.round(e / t)))))
    add(Mistake("no-floor", op, "plain division instead of floor",
                "the number of intervals is epoch_num / time_interval, so the rate decays a little every epoch.",
                "use np.floor(epoch_num / time_interval).", _scheduled(lambda e, t: e / t)))
    add(Mistake("ten-plus-decay", op, "10 + decay_rate instead of 1 + decay_rate",
                "the denominator is 10 + decay_rate * floor(epoch_num / time_interval).",
                "divide by 1 + decay_rate * floor(epoch_num / time_interval).",
                _scheduled(lambda e, t: math.floor(e / t), one=10.0)))
    add(Mistake("interval-on-rate", op, "the interval applied to the learning rate",
                "the rate is divided by time_interval and decays every epoch, instead of decaying once per "
                "interval of epochs.", "divide the epoch by the interval: floor(epoch_num / time_interval).",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                learning_rate0 / (1 + decay_rate * epoch_num) / time_interval))
    add(Mistake("decay-only-on-boundary", op, "decayed only on the boundary epochs",
                "the decayed rate is returned only when epoch_num is a multiple of time_interval, and lr0 "
                "on every other epoch; the rate should stay decayed until the next boundary.",
                "return learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval)) for every epoch.",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                ops.lr_scheduled(learning_rate0, epoch_num, decay_rate, time_interval)
                if epoch_num % time_interval == 0 else learning_rate0))
    add(Mistake("default-interval-100", op, "default time_interval of 100",
                "called without an interval, your function decays every 100 epochs; the default is 1000.",
                "declare time_interval=1000 in the signature.",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=100:
                ops.lr_scheduled(learning_rate0, epoch_num, decay_rate, time_interval)))
    return mistakes


#: Every known mistake, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())

_BY_KEY = {(m.op, m.name): m for m in MISTAKES}
_ORDER = {m: index for index, m in enumerate(MISTAKES)}
assert len(_BY_KEY) == len(MISTAKES), "mistake names must be unique within an op"


@dataclass(frozen=True)
class ErrorMistake:
    """A known mistake that shows as an exception on some inputs, told by the error and the case."""

    name: str
    op: str
    title: str
    explanation: str
    fix: str
    #: The error message a target raises with this mistake (a regular expression).
    pattern: str
    #: Whether the case's inputs (defaults filled) are ones this mistake raises on.
    raises_on: Callable[[dict], bool]

    def describe(self) -> str:
        return f"{self.title} [{self.name}]: {self.explanation} Fix: {self.fix}"


ERROR_MISTAKES: tuple[ErrorMistake, ...] = (
    ErrorMistake(
        "last-batch-from-loop-variable", "mini_batches", "last mini-batch sliced with the loop variable",
        "the last batch starts at (k + 1) * size with k left over from the loop; when m is smaller than the batch "
        "size the loop never runs and k does not exist.",
        "start the last batch at num_complete_minibatches * mini_batch_size, which exists whatever m is.",
        r"UnboundLocalError|local variable '?k'? |cannot access local variable|name 'k' is not defined",
        lambda inputs: inputs["X"].shape[1] < inputs["mini_batch_size"]),
)


def combined(first: Mistake, second: Mistake) -> Mistake | None:
    """Both mistakes at once, where both are knobs of the same buggy Adam that do not touch the same thing."""
    first, second = sorted((first, second), key=_ORDER.get)  # one name per pair, in catalogue order
    knobs = [getattr(m.fn, "knobs", None) for m in (first, second)]
    if first.op != second.op or first.op != "adam.update" or not all(knobs) or set(knobs[0]) & set(knobs[1]):
        return None
    if first.when and second.when and first.when != second.when:
        return None
    return Mistake(f"{first.name}+{second.name}", first.op, f"{first.title} and {second.title}",
                   f"{first.explanation[:-1]}; and {second.explanation}", f"{first.fix} And {second.fix}",
                   _adam_variant(**knobs[0], **knobs[1]), when=first.when or second.when)


def step_op(op: str) -> str:
    """The op whose mistakes a case of ``op`` can show: trajectories show their step's."""
    return STEP_OP.get(op, op)


def mistakes_for(op: str, conventions: dict | None = None, dtype: str | None = None) -> list[Mistake]:
    """The mistakes of ``op`` (a trajectory op gives its step's), those that apply when given conventions/dtype."""
    base = step_op(op)
    found = [m for m in MISTAKES if m.op == base]
    if conventions is None and dtype is None:
        return found
    return [m for m in found if m.applies(conventions, dtype or "float64")]


def get(op: str, name: str) -> Mistake:
    """The mistake ``name`` of ``op`` (a trajectory op looks in its step's); KeyError if unknown."""
    return _BY_KEY[(step_op(op), name)]
