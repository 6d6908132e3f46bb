"""Sessions: a live connection to a target, one call per op.

:class:`InProcessSession` calls a trusted module's functions directly;
:class:`ProcessSession` talks the wire protocol to a program (a ``--cmd``, or the
child process that serves a file or notebook). Both offer the same two things:
``info`` (what the target said in ``hello``) and ``call(op, args)``.

A call that fails raises :class:`CallFailed` with a one-line reason; the session
stays usable (a program that died or desynchronised is restarted), so the other
cases still run. A target that cannot be started at all raises
:class:`TargetError` when the session opens.
"""

from __future__ import annotations

import collections
import functools
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import answers, protocol
from .request_lines import request_line
from .adapter import PythonAdapter, ResultShapeError
from .sandbox import DEFAULT_MEMORY_MB, apply_limits


MAX_CONSECUTIVE_TIMEOUTS = 3
#: A program may be restarted this many times in all (after crashes and timeouts) ...
MAX_RESTARTS = 20
#: ... and spend this many seconds in all (start-up and calls), before its remaining calls fail at once.
MAX_SECONDS = 300.0


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


class InProcessSession:
    """A trusted Python namespace, called directly."""

    def __init__(self, namespace, name: str):
        self.adapter = PythonAdapter(namespace, name)
        self.info = TargetInfo(name, self.adapter.ops, self.adapter.conventions)

    def call(self, op: str, args: dict, conventions: dict | None = None) -> tuple[dict, list[str]]:
        if op not in self.adapter.ops:
            raise NotImplementedOp(op)
        try:
            return self.adapter.call(op, args)
        except ResultShapeError as error:
            raise CallFailed(str(error)) from None
        except SystemExit as error:  # a port that calls sys.exit must not end the run as if it passed
            raise CallFailed(f"called sys.exit({error.code!r})") from None
        except Exception as error:  # noqa: BLE001 - the target's exception becomes this case's error
            raise CallFailed(f"{type(error).__name__}: {error}"[:300]) from None

    def close(self) -> None:
        pass


def _signal_name(code: int) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def sandbox_environment(home: str) -> dict:
    """A scrubbed environment for untrusted programs: no secrets, one BLAS thread."""
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
            "VIRTUAL_ENV", "OPTCONFORM_MEMORY_MB", "OPTCONFORM_CPU_SECONDS")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
                "HOME": home, "MPLBACKEND": "Agg"})
    return env


class ProcessSession:
    """A program speaking the wire protocol, restarted whenever a call leaves it unusable."""

    def __init__(self, argv: list[str], name: str, timeout: float = 10.0, sandbox: bool = True,
                 start_timeout: float | None = None, confined: bool = False, warnings: list[str] | None = None,
                 memory_mb: int | None = None):
        """``sandbox``: a scrubbed environment and a scratch working directory. ``confined``: ``argv`` is a
        bubblewrap command (:mod:`.sandbox`), started under its resource limits."""
        self.argv, self.timeout, self.sandbox, self.confined = argv, timeout, sandbox, confined
        self.memory_mb = memory_mb
        self.extra_warnings = list(warnings or [])
        self.start_timeout = start_timeout if start_timeout is not None else max(timeout, 30.0)
        self.display_name = name
        self.process: subprocess.Popen | None = None
        self.stderr_tail: collections.deque = collections.deque(maxlen=40)
        self._buffer = b""
        self._line_limit = protocol.MAX_LINE_BYTES
        self.binary = False  # version 2 (base64 arrays), once the program's hello accepts it
        self._next_id = 0
        self._scratch = tempfile.TemporaryDirectory(prefix="optconform-")
        #: Calls in a row, per op, that ended the program (a timeout, a crash, an exit): after
        #: MAX_CONSECUTIVE_TIMEOUTS an op's calls fail at once, so one hanging or crashing function costs
        #: a few restarts, not one per case. Over the whole session, MAX_RESTARTS and MAX_SECONDS cap it.
        self.timeouts: collections.Counter = collections.Counter()
        self.crashes: collections.Counter = collections.Counter()
        self.restarts = 0
        self.started = time.monotonic()
        self.info = self._start(first=True)

    # ------------------------------------------------------------ process

    def _spawn(self) -> None:
        try:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self._scratch.name if self.sandbox else None,
                env=self._environment(), start_new_session=True,
                preexec_fn=functools.partial(apply_limits, self.memory_mb or DEFAULT_MEMORY_MB) if self.confined
                else None)
        except (OSError, ValueError) as error:
            raise TargetError(f"cannot start {self.display_name}: {getattr(error, 'strerror', None) or error}") from None
        os.set_blocking(self.process.stdin.fileno(), False)  # writes are bounded by the call's deadline
        self._buffer = b""
        self.stderr_tail.clear()
        threading.Thread(target=self._drain_stderr, args=(self.process,), daemon=True).start()

    def _environment(self) -> dict | None:
        if not self.sandbox:
            return None
        env = sandbox_environment(self._scratch.name)
        if self.memory_mb:
            env["OPTCONFORM_MEMORY_MB"] = str(self.memory_mb)
        return env

    def _drain_stderr(self, process) -> None:
        for line in iter(lambda: process.stderr.readline(8192), b""):  # bounded: a flood without newlines
            self.stderr_tail.append(line.decode("utf-8", errors="replace").rstrip())

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

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
            self.process = None

    # ------------------------------------------------------------ lines

    def _read_line(self, deadline: float) -> bytes:
        """One line of the program's output, read in time linear in its length, at most ``_line_limit`` bytes."""
        end = self._buffer.find(b"\n")
        if end < 0:
            chunks, size = [self._buffer], len(self._buffer)
            while end < 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([self.process.stdout], [], [], min(remaining, 60.0))
                if not ready:
                    continue
                chunk = os.read(self.process.stdout.fileno(), 4 << 20)
                if not chunk:
                    self._buffer = b"".join(chunks)
                    raise EOFError
                found = chunk.find(b"\n")
                end = size + found if found >= 0 else -1
                chunks.append(chunk)
                size += len(chunk)
                if end < 0 and size > self._line_limit:
                    raise protocol.ProtocolError(f"wrote a line longer than {self._line_limit >> 20} MiB")
            self._buffer = b"".join(chunks)
        line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
        return line

    def _write(self, data: bytes, deadline: float) -> None:
        """Write a request without ever blocking past ``deadline`` (a program may stop reading its stdin)."""
        fd = self.process.stdin.fileno()
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            _, ready, _ = select.select([], [fd], [], min(remaining, 60.0))
            if not ready:
                continue
            try:
                view = view[os.write(fd, view[:1 << 16]):]
            except BlockingIOError:
                continue

    def _exit_status(self) -> str:
        """How the program ended, or that it closed its output and lingers (it is killed at the restart)."""
        try:
            code = self.process.wait(timeout=1) if self.process else None
        except subprocess.TimeoutExpired:
            return "closed its output"
        if self.confined and code is not None and 128 < code < 128 + 65:
            code = 128 - code  # bwrap reports its child killed by signal n as exit code 128 + n
        return _signal_name(code)

    def _stdout_hint(self) -> str:
        """What an ended program left on stdout that was not an answer (e.g. a banner instead of hello)."""
        try:
            while self.process is not None and select.select([self.process.stdout], [], [], 0)[0]:
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                self._buffer += chunk
        except (OSError, ValueError):
            pass
        text = self._buffer.decode("utf-8", errors="replace").strip()
        return f", after writing {text[:80]!r} instead of an answer" if text else ""

    def _stderr_hint(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()]
        return f"; stderr: {lines[-1][:200]}" if lines else ""

    def _send(self, op: str, args: dict | None, timeout: float, conventions: dict | None = None,
              calls: list | None = None, extra: dict | None = None) -> int:
        """Write one request (Python values: see :func:`.request_lines.request_line`); its id. CallFailed when
        the program cannot take it."""
        if self.process is None:
            raise CallFailed("the program could not be restarted after an earlier failure")
        self._next_id += 1
        request = request_line(self._next_id, op, self.binary, args, calls, extra, conventions)
        self._line_limit = max(protocol.MAX_LINE_BYTES, protocol.ANSWER_TO_REQUEST * len(request))
        try:
            self._write(request, time.monotonic() + timeout)
        except (TimeoutError, BrokenPipeError, ConnectionResetError) as error:
            raise self._lost(error, timeout) from None
        return self._next_id

    def _receive(self, request_id: int, timeout: float) -> dict:
        """The next answer to request ``request_id``, within ``timeout``; CallFailed says why not."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = self._read_line(deadline)
                if line.strip():
                    break
            response = answers.response(line)
        except (TimeoutError, EOFError, BrokenPipeError, ConnectionResetError) as error:
            raise self._lost(error, timeout) from None
        except protocol.ProtocolError as error:
            raise CallFailed(f"protocol error: {error}") from None
        if response["id"] != request_id:
            raise CallFailed(f"protocol error: answered id {response['id']!r} to request id {request_id}")
        return response

    def _lost(self, error: Exception, timeout: float) -> CallFailed:
        """What a request or its answer that could not get through says: it timed out, or the program ended."""
        if isinstance(error, TimeoutError):
            return _TimedOut(f"no answer within {timeout:g} s (timed out; the program was restarted)")
        return CallFailed(f"the program {self._exit_status()} during the call{self._stdout_hint()}"
                          f"{self._stderr_hint()}")

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
            response = self._request(op, args, self.timeout, conventions)
        except _Refused as refusal:
            self.timeouts[op] = self.crashes[op] = 0
            raise CallFailed(str(refusal)) from None
        except CallFailed as failure:
            self._count_failure(op, failure)
            raise
        self.timeouts[op] = self.crashes[op] = 0
        try:
            return answers.result(op, response), response.get("problems", [])
        except protocol.ProtocolError as error:
            raise CallFailed(str(error)) from None

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
        restarted), and the calls after it are made one by one. ``sequence``: the calls are
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
        return (self.binary and self.process is not None and not self._out_of_time()
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
            try:
                answer = self._receive(request_id, self.timeout)
                if answer.get("index") != index:
                    raise CallFailed(f"protocol error: answer {answer.get('index')!r} of a {kind} where {index} "
                                     "was due")
            except CallFailed as failure:
                self._count_failure(op, failure)
                yield failure
                return
            self.timeouts[op] = self.crashes[op] = 0
            yield self._answered(op, answer)
            if stop_at_last and answer.get("last"):
                return

    def _answered(self, op: str, answer: dict):
        if not answer["ok"]:
            error = answer["error"].strip()
            return CallFailed(error.splitlines()[0][:400] if error else "error")
        try:
            return answers.result(op, answer), answer.get("problems", [])
        except protocol.ProtocolError as error:
            return CallFailed(str(error))

    def _one(self, op: str, args: dict, conventions: dict | None):
        try:
            return self.call(op, args, conventions)
        except (CallFailed, NotImplementedOp) as error:
            return error

    def _out_of_time(self) -> bool:
        return time.monotonic() - self.started > MAX_SECONDS

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
        if self.process is not None and not self.sandbox and self.process.poll() is None:
            try:
                self._next_id += 1
                self._write(protocol.dumps({"id": self._next_id, "op": "shutdown"}).encode(), time.monotonic() + 2)
                self.process.stdin.close()
                self._await_exit(time.monotonic() + 2)
            except (OSError, ValueError, TimeoutError):
                pass
        self._kill()
        self._scratch.cleanup()


    def _await_exit(self, deadline: float) -> None:
        """Read the program's output to its end (it closes it when it exits): ``Popen.wait`` with a timeout
        polls with sleeps that cost a grading run tens of milliseconds per submission."""
        fd = self.process.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if ready and not os.read(fd, 1 << 16):
                return


class _Refused(CallFailed):
    """The program answered ``ok: false``: the call failed, but the program is fine."""


class _TimedOut(CallFailed):
    """No answer within the time limit: the program was restarted."""


def child_argv(target: str) -> list[str]:
    """The command that serves a Python file, notebook or module as a child process.

    A module is imported as ``python -m`` would import it from here: the caller's
    working directory goes first on the child's path (the child itself runs in a
    scratch directory).
    """
    if os.path.exists(target):
        return [sys.executable, "-m", "optconform.harness.child", os.path.abspath(target)]
    return [sys.executable, "-m", "optconform.harness.child", target, "--sys-path", os.getcwd()]


#: How untrusted files are run: ``required`` (grade: no sandbox, no run), ``auto`` (check: the sandbox where
#: this machine has one, else a warning), ``off`` (the instructor's explicit --no-sandbox).
SANDBOX_MODES = ("required", "auto", "off")


def file_session(target: str, timeout: float, sandbox: str = "auto", memory_mb: int | None = None) -> "ProcessSession":
    """A ``.py`` file or notebook served by the child, inside the bubblewrap sandbox when there is one."""
    from pathlib import Path

    from . import sandbox as confinement

    name = os.path.basename(target)
    if sandbox != "off":
        reason = confinement.probe()
        if reason is None:
            policy = confinement.Policy(Path(target).resolve(), memory_mb or confinement.DEFAULT_MEMORY_MB)
            return ProcessSession(policy.command(confinement.bwrap_binary()), name, timeout, sandbox=True,
                                  confined=True, memory_mb=policy.memory_mb)
        if sandbox == "required":
            raise TargetError(f"no sandbox for untrusted code: {reason} (run `optconform doctor`; "
                              "--no-sandbox runs submissions unconfined)")
        warning = f"no sandbox: {reason}; {name} ran with the grader's own rights"
    else:
        warning = f"no sandbox (--no-sandbox): {name} ran with the grader's own rights"
    return ProcessSession(child_argv(target), name, timeout, sandbox=True, warnings=[warning], memory_mb=memory_mb)


def open_session(target: str | None, cmd: str | None, timeout: float, in_process: bool = True,
                 sandbox: str = "auto", memory_mb: int | None = None):
    """The session for a command-line target: a module in-process (or, with ``in_process=False``,
    in a child like a file, unconfined: a module is trusted code), a file or notebook in the
    sandboxed child (``sandbox``: see :data:`SANDBOX_MODES`), or ``--cmd``."""
    from .loader import LoadError, is_file_target, load_module_target

    if cmd:
        try:
            argv = shlex.split(cmd)
        except ValueError as error:
            raise TargetError(f"--cmd {cmd!r}: {error}") from None
        if not argv:
            raise TargetError("--cmd is empty")
        return ProcessSession(argv, argv[0], timeout, sandbox=False)
    if not target:
        raise TargetError("name a TARGET (module, module:object, file.py, notebook.ipynb) or give --cmd")
    if is_file_target(target):
        if not os.path.exists(target):
            raise TargetError(f"{target}: no such file")
        return file_session(target, timeout, sandbox, memory_mb)
    if not in_process:
        return ProcessSession(child_argv(target), target, timeout, sandbox=True, memory_mb=memory_mb)
    if os.getcwd() not in sys.path:  # import a module as `python -m` would, from here
        sys.path.insert(0, os.getcwd())
    try:
        return InProcessSession(load_module_target(target), target)
    except LoadError as error:
        raise TargetError(str(error)) from None
