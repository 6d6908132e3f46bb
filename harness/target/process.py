"""A program speaking the wire protocol: a ``--cmd``, or the child server of a file or notebook.

:class:`ProcessSession` restarts the program whenever a call leaves it unusable (a crash,
a hang, a desynchronised stream), within caps on consecutive timeouts, restarts and
seconds, so one bad case never costs the others.
"""

from __future__ import annotations

import collections
import functools
import tempfile
import time

from . import answers, protocol
from .contract import CallFailed, NotImplementedOp, TargetError, TargetInfo, ended, raised, unreadable
from .program import Program, Started, sandbox_environment
from .request_lines import request_line
from .staging import DEFAULT_MEMORY_MB, Launch, apply_limits

MAX_CONSECUTIVE_TIMEOUTS = 3
#: A program may be restarted this many times in all (after crashes and timeouts) ...
MAX_RESTARTS = 20
#: ... and spend this many seconds in all (start-up and calls), before its remaining calls fail at once.
MAX_SECONDS = 300.0



class ProcessSession:
    """A program speaking the wire protocol, restarted whenever a call leaves it unusable."""

    def __init__(self, argv: list[str], name: str, timeout: float = 10.0, sandbox: bool = True,
                 start_timeout: float | None = None, launch: Launch | None = None, warnings: list[str] | None = None,
                 memory_mb: int | None = None):
        """``sandbox``: a scrubbed environment and a scratch working directory. ``launch``: the child is started
        by a sandbox engine (:mod:`.sandbox`), under its resource limits, its ``argv`` replacing ``argv``."""
        self.launch = launch
        self.argv = launch.argv if launch else argv
        self.timeout, self.sandbox = timeout, sandbox
        self.memory_mb = memory_mb
        self.extra_warnings = list(warnings or [])
        self.start_timeout = start_timeout if start_timeout is not None else max(timeout, 30.0)
        self.display_name = name
        self.program: Program | None = None

        self.binary = False  # version 2 (base64 arrays), once the program's hello accepts it
        self._next_id = 0
        self._scratch = tempfile.TemporaryDirectory(prefix="optconform-")
        #: Calls in a row, per op, that ended the program (a timeout, a crash, an exit): after
        #: MAX_CONSECUTIVE_TIMEOUTS an op's calls fail at once, so one hanging or crashing function costs
        #: a few restarts, not one per case. Over the whole session, MAX_RESTARTS and MAX_SECONDS cap it.
        self.timeouts: collections.Counter = collections.Counter()
        self.crashes: collections.Counter = collections.Counter()
        self.restarts = 0
        self.unsure_restarts = 0  # restarts after a batch's program ended, before the failing call was known
        self.started = time.monotonic()
        self.info = self._start(first=True)

    # ------------------------------------------------------------ process

    def _spawn(self) -> None:
        warm = self.launch.spawn() if self.launch is not None else None
        if warm is not None:
            self.program = Program(warm, self.display_name, line_limit=protocol.MAX_LINE_BYTES)
            return
        env = None
        if self.sandbox:
            env = sandbox_environment(self._scratch.name)
            if self.memory_mb:
                env["OPTCONFORM_MEMORY_MB"] = str(self.memory_mb)
        options = {"cwd": self._scratch.name if self.sandbox else None, "env": env}
        if self.launch is not None:
            options |= self.launch.popen
            options["preexec_fn"] = functools.partial(apply_limits, self.memory_mb or DEFAULT_MEMORY_MB)
        self.program = Program(Started(self.argv, self.display_name, **options), self.display_name,
                               line_limit=protocol.MAX_LINE_BYTES,
                               shifted_exit_codes=bool(self.launch and self.launch.shifted_exit_codes))

    def _kill(self) -> None:
        program, self.program = self.program, None
        if program is not None:
            program.kill()
            if self.launch is not None:  # whatever the program left running or wrote is gone before a result
                self.launch.after_exit()

    def _start(self, first: bool = False) -> TargetInfo:
        self._spawn()
        try:
            result = self._request("hello", None, self.start_timeout)["result"]
            protocol.validate_hello(result)
        except _Refused as refusal:
            self._kill()
            raise TargetError(str(refusal)) from None
        except (CallFailed, protocol.ProtocolError) as error:
            self._kill()
            raise TargetError(f"{self.display_name}: {'no' if first else 'no longer a'} usable hello: {error}") from None
        self.binary = protocol.PROTOCOL_V2 in (result.get("accepts") or [])
        return TargetInfo(result["name"], list(result["ops"]), dict(result.get("conventions", {})),
                          protocol.PROTOCOL_V2 if self.binary else result.get("protocol", "unversioned"),
                          self.extra_warnings + list(result.get("warnings", [])))

    def _restart(self) -> None:
        self._kill()
        try:
            self._start()
        except TargetError:
            self.program = None

    def _send(self, op: str, args: dict | None, timeout: float, conventions: dict | None = None,
              calls: list | None = None, extra: dict | None = None) -> int:
        """Write one request (Python values: see :func:`.request_lines.request_line`); its id. CallFailed when
        the program cannot take it."""
        if self.program is None:
            raise CallFailed("the program could not be restarted after an earlier failure")
        self._next_id += 1
        request = request_line(self._next_id, op, self.binary, args, calls, extra, conventions)
        self.program.line_limit = max(protocol.MAX_LINE_BYTES, protocol.ANSWER_TO_REQUEST * len(request))
        try:
            self.program.write(request, time.monotonic() + timeout)
        except (TimeoutError, BrokenPipeError, ConnectionResetError) as error:
            raise self._lost(error, timeout) from None
        return self._next_id

    def _receive(self, request_id: int, timeout: float) -> dict:
        """The next answer to request ``request_id``, within ``timeout``; CallFailed says why not."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self.program.read_line(deadline)
                if line.strip():
                    break
            response = answers.response(line)
        except (TimeoutError, EOFError, BrokenPipeError, ConnectionResetError) as error:
            raise self._lost(error, timeout) from None
        except protocol.ProtocolError as error:
            raise unreadable(f"protocol error: {error}") from None
        if response["id"] != request_id:
            raise unreadable(f"protocol error: answered id {response['id']!r} to request id {request_id}")
        return response

    def _lost(self, error: Exception, timeout: float) -> CallFailed:
        """What a request or its answer that could not get through says: it timed out, or the program ended."""
        if isinstance(error, TimeoutError):
            return _TimedOut(f"no answer within {timeout:g} s (timed out; the program was restarted)")
        failure = ended(f"the program {self.program.exit_status()} during the call{self.program.stdout_hint()}"
                        f"{self.program.stderr_hint()}")
        return _Ended(str(failure), failure.withheld)

    def _request(self, op: str, args: dict | None, timeout: float, conventions: dict | None = None) -> dict:
        """Send one request and return its response, which succeeded; CallFailed says why not."""
        response = self._receive(self._send(op, args, timeout, conventions), timeout)
        if not response["ok"]:
            raise _Refused(response["error"].strip().splitlines()[0][:400] if response["error"].strip() else "error")
        return response

    def _count_failure(self, op: str, failure: CallFailed) -> None:
        """A call that ended or lost the program: count it against ``op`` and restart (within the caps)."""
        timed_out = isinstance(failure, _TimedOut)
        self.timeouts[op] = self.timeouts[op] + 1 if timed_out else 0
        self.crashes[op] = 0 if timed_out else self.crashes[op] + 1
        self.restarts += 1
        if self.restarts <= MAX_RESTARTS and not self._out_of_time():
            self._restart()
        else:
            self._kill()

    # ------------------------------------------------------------ public

    def call(self, op: str, args: dict, conventions: dict | None = None) -> tuple[dict, list[str]]:
        if op not in self.info.ops:
            raise NotImplementedOp(op)
        self._refuse_past_caps(op)
        try:
            response = self._request(op, args, self._call_limit(), conventions)
        except _Refused as refusal:
            self.timeouts[op] = self.crashes[op] = 0
            raise refusal.as_failure() from None
        except CallFailed as failure:
            self._count_failure(op, failure)
            raise
        self.timeouts[op] = self.crashes[op] = 0
        try:
            return answers.result(op, response), response.get("problems", [])
        except protocol.ProtocolError as error:
            raise unreadable(str(error)) from None

    def call_many(self, calls: list[tuple[str, dict]], conventions: dict | None = None,
                  sequence: bool = False) -> list:
        """Each call's ``(result, problems)``, or the exception it raised, in order (see :meth:`call_stream`)."""
        return list(self.call_stream(calls, conventions, sequence))

    def call_stream(self, calls: list[tuple[str, dict]], conventions: dict | None = None,
                    sequence: bool = False):
        """Yield each call's ``(result, problems)``, or the exception it raised, in order, as it arrives.

        A program that speaks version 2 gets the calls in one ``batch`` request and answers
        each on its own line as it completes, so the caller can check one answer while the
        program computes the next, and every call keeps its own time limit: a call that
        hangs, crashes or garbles its answer fails as it would alone (counted, the program
        restarted), and the calls after it are made one by one. When the program ends before
        an answer that may have gone down with a later call's crash, that call is made again
        alone, first (:meth:`_unsure_of`). ``sequence``: the calls are
        steps of one case, useless after the first that fails; the rest are then not made.
        Nothing else may be sent to the session until the stream is exhausted.
        """
        done, last = 0, None
        ops = [op for op, _ in calls]
        if len(calls) > 1 and self._can_take_many(ops):
            for last in self._many("batch", ops, conventions, calls):
                done += 1
                yield last
        for op, args in calls[done:]:
            if sequence and isinstance(last, Exception):
                last = CallFailed("not run: an earlier step failed")
            else:
                last = self._one(op, args, conventions)
            yield last

    def call_chain(self, init: str | None, start: dict, calls: list[tuple[str, dict]], carry: list[str],
                   conventions: dict | None = None) -> list | None:
        """Run steps that carry the program's own state in one ``chain`` request (version 2): the ``init``
        call on ``start["parameters"]`` (or ``start`` as the first state), then each call with its ``carry``
        keys taken from the answer before. Returns the answers as :meth:`call_many` does, up to the one the
        program marked last; None when the program cannot take a chain (the caller then steps one by one)."""
        ops = ([init] if init else []) + [op for op, _ in calls]
        if not self._can_take_many(ops):
            return None
        extra = {"carry": carry, "start": start, **({"init": init} if init else {})}
        return list(self._many("chain", ops, conventions, calls, extra, stop_at_last=True))

    def _can_take_many(self, ops: list[str]) -> bool:
        """Whether several calls may go in one version-2 request: the program speaks it, is running, has time
        left, implements every op, and none of them has just timed out or crashed."""
        return (self.binary and self.program is not None and not self._out_of_time()
                and all(op in self.info.ops and not (self.timeouts[op] or self.crashes[op]) for op in ops))

    def _many(self, kind: str, ops: list[str], conventions: dict | None, calls: list, extra: dict | None = None,
              stop_at_last: bool = False):
        """Send one version-2 request of several calls (``kind``: batch or chain) and yield each answer, in
        order, as it arrives: ``(result, problems)`` or the exception. Each answer has a call's time limit; a
        call that hangs, crashes or garbles its answer is counted against its op (the program restarted), and
        nothing more is read. With ``stop_at_last``, reading also ends at the answer marked last."""
        try:
            request_id = self._send(kind, None, self.timeout, conventions, calls=calls, extra=extra)
        except CallFailed as failure:
            self._count_failure(ops[0], failure)
            yield failure
            return
        for index, op in enumerate(ops):
            if self._out_of_time():  # the submission's budget holds inside a batch too
                self._kill()
                yield CallFailed(f"not run: the program used up its {MAX_SECONDS:g} s in all")
                return
            try:
                answer = self._receive(request_id, self._call_limit())
                if answer.get("index") != index:
                    raise unreadable(f"protocol error: answer {answer.get('index')!r} of a {kind} where {index} "
                                     "was due")
            except CallFailed as failure:
                if kind == "batch" and index < len(ops) - 1 and self._unsure_of(failure):
                    return  # the rest, this call first, are made one by one (see call_stream)
                self._count_failure(op, failure)
                yield failure
                return
            self.timeouts[op] = self.crashes[op] = 0
            yield self._answered(op, answer)
            if stop_at_last and answer.get("last"):
                return

    def _unsure_of(self, failure: CallFailed) -> bool:
        """Whether a batch's program that ended before answer n may have ended in a later call: the child
        server sends a batch's answers in bursts (:class:`.child._Output`), so the last few may have gone down
        with it. Then the program is restarted, nothing counted against any op, and the calls from answer n on
        are made one at a time, where a crash is its own call's. A program that keeps doing this (at most
        MAX_RESTARTS times) has its failures counted where they land."""
        if not isinstance(failure, _Ended) or self.unsure_restarts >= MAX_RESTARTS or self._out_of_time():
            return False
        self.unsure_restarts += 1
        self._restart()
        return True

    def _answered(self, op: str, answer: dict):
        if not answer["ok"]:
            error = answer["error"].strip()
            return raised(error.splitlines()[0][:400] if error else "error")
        try:
            return answers.result(op, answer), answer.get("problems", [])
        except protocol.ProtocolError as error:
            return unreadable(str(error))

    def _one(self, op: str, args: dict, conventions: dict | None):
        try:
            return self.call(op, args, conventions)
        except (CallFailed, NotImplementedOp) as error:
            return error

    def _out_of_time(self) -> bool:
        return time.monotonic() - self.started > MAX_SECONDS

    def _call_limit(self) -> float:
        """A call's time limit: its own, or what is left of the program's budget, whichever is less."""
        return max(0.01, min(self.timeout, MAX_SECONDS - (time.monotonic() - self.started)))

    def _refuse_past_caps(self, op: str) -> None:
        """Fail a call at once when the op keeps hanging or crashing, or the program's budget is spent."""
        if self.timeouts[op] >= MAX_CONSECUTIVE_TIMEOUTS:
            raise CallFailed(f"not run: {op} timed out {self.timeouts[op]} times in a row "
                             f"(limit {self.timeout:g} s per call)")
        if self.crashes[op] >= MAX_CONSECUTIVE_TIMEOUTS:
            raise CallFailed(f"not run: {op} ended the program {self.crashes[op]} times in a row")
        if self.restarts > MAX_RESTARTS:
            raise CallFailed(f"not run: the program was restarted {MAX_RESTARTS} times, its limit")
        if self._out_of_time():
            raise CallFailed(f"not run: the program used up its {MAX_SECONDS:g} s in all")

    def close(self) -> None:
        # Our own child server has nothing to flush: it is killed at once (its interpreter's teardown, with
        # NumPy and whatever a submission imported, costs tens of milliseconds). A --cmd program is asked to
        # shut down, and given two seconds to.
        if self.program is not None and not self.sandbox and self.program.running():
            try:
                self._next_id += 1
                self.program.write(protocol.dumps({"id": self._next_id, "op": "shutdown"}).encode(), time.monotonic() + 2)
                self.program.close_input()
                self.program.await_exit(time.monotonic() + 2)
            except (OSError, ValueError, TimeoutError):
                pass
        self._kill()
        if self.launch is not None:
            self.launch.close()
        self._scratch.cleanup()


class _Refused(CallFailed):
    """The program answered ``ok: false``: the call failed, but the program is fine."""

    def as_failure(self) -> CallFailed:
        return raised(str(self))


class _Ended(CallFailed):
    """The program ended, or closed its output, while an answer was due."""


class _TimedOut(CallFailed):
    """No answer within the time limit: the program was restarted."""
