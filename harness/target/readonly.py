"""Values that never change: arrays made read-only, and the decoded answers a grading process shares.

Golden inputs and states, and the answers a grading process has already read, are
handed to many cases and many submissions; they are made read-only so that no one
of them can change what another sees.
"""

from __future__ import annotations

import numpy as np


class FrozenResult(dict):
    """A decoded result that never changes (its arrays read-only, its keys fixed): the answers a grading
    process has already read (:mod:`.answers`) are handed out as these, to every submission that sent the
    same bytes, so each case remembers how the last few of them compared instead of comparing again."""


class FrozenArgs(dict):
    """Call arguments that never change: a case's inputs and golden states, made once (:func:`frozen_args`) and
    sent to every submission. Nothing can be set or removed, and what it holds cannot change either when
    :attr:`sealed` (every value a number, a string, a read-only array owning its data, or sealed FrozenArgs), so
    a request holding it can be known by its identity (:mod:`.request_lines`)."""

    sealed = False

    def _refuse(self, *args, **kwargs):
        raise TypeError("these arguments are shared and read-only: copy them to change them")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


def _sealed_value(value) -> bool:
    if isinstance(value, np.ndarray):
        return not value.flags.writeable and value.base is None
    if type(value) is FrozenArgs:
        return value.sealed
    return value is None or isinstance(value, (str, int, float, bool, np.integer, np.floating))


def frozen_args(value: dict) -> FrozenArgs:
    """``value`` as :class:`FrozenArgs`, its dicts (through dicts and lists) too, every array read-only."""
    def freeze(item):
        if type(item) is FrozenArgs:
            return item
        if isinstance(item, dict):
            return frozen_args(item)
        if isinstance(item, list):
            return [freeze(x) for x in item]
        return frozen(item)

    args = FrozenArgs({key: freeze(item) for key, item in value.items()})
    args.sealed = all(_sealed_value(item) for item in args.values())
    return args


def frozen(value):
    """``value`` with every array in it (through dicts and lists) made read-only."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, dict):
        for item in value.values():
            frozen(item)
    elif isinstance(value, list):
        for item in value:
            frozen(item)
    return value
