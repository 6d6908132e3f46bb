"""Request lines already written, by what they hold.

A grading process sends every submission the same requests: a case's arguments are the
same read-only arrays each time (``checks.case_inputs``, the golden states of a
trajectory). So the text of a request, all but its id, is encoded once per distinct
request, and kept under a key made of what makes it: the op, the protocol version, and
the structure of its arguments, each scalar by type and value and each array by
identity. Only what cannot change is keyed by identity: arrays read-only and owning their
data, and sealed :class:`~.readonly.FrozenArgs` (a case's inputs, whole: one key however
many arrays they hold); the key keeps them alive, so nothing else can take their identity.
A request holding any other array is encoded afresh every time. At most :data:`MAX_BYTES` of text
is kept, the oldest forgotten first; a request longer than :data:`LONGEST` is never kept.
"""

from __future__ import annotations

import threading

import numpy as np

from . import protocol
from .readonly import FrozenArgs

#: The most bytes of request text kept, and the longest request kept.
MAX_BYTES = 64 << 20
LONGEST = 4 << 20

_bodies: dict[tuple, tuple[bytes, list]] = {}  # key -> (the request's text after its id, what is keyed by identity)
_kept = 0
_lock = threading.Lock()  # Dask runs several gradings in one process, a thread each


class _Unkeyable(Exception):
    """An argument whose content may change: its request is not kept."""


def request_line(request_id: int, op: str, binary: bool, args: dict | None = None, calls: list | None = None,
                 extra: dict | None = None, conventions: dict | None = None) -> bytes:
    """One request, a line of JSON: ``args`` of one call, or ``calls`` (``(op, args)`` pairs, version 2) with
    ``extra`` fields (a chain's ``carry``, ``start`` and ``init``); every array encoded (``binary``: as
    version 2's base64)."""
    parts = (op, binary, args, calls, extra, conventions)
    keyed: list = []
    try:
        key = _identity(parts, keyed)
    except _Unkeyable:
        return b'{"id":%d,' % request_id + _body(*parts)
    kept = _bodies.get(key)
    if kept is None:
        body = _body(*parts)
        if len(body) > LONGEST:  # a layer of millions of numbers: sent, never held on to
            return b'{"id":%d,' % request_id + body
        kept = _keep(key, body, keyed)
    return b'{"id":%d,' % request_id + kept[0]


def forget() -> None:
    """Forget every request (for the tests)."""
    global _kept
    with _lock:
        _bodies.clear()
        _kept = 0


def _body(op, binary, args, calls, extra, conventions) -> bytes:
    message = {"op": op}
    if binary:
        message["protocol"] = protocol.PROTOCOL_V2
    if args is not None:
        message["args"] = protocol.encode_args(args, binary)
    if calls is not None:
        message["calls"] = [{"op": name, "args": protocol.encode_args(call_args, True)} for name, call_args in calls]
    for key, value in (extra or {}).items():
        message[key] = protocol.encode_args(value, True) if key == "start" else value
    if conventions:
        message["conventions"] = conventions
    return protocol.dumps(message).encode()[1:]  # the text after "{": the id goes first


def _sealed(value) -> bool:
    """Arguments that can never change (:class:`FrozenArgs`, sealed): keyed by identity alone."""
    return type(value) is FrozenArgs and value.sealed


def _identity(value, keyed: list):
    """A hashable key that two values share only if they encode to the same text."""
    if _sealed(value):
        keyed.append(value)
        return ("args", id(value))
    if type(value) is list and all(type(call) is tuple and len(call) == 2 and type(call[0]) is str
                                   and _sealed(call[1]) for call in value):
        keyed += [args for _, args in value]  # a batch of a case's calls, each sealed: one short key
        return ("calls", tuple((op, id(args)) for op, args in value))
    if isinstance(value, np.ndarray):
        if value.flags.writeable or value.base is not None:
            raise _Unkeyable
        keyed.append(value)
        return ("array", id(value))
    if isinstance(value, dict):
        return ("dict", tuple((key, _identity(item, keyed)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_identity(item, keyed) for item in value))
    if isinstance(value, (float, np.floating)):  # by its bits: 0.0 and -0.0 are equal, and encode apart
        return (type(value).__name__, float(value).hex())
    if value is None or isinstance(value, (str, int, bool, np.integer)):
        return (type(value).__name__, value)
    raise _Unkeyable


def _keep(key: tuple, body: bytes, keyed: list) -> tuple[bytes, list]:
    global _kept
    with _lock:
        kept = _bodies.setdefault(key, (body, keyed))
        if kept[0] is body:
            _kept += len(body)
            while _kept > MAX_BYTES:
                _kept -= len(_bodies.pop(next(iter(_bodies)))[0])
    return kept
