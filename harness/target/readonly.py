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
