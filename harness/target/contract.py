"""What every session promises: what the target said of itself (:class:`TargetInfo`), and how a call or a
whole target fails (:class:`CallFailed`, :class:`NotImplementedOp`, :class:`TargetError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import protocol


class TargetError(Exception):
    """The target cannot be used at all (exit code 2); the message is one line."""


class CallFailed(Exception):
    """One call failed: the target raised, crashed, hung or answered nonsense."""


class NotImplementedOp(Exception):
    """The target does not implement this op."""


@dataclass
class TargetInfo:
    name: str
    ops: list[str]
    conventions: dict
    protocol: str = protocol.PROTOCOL_VERSION
    warnings: list[str] = field(default_factory=list)
