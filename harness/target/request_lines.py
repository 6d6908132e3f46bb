"""Request lines already written, by what they hold.

A grading process sends every submission the same requests: a case's arguments are the
same read-only arrays each time (``checks.case_inputs``, the golden states of a
trajectory). So the text of a request, all but its id, is encoded once per distinct
request, and kept under a key made of what makes it: the op, the protocol version, and
the structure of its arguments, each scalar by type and value and each array by
identity. Only arrays that cannot change are keyed by identity (read-only, owning their
data; the key keeps them alive, so no other array can take their identity); a request
holding any other array is encoded afresh every time. At most :data:`MAX_BYTES` of text
is kept, the oldest forgotten first; a request longer than :data:`LONGEST` is never kept.
"""

from __future__ import annotations

import threading

import numpy as np

from . import protocol

#: The most bytes of request text kept, and the longest request kept.
MAX_BYTES = 64 << 20
LONGEST = 4 << 20

_bodies: dict[tuple, tuple[bytes, list]] = {}  # key -> (the request's text after its id, the arrays keyed)
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
    arrays: list = []
    try:
        key = _identity(parts, arrays)
    except _Unkeyable:
        return b'{"id":%d,' % request_id + _body(*parts)
    kept = _bodies.get(key)
    if kept is None:
        body = _body(*parts)
        if len(body) > LONGEST:  # a layer of millions of numbers: sent, never held on to
            return b'{"id":%d,' % request_id + body
        kept = _keep(key, body, arrays)
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


def _identity(value, arrays: list):
    """A hashable key that two values share only if they encode to the same text."""
    if isinstance(value, np.ndarray):
        if value.flags.writeable or value.base is not None:
            raise _Unkeyable
        arrays.append(value)
        return ("array", id(value))
    if isinstance(value, dict):
        return ("dict", tuple((key, _identity(item, arrays)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_identity(item, arrays) for item in value))
    if isinstance(value, (float, np.floating)):  # by its bits: 0.0 and -0.0 are equal, and encode apart
        return (type(value).__name__, float(value).hex())
    if value is None or isinstance(value, (str, int, bool, np.integer)):
        return (type(value).__name__, value)
    raise _Unkeyable


def _keep(key: tuple, body: bytes, arrays: list) -> tuple[bytes, list]:
    global _kept
    with _lock:
        kept = _bodies.setdefault(key, (body, arrays))
        if kept[0] is body:
            _kept += len(body)
            while _kept > MAX_BYTES:
                _kept -= len(_bodies.pop(next(iter(_bodies)))[0])
    return kept
