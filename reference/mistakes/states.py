"""Mistakes of ``initialize_velocity`` and ``initialize_adam``: the wrong keys, shapes, values or sharing."""

from __future__ import annotations

import numpy as np

from optconform.reference.ops import layer_count, slot_names

from .model import Mistake, bias_slot, first_layer, last_layer


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


def init_pair(**knobs):
    def momentum_fn(parameters):
        return _init(parameters, **knobs)

    def adam_fn(parameters):
        return _init(parameters, **knobs), _init(parameters, **knobs)

    return momentum_fn, adam_fn


INIT_MISTAKES = [
    ("last-layer-skipped", dict(skip=last_layer), "the last layer skipped",
     "no zeros are created for the last layer's dW and db (a loop such as range(L - 1) stops one layer short).",
     "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    ("first-layer-skipped", dict(skip=first_layer), "the first layer skipped",
     "no zeros are created for layer 1 (a loop such as range(1, L) counted from 0 starts one layer late).",
     "loop over every layer, l = 1 ... L, for example for l in range(1, L + 1)."),
    ("biases-skipped", dict(skip=bias_slot), "the biases skipped",
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



def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append
    # init --------------------------------------------------------------------------------------
    for name, knobs, title, explanation, fix in INIT_MISTAKES:
        momentum_fn, adam_fn = init_pair(**knobs)
        add(Mistake(name, "momentum.init", title, "v: " + explanation, fix, momentum_fn))
        add(Mistake(name, "adam.init", title, "v and s: " + explanation, fix, adam_fn))

    return mistakes


#: This family's mistakes, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())
