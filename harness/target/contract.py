"""What every session promises: what the target said of itself (:class:`TargetInfo`), and how a call or a
whole target fails (:class:`CallFailed`, :class:`NotImplementedOp`, :class:`TargetError`)."""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field

from . import protocol

#: The exception types a hidden case may name: Python's own (a submission's own class could be named anything).
BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                               if isinstance(value, type) and issubclass(value, BaseException))
_RAISED = re.compile(r"^([A-Za-z_][\w.]*): ")


class TargetError(Exception):
    """The target cannot be used at all (exit code 2); the message is one line."""


class CallFailed(Exception):
    """One call failed: the target raised, crashed, hung or answered nonsense.

    ``withheld`` says the same for a hidden case: the grader's own words stay, and anything the target
    wrote (its exception's text, its output, a key it made up, how it ended) is left out. Which words are
    the grader's is decided here, where the failure is made, never from the text afterwards.
    """

    def __init__(self, message: str, withheld: str | None = None):
        super().__init__(message)
        self.withheld = message if withheld is None else withheld


def raised(message: str) -> CallFailed:
    """A failure in the target's own words (an exception it raised, an error its program sent): for a hidden
    case only the exception's type is kept, and only when it is one of Python's own."""
    name = _RAISED.match(message)
    kind = name.group(1) if name and name.group(1) in BUILTIN_EXCEPTIONS else "an exception"
    return CallFailed(message, f"{kind} was raised (hidden case: its message is withheld)")


def unreadable(message: str) -> CallFailed:
    """A failure to read the target's answer (a protocol error): its details may be the target's own."""
    return CallFailed(message, "protocol error: the answer could not be read (hidden case: its details are withheld)")


def ended(message: str) -> CallFailed:
    """The program ended during the call: its exit code or signal, and what it printed, may carry a value."""
    return CallFailed(message, "the program ended during the call (hidden case: how is withheld)")


class NotImplementedOp(Exception):
    """The target does not implement this op."""


@dataclass
class TargetInfo:
    name: str
    ops: list[str]
    conventions: dict
    protocol: str = protocol.PROTOCOL_VERSION
    warnings: list[str] = field(default_factory=list)
