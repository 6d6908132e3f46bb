"""One started program and its pipes: bounded line reads and writes, how it ended, its last words.

A :class:`Program` is one run; :class:`~.process.ProcessSession` starts a new one whenever a
call leaves the old one unusable. Nothing here knows the wire protocol's messages.
"""

from __future__ import annotations

import collections
import os
import select
import signal
import subprocess
import threading
import time

from .contract import TargetError


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


class Started:
    """A program started with ``subprocess.Popen`` in a session of its own: ended with everything it started."""

    def __init__(self, argv: list[str], name: str, **popen):
        try:
            self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          start_new_session=True, **popen)
        except (OSError, ValueError) as error:
            raise TargetError(f"cannot start {name}: {getattr(error, 'strerror', None) or error}") from None
        self.stdin, self.stdout, self.stderr = self.popen.stdin, self.popen.stdout, self.popen.stderr

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        """Its exit code (``-n``: killed by signal n); ``subprocess.TimeoutExpired`` if it runs on."""
        return self.popen.wait(timeout=timeout)

    def end(self) -> None:
        """It and everything in its process group, killed."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Program:
    """One run of a program (``process``: a :class:`Started`, or anything with its ``stdin``, ``stdout``,
    ``stderr``, ``poll``, ``wait`` and ``end``), its stdin non-blocking, its stderr drained to a tail."""

    def __init__(self, process, name: str, *, line_limit: int, shifted_exit_codes: bool = False):
        self.display_name, self.shifted_exit_codes, self.line_limit = name, shifted_exit_codes, line_limit
        self.stderr_tail: collections.deque = collections.deque(maxlen=40)
        self._buffer, self._start = b"", 0  # output read but not yet returned: self._buffer[self._start:]
        self.process = process
        os.set_blocking(self.process.stdin.fileno(), False)  # writes are bounded by the call's deadline
        threading.Thread(target=self._drain_stderr, args=(self.process,), daemon=True).start()

    def _drain_stderr(self, process) -> None:
        for line in iter(lambda: process.stderr.readline(8192), b""):  # bounded: a flood without newlines
            self.stderr_tail.append(line.decode("utf-8", errors="replace").rstrip())

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """The program and everything it started, killed; its pipes closed."""
        process = self.process
        process.end()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def read_line(self, deadline: float) -> bytes:
        """One line of the program's output, read in time linear in its length, at most ``line_limit`` bytes."""
        from .protocol import ProtocolError

        end = self._buffer.find(b"\n", self._start)
        if end < 0:
            chunks, size = [self._buffer[self._start:]], len(self._buffer) - self._start
            while end < 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([self.process.stdout], [], [], min(remaining, 60.0))
                if not ready:
                    continue
                chunk = os.read(self.process.stdout.fileno(), 4 << 20)
                if not chunk:
                    self._buffer, self._start = b"".join(chunks), 0
                    raise EOFError
                found = chunk.find(b"\n")
                end = size + found if found >= 0 else -1
                chunks.append(chunk)
                size += len(chunk)
                if end < 0 and size > self.line_limit:
                    raise ProtocolError(f"wrote a line longer than {self.line_limit >> 20} MiB")
            self._buffer, self._start = b"".join(chunks), 0
        # the lines of a burst are read from where the last one ended: the rest is never copied per line
        line, self._start = self._buffer[self._start:end], end + 1
        return line

    def write(self, data: bytes, deadline: float) -> None:
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

    def exit_status(self) -> str:
        """How the program ended, or that it closed its output and lingers (it is killed at the restart)."""
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "closed its output"
        if self.shifted_exit_codes and code is not None and 128 < code < 128 + 65:
            code = 128 - code  # bwrap reports its child killed by signal n as exit code 128 + n
        return _signal_name(code)

    def stdout_hint(self) -> str:
        """What an ended program left on stdout that was not an answer (e.g. a banner instead of hello)."""
        self._buffer, self._start = self._buffer[self._start:], 0
        try:
            while select.select([self.process.stdout], [], [], 0)[0]:
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                self._buffer += chunk
        except (OSError, ValueError):
            pass
        text = self._buffer.decode("utf-8", errors="replace").strip()
        return f", after writing {text[:80]!r} instead of an answer" if text else ""

    def stderr_hint(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()]
        return f"; stderr: {lines[-1][:200]}" if lines else ""

    def close_input(self) -> None:
        self.process.stdin.close()

    def await_exit(self, deadline: float) -> None:
        """Read the program's output to its end (it closes it when it exits): ``Popen.wait`` with a timeout
        polls with sleeps that cost a grading run tens of milliseconds per submission."""
        fd = self.process.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if ready and not os.read(fd, 1 << 16):
                return
