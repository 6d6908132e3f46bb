"""Answers already read, by their exact bytes.

A class's correct submissions mostly compute the same bits in the same order: of the
23,188 answer lines 60 real submissions of the course sent (``--ops
mini_batches,momentum,adam``), 86% were byte for byte a line an earlier one had sent. So a
grading process parses, checks and decodes each distinct answer line once: a line seen
again gets the response and the decoded result made the first time.

That changes no verdict. Parsing, checking and decoding are pure functions of the
line's bytes (and of the op, for a result), so a line gets exactly what it would get
read afresh, whoever sent it first; nothing a submission sends can change what another's
line decodes to. Decoded arrays are shared, so they are made read-only (whether shared
yet or not: one rule for every answer), and a kept line's result is a
:class:`~.compare.FrozenResult`, whose comparisons each case remembers. At most :data:`MAX_BYTES` of lines are kept,
the oldest forgotten first; a line longer than :data:`LONGEST` is never kept.
"""

from __future__ import annotations

import threading

from . import protocol
from .readonly import FrozenResult, frozen

#: The most bytes of answer lines kept, and the longest line kept.
MAX_BYTES = 64 << 20
LONGEST = 4 << 20


class _Entry:
    __slots__ = ("line", "response", "results")

    def __init__(self, line: bytes, response: dict):
        self.line, self.response, self.results = line, response, {}


_by_line: dict[bytes, _Entry] = {}
_by_response: dict[int, _Entry] = {}  # id of a kept response -> its entry (the entry keeps the id taken)
_kept = 0
_lock = threading.Lock()  # Dask runs several gradings in one process, a thread each


def response(line: bytes) -> dict:
    """The response on ``line``, parsed and checked against the protocol (ProtocolError if it is not one)."""
    entry = _by_line.get(line)
    if entry is not None:
        return entry.response
    message = protocol.parse_line(line, "the program's answer")
    protocol.validate_response(message)
    if len(line) <= LONGEST:
        _keep(line, message)
    return message


def result(op: str, message: dict) -> dict:
    """The decoded, read-only result of ``op`` in a response from :func:`response` (ProtocolError if it does
    not decode)."""
    entry = _by_response.get(id(message))
    if entry is None or entry.response is not message:  # a line too long to keep
        return frozen(protocol.decode_result(op, message["result"]))
    decoded = entry.results.get(op)
    if decoded is None:  # kept, and handed to every submission that sends the line: frozen
        decoded = entry.results[op] = FrozenResult(frozen(protocol.decode_result(op, message["result"])))
    return decoded


def forget() -> None:
    """Forget every answer (for the tests)."""
    global _kept
    with _lock:
        _by_line.clear()
        _by_response.clear()
        _kept = 0


def _keep(line: bytes, message: dict) -> None:
    global _kept
    with _lock:
        if line in _by_line:
            return
        entry = _by_line[line] = _by_response[id(message)] = _Entry(line, message)
        _kept += len(entry.line)
        while _kept > MAX_BYTES:
            oldest = _by_line.pop(next(iter(_by_line)))
            del _by_response[id(oldest.response)]
            _kept -= len(oldest.line)
