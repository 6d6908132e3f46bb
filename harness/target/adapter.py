"""Python functions behind the op interface.

A namespace (a module, an object, or a submission's definitions) exposes some of
the course's functions; :class:`PythonAdapter` finds them by their course or seed
names, calls them positionally in the course's argument order, and shapes what
they return into the op's result dict. It also notices what a call did wrong
beyond its values: inputs it changed, and ``v`` and ``s`` that are one object.

The same adapter serves in-process targets and the child process, so a file, a
notebook and a module all reach the comparer the same way.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

#: Op -> accepted function names, course name first.
FUNCTION_NAMES = {
    "mini_batches": ("random_mini_batches",),
    "momentum.init": ("initialize_velocity",),
    "momentum.update": ("update_parameters_with_momentum",),
    "adam.init": ("initialize_adam", "initialize_parameters_Adam", "initialize_parameters_adam"),
    "adam.update": ("update_parameters_with_adam", "update_parameters_Adam", "update_parameters_adam"),
    "gd.update": ("update_parameters_with_gd",),
    "rmsprop.init": ("initialize_rmsprop", "initialize_RMSprop", "initialize_parameters_rmsprop"),
    "rmsprop.update": ("update_parameters_with_rmsprop", "update_parameters_with_RMSprop",
                       "update_parameters_rmsprop"),
    "lr_decay.inverse_time": ("update_lr",),
    "lr_decay.scheduled": ("schedule_lr_decay",),
}
#: Op -> call arguments in the course's positional order.
ARGUMENTS = {
    "mini_batches": ("X", "Y", "mini_batch_size", "seed"),
    "momentum.init": ("parameters",),
    "momentum.update": ("parameters", "grads", "v", "beta", "learning_rate"),
    "adam.init": ("parameters",),
    "adam.update": ("parameters", "grads", "v", "s", "t", "learning_rate", "beta1", "beta2", "epsilon"),
    "gd.update": ("parameters", "grads", "learning_rate"),
    "rmsprop.init": ("parameters",),
    "rmsprop.update": ("parameters", "grads", "s", "beta2", "learning_rate", "epsilon"),
    "lr_decay.inverse_time": ("learning_rate0", "epoch_num", "decay_rate"),
    "lr_decay.scheduled": ("learning_rate0", "epoch_num", "decay_rate", "time_interval"),
}
#: Inputs an op must leave as they were.
UNCHANGED_INPUTS = {"mini_batches": ("X", "Y"), "momentum.update": ("grads",), "adam.update": ("grads",),
                    "gd.update": ("grads",), "rmsprop.update": ("grads",)}
CONVENTIONS_ATTRIBUTE = "OPTCONFORM_CONVENTIONS"


class ResultShapeError(TypeError):
    """A function returned something that is not the op's result shape."""


_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))


def _copied(value):
    """A deep copy of call arguments (dicts and lists of arrays and scalars), without ``copy.deepcopy``'s cost."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _lookup(namespace, name):
    if isinstance(namespace, dict):
        return namespace.get(name)
    return getattr(namespace, name, None)


def _as_array(value, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - any conversion failure is the target's
        raise ResultShapeError(f"{where} is {type(value).__name__}, not an array") from None
    if array.dtype.kind not in "fiub" or array.dtype == object:
        raise ResultShapeError(f"{where} is {type(value).__name__} of dtype {array.dtype}, not an array of numbers")
    return array if array.dtype in _FLOATS else array.astype(np.float64)


def _as_tree(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ResultShapeError(f"{where} is {type(value).__name__}, not a dict of arrays")
    return {str(key): _as_array(item, f"{where}[{key!r}]") for key, item in value.items()}


def _returned(value, count: int, function: str) -> tuple:
    """The first ``count`` values of a returned tuple (later ones are ignored); a function that returns one
    value returns it alone, never in a tuple (``return v,`` is a slip the caller's ``v = f(...)`` would keep)."""
    if count == 1:
        if isinstance(value, tuple):
            raise ResultShapeError(f"{function} returned a tuple of {len(value)}; expected one value, not a tuple")
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) < count:
        got = f"a {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, (tuple, list)) else "")
        raise ResultShapeError(f"{function} returned {got}; expected {count} values")
    return tuple(value[:count])


def _same(old, new) -> bool:
    """Whether an input array is as it was: the same bytes (fast), else equal values (NaN equal to NaN)."""
    if isinstance(new, np.ndarray) and new.dtype == old.dtype and new.shape == old.shape \
            and new.tobytes() == old.tobytes():
        return True
    return np.array_equal(old, new, equal_nan=True)


def _changed_inputs(before: dict, after: dict) -> list[str]:
    changed = []
    for key, old in before.items():
        new = after[key]
        if isinstance(old, dict):
            changed += [f"{key}[{k!r}]" for k in old if k not in new or not _same(old[k], new[k])]
        elif not _same(old, new):
            changed.append(key)
    return changed


#: What the init ops return, in order.
INIT_OUTPUTS = {"momentum.init": ("v",), "adam.init": ("v", "s"), "rmsprop.init": ("s",)}


def _non_float_entries(trees: dict) -> list[str]:
    """One problem when an init's entries are not floating point (int zeros break in-place updates, v *= beta)."""
    wrong = [(f"{name}[{key!r}]", value.dtype) for name, tree in trees.items() if isinstance(tree, dict)
             for key, value in tree.items() if getattr(value, "dtype", None) is not None and value.dtype.kind != "f"]
    if not wrong:
        return []
    (first, dtype), more = wrong[0], len(wrong) - 1
    others = f" (and {more} other entr{'ies' if more != 1 else 'y'})" if more else ""
    return [f"returned {first} of dtype {dtype}{others}: the zeros must be floating point (np.zeros(shape) or "
            "np.zeros_like(W)), or an in-place update such as v *= beta fails"]


def _shares_memory(v: dict, s: dict) -> bool:
    return v is s or any(
        isinstance(v.get(k), np.ndarray) and isinstance(s.get(k), np.ndarray) and np.shares_memory(v[k], s[k])
        for k in v)


class PythonAdapter:
    """The ops a Python namespace implements, callable by op name."""

    def __init__(self, namespace: Any, name: str = "python"):
        self.name = name
        self.functions: dict[str, Callable] = {}
        for op, names in FUNCTION_NAMES.items():
            for function_name in names:
                function = _lookup(namespace, function_name)
                if callable(function):
                    self.functions[op] = function
                    break
        self._seeded: tuple | None = None
        declared = _lookup(namespace, CONVENTIONS_ATTRIBUTE)
        self.conventions = dict(declared) if isinstance(declared, dict) else {}

    def _takes_seed(self, function: Callable) -> bool:
        """Whether ``random_mini_batches`` takes a seed (its signature read once, not at every call)."""
        if self._seeded is None or self._seeded[0] is not function:
            self._seeded = (function, _takes_seed(function))
        return self._seeded[1]

    @property
    def ops(self) -> list[str]:
        return [op for op in FUNCTION_NAMES if op in self.functions]

    def call(self, op: str, args: dict, owned: bool = False) -> tuple[dict, list[str]]:
        """Call ``op`` with ``args``; return ``(result, problems)``.

        The arguments are deep-copied first (unless ``owned``: arrays just decoded
        from the wire, which nobody else holds), so the caller's stay intact and a
        change the function makes to an input it must not change is reported.
        """
        function = self.functions[op]
        args = args if owned else _copied(args)
        watched = {key: _copied(args[key]) for key in UNCHANGED_INPUTS.get(op, ())}
        positional, keywords = _arguments(op, args)
        if op == "mini_batches" and not self._takes_seed(function):
            np.random.seed(args.get("seed", DEFAULT_SEED))
            positional, keywords = positional[:3], {}
        returned = function(*positional, **keywords)
        result = self._shape(op, returned, function.__name__)
        problems = [f"changed its input {key}" for key in _changed_inputs(watched, args)]
        if op in INIT_OUTPUTS:
            trees = _returned(returned, len(INIT_OUTPUTS[op]), function.__name__)
            problems += _non_float_entries(dict(zip(INIT_OUTPUTS[op], trees)))
        if op == "adam.init" and _shares_memory(*_returned(returned, 2, function.__name__)):
            problems.append("returned v and s that are the same object (or share memory)")
        return result, problems

    @staticmethod
    def _shape(op: str, returned, function: str) -> dict:
        if op == "mini_batches":
            if not isinstance(returned, (list, tuple)):
                raise ResultShapeError(f"{function} returned a {type(returned).__name__}, not a list of batches")
            batches = []
            for index, batch in enumerate(returned):
                x, y = _returned(batch, 2, f"{function} batch {index}")
                batches.append([_as_array(x, f"batch {index} X"), _as_array(y, f"batch {index} Y")])
            return {"batches": batches}
        if op == "momentum.init":
            (v,) = _returned(returned, 1, function)
            return {"v": _as_tree(v, "v")}
        if op == "adam.init":
            v, s = _returned(returned, 2, function)
            return {"v": _as_tree(v, "v"), "s": _as_tree(s, "s")}
        if op == "momentum.update":
            parameters, v = _returned(returned, 2, function)
            return {"parameters": _as_tree(parameters, "parameters"), "v": _as_tree(v, "v")}
        if op == "gd.update":
            (parameters,) = _returned(returned, 1, function)
            return {"parameters": _as_tree(parameters, "parameters")}
        if op == "rmsprop.init":
            (s,) = _returned(returned, 1, function)
            return {"s": _as_tree(s, "s")}
        if op == "rmsprop.update":
            parameters, s = _returned(returned, 2, function)
            return {"parameters": _as_tree(parameters, "parameters"), "s": _as_tree(s, "s")}
        if op in ("lr_decay.inverse_time", "lr_decay.scheduled"):
            if isinstance(returned, (tuple, list)):
                raise ResultShapeError(f"{function} returned a {type(returned).__name__} of {len(returned)}; "
                                       "expected one learning rate, not a sequence")
            value = _as_array(returned, "the learning rate")
            if value.size != 1:
                raise ResultShapeError(f"{function} returned {value.size} numbers; expected one learning rate")
            return {"learning_rate": value.reshape(())}
        parameters, v, s = _returned(returned, 3, function)
        return {"parameters": _as_tree(parameters, "parameters"), "v": _as_tree(v, "v"), "s": _as_tree(s, "s")}


#: The seed a seedless ``random_mini_batches`` runs under when the call gives none (the course's default).
DEFAULT_SEED = 0


def _arguments(op: str, args: dict) -> tuple[list, dict]:
    """The call's arguments in the course's order: positional up to the first one left out (its default
    applies), keywords after it."""
    names = ARGUMENTS[op]
    given = [name in args for name in names]
    cut = given.index(False) if False in given else len(names)
    return [args[name] for name in names[:cut]], {name: args[name] for name in names[cut:] if name in args}


def _takes_seed(function: Callable) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return True
    if "seed" in parameters:
        return True
    positional = [p for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4 or any(p.kind == p.VAR_POSITIONAL for p in parameters.values())
