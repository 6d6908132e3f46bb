"""The child process: a Python target served over the wire protocol.

``python -m optconform.harness.target.child TARGET`` loads a ``.py`` file, a notebook or
a module and answers wire-protocol requests on its original stdin/stdout. Before
any of the target's code runs, the protocol's file descriptors are set aside:
the target's prints go to stderr and its ``input()`` reads an empty stdin, so
nothing it does corrupts the protocol. It never sees expected outputs: only
the arguments of each call cross the wire.
"""

from __future__ import annotations

import os
import sys
import time

#: How long a finished answer may wait to travel with the next ones of its request (see :class:`_Output`).
FLUSH_AFTER = 0.02


def _set_aside_protocol_streams():
    """Keep private copies of fds 0 and 1 for the protocol; point 0 at /dev/null and 1 at stderr."""
    protocol_in = os.fdopen(os.dup(0), "rb")  # buffered: an unbuffered readline reads a byte per syscall
    protocol_out = _Output(os.dup(1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr
    return protocol_in, protocol_out


class _Output:
    """The protocol's output: each answer leaves when its request is done, or once it has waited
    :data:`FLUSH_AFTER` seconds, whichever comes first; until then the answers of a batch travel together.

    A write, and a wake of the grader, per answer (some four hundred a submission) cost a class 3% to 10% of
    its CPU in alternating runs, the more the busier the machine. A watcher thread sends what has waited too
    long, so a call that hangs holds back no answer before it, unless it hangs inside C code that never lets
    the interpreter switch threads. A call that ends the program may take the last few answers with it; the
    grader then makes those calls again, one at a time, so the failure still lands on the call that caused it.
    """

    def __init__(self, fd: int):
        import threading

        self._fd = fd
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._since = 0.0  # when the call of the oldest pending answer started
        self._watcher = None

    def write(self, line: str, more: bool = False, started: float | None = None) -> None:
        """Send ``line`` now, or (``more``: its request has further answers) keep it a while with the ones after
        it; ``started``: when its call started (a slow call's answer leaves at once)."""
        with self._lock:
            if not self._pending:
                self._since = time.monotonic() if started is None else started
            self._pending.append(line.encode("utf-8"))
            if not more or time.monotonic() - self._since >= FLUSH_AFTER:
                self._send()
                return
        if self._watcher is None:
            import threading
            import weakref

            self._watcher = threading.Thread(target=_watch, args=(weakref.ref(self),), name="optconform-output",
                                             daemon=True)
            self._watcher.start()

    def _send(self) -> None:
        """Write every pending answer (the lock held)."""
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        while data:
            data = data[os.write(self._fd, data):]


def _watch(output_ref) -> None:
    """The watcher of an :class:`_Output`: sends what has waited :data:`FLUSH_AFTER`, as long as the output
    lives (a weak reference: the thread ends with it)."""
    try:
        while True:
            time.sleep(FLUSH_AFTER / 2)
            output = output_ref()
            if output is None:
                return
            with output._lock:
                if output._pending and time.monotonic() - output._since >= FLUSH_AFTER:
                    output._send()
            del output
    except OSError:  # the grader has gone: the serving thread finds out at its next answer
        return


def _limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    for limit, value in ((resource.RLIMIT_AS, memory_mb * 1024 * 1024), (resource.RLIMIT_CPU, cpu_seconds)):
        if value > 0:
            soft, hard = resource.getrlimit(limit)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            try:
                resource.setrlimit(limit, (value, hard))
            except (ValueError, OSError):
                pass


def _trimmed_traceback(error: BaseException, target_file: str | None) -> str:
    """One line: the exception and the innermost frame in the target's own code."""
    import traceback  # here: most children never need it, and its import costs milliseconds at every start

    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if target_file and (f.filename == target_file or os.path.basename(target_file) in f.filename)]
    frame = own[-1] if own else (frames[-1] if frames else None)
    where = f" (at {os.path.basename(frame.filename)}:{frame.lineno}, in {frame.name})" if frame else ""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r}){where}"
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = text.replace("\n", " ")
    return f"{text[:300]}{where}"


def serve(adapter, protocol_in, protocol_out, target_file: str | None = None, load_warnings=()) -> None:
    """Answer requests until ``shutdown`` or end of input (``protocol_out``: an :class:`_Output`, or any text
    stream, which gets each answer written and flushed on its own)."""
    from . import protocol

    def reply(message, more: bool = False, started: float | None = None):
        if type(protocol_out) is _Output:
            protocol_out.write(protocol.dumps(message), more, started)
        else:
            protocol_out.write(protocol.dumps(message))
            protocol_out.flush()

    for raw in protocol_in:
        if not raw.strip():
            continue
        try:
            request = protocol.parse_line(raw, "request")
            protocol.validate_request(request)
        except protocol.ProtocolError as error:
            reply({"id": None, "ok": False, "error": str(error)})
            continue
        rid, op = request["id"], request["op"]
        if op == "shutdown":
            reply({"id": rid, "ok": True, "result": {}})
            return
        if op == "hello":
            reply({"id": rid, "ok": True, "result": {
                "name": adapter.name, "protocol": protocol.PROTOCOL_VERSION, "accepts": [protocol.PROTOCOL_V2],
                "ops": adapter.ops,
                "conventions": adapter.conventions, "warnings": list(load_warnings)}})
            continue
        binary = request.get("protocol") == protocol.PROTOCOL_V2
        if op == "batch":  # version 2: several calls, each answered on its own line (sent in bursts: _Output)
            last = len(request["calls"]) - 1
            for index, call in enumerate(request["calls"]):
                started = time.monotonic()
                reply({"id": rid, "index": index, **_answer(adapter, call["op"], call.get("args", {}), binary,
                                                            target_file)}, index < last, started)
            continue
        if op == "chain":  # version 2: steps that carry the program's own state, answered a line each
            for answer in _chain(adapter, request, binary, target_file):  # made whole, sent in one write
                reply({"id": rid, **answer}, not answer.get("last"))
            continue
        reply({"id": rid, **_answer(adapter, op, request.get("args", {}), binary, target_file)})


def _chain(adapter, request: dict, binary: bool, target_file: str | None):
    """The answers of a chain: the init call (when asked), then each step, its ``carry`` keys taken from the
    answer before (``start`` gives the first step's when there is no init). It stops after an answer that
    failed, whose problems end an init, or that lacks a carried key; the last answer says ``"last": true``."""
    from . import protocol

    carry, answers = request["carry"], []
    state = protocol.decode_args("chain", request.get("start", {}))
    calls = ([{"op": request["init"], "args": {"parameters": request["start"]["parameters"]}}]
             if request.get("init") else []) + request["calls"]
    for index, call in enumerate(calls):
        is_init = index == 0 and bool(request.get("init"))
        args = protocol.decode_args(call["op"], call.get("args", {}))
        if not is_init:
            args.update({key: state[key] for key in carry})
        answer, result = _answer(adapter, call["op"], args, binary, target_file, decoded=True)
        answers.append({"index": index, **answer})
        if not answer["ok"] or (is_init and answer.get("problems")):
            break
        if is_init:
            state.update(result)
            if not all(key in state for key in carry):
                break
        elif not all(key in result for key in carry):
            break
        else:
            state = {key: result[key] for key in carry}
    answers[-1]["last"] = True
    return answers


def _answer(adapter, op: str, args: dict, binary: bool, target_file: str | None, decoded: bool = False):
    """One call's answer: ``{"ok": true, "result": ..., "problems": [...]}`` or ``{"ok": false, "error": ...}``
    (with ``decoded``: the arguments are Python values already, and the answer comes with the result itself)."""
    from . import protocol
    from .adapter import ResultShapeError

    result = None
    if op not in adapter.ops:
        answer = {"ok": False, "error": f"{op} is not implemented"}
        return (answer, result) if decoded else answer
    try:
        result, problems = adapter.call(op, args if decoded else protocol.decode_args(op, args), owned=not decoded)
        answer = {"ok": True, "result": protocol.encode_result(op, result, binary)}
        if problems:
            answer["problems"] = problems
        return (answer, result) if decoded else answer
    except ResultShapeError as error:  # what the function returned, not where in the harness that was noticed
        answer = {"ok": False, "error": str(error)[:400]}
    except BaseException as error:  # noqa: BLE001 - whatever the target does is reported, not fatal
        if isinstance(error, KeyboardInterrupt):
            raise
        answer = {"ok": False, "error": _trimmed_traceback(error, target_file)}
    return (answer, None) if decoded else answer


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m optconform.harness.target.child TARGET [--sys-path DIR]", file=sys.stderr)
        return 2
    target = argv[0]
    if argv[1:2] == ["--sys-path"] and len(argv) > 2:
        sys.path.insert(0, argv[2])
    protocol_in, protocol_out = _set_aside_protocol_streams()
    _limit_resources(int(os.environ.get("OPTCONFORM_MEMORY_MB", "2048")),
                     int(os.environ.get("OPTCONFORM_CPU_SECONDS", "600")))
    from . import protocol
    from .adapter import PythonAdapter
    from .loader import LoadError, is_file_target, load_module_target, load_source

    target_file, warnings = None, []
    try:
        if is_file_target(target):
            namespace, warnings = load_source(target)
            target_file = os.path.abspath(target)
        else:
            namespace = load_module_target(target)
        adapter = PythonAdapter(namespace, name=os.path.basename(target))
    except (LoadError, Exception) as error:  # noqa: BLE001 - reported to the harness, one line
        message = str(error) if isinstance(error, LoadError) else _trimmed_traceback(error, None)
        for raw in protocol_in:
            try:
                rid = protocol.parse_line(raw).get("id")
            except protocol.ProtocolError:
                rid = None
            protocol_out.write(protocol.dumps({"id": rid, "ok": False, "error": message}))
            break
        return 3
    _settle_memory()
    serve(adapter, protocol_in, protocol_out, target_file, warnings)
    return 0


def _settle_memory() -> None:
    """Everything loaded so far (NumPy, the submission's definitions) lives as long as the process: the cyclic
    garbage collector need never walk it again, and may wait for more garbage before each pass (a few
    milliseconds a submission, of some four hundred calls that each allocate arrays and dicts)."""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


if __name__ == "__main__":
    sys.exit(main())
