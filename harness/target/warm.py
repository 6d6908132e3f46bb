"""Warm starts: one sandboxed zygote per grading process forks every child, so no submission pays for a fresh
interpreter and NumPy (about 75 ms of CPU, a third of what a submission costs).

A :class:`Zygote` is a bubblewrap sandbox (:func:`.bubblewrap.zygote_command`, the same policy as a
fresh child's, given by the engine) whose only program is :mod:`.zygote`. :func:`spawn` asks it for a child on a
submission and returns the child as a :class:`Forked`, which :class:`~.program.Program` drives like
any started program. One child at a time: the next fork waits until the zygote has put the sandbox
back as it was made (or ended, when it could not).

A warm start is only ever a saving. Where the zygote cannot serve (it would not start, it was
killed, a request failed, :data:`MAX_LOST` zygotes ended while serving, the caller is not the main
thread, ``OPTCONFORM_WARM_START=0``),
:func:`spawn` returns None and the session starts a fresh sandbox, as it would without one.
"""

from __future__ import annotations

import atexit
import collections
import functools
import os
import select
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Callable

from .staging import apply_limits

#: How long a zygote may take to start (an interpreter and NumPy), and to answer a fork or report an end.
START_SECONDS = 30.0
ANSWER_SECONDS = 10.0


class Zygote:
    """The sandboxed zygote and its control socket."""

    def __init__(self, memory_mb: int, command: Callable[[int, int], list[str]]):
        """``command(control_fd, memory_mb)``: the sandbox's command line (the engine's)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            argv = command(theirs.fileno(), memory_mb)
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                            start_new_session=True, preexec_fn=functools.partial(apply_limits, memory_mb))
        finally:
            theirs.close()
        self.control, self.memory_mb, self.child = ours, memory_mb, None
        self.broken = False  # it ended, or said something other than what was due: no more forks
        if self.receive(START_SECONDS) != b"ready":
            self.close()
            raise OSError("the zygote did not start")

    def receive(self, timeout: float) -> bytes | None:
        """The zygote's next message; ``b""`` once it has ended, None if nothing came within ``timeout``."""
        if not select.select([self.control], [], [], timeout)[0]:
            return None
        try:
            return self.control.recv(256)
        except OSError:
            return b""

    def fork(self, submission: Path) -> Forked | None:
        """A child serving ``submission``, or None when the zygote cannot give one (it is then of no more use)."""
        if self.child is not None and not self.child.settled(ANSWER_SECONDS):
            return None  # the last child's end never came
        if self.broken:
            return None
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        ours, theirs = [stdin_write, stdout_read, stderr_read], [stdin_read, stdout_write, stderr_write]
        try:
            with open(submission, "rb") as source:
                socket.send_fds(self.control, [f"fork {self.memory_mb} {submission.name}".encode()],
                                [*theirs, source.fileno()])
            answer = self.receive(ANSWER_SECONDS)
        except OSError:
            answer = b""
        finally:
            for fd in theirs:
                os.close(fd)
        if answer != b"forked":
            self.broken = self.broken or not (answer or b"").startswith(b"failed")
            for fd in ours:
                os.close(fd)
            return None
        self.child = Forked(self, *ours)
        return self.child

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()
        self.control.close()


class Forked:
    """A child of the zygote, as :class:`~.program.Program` drives a started process."""

    def __init__(self, zygote: Zygote, stdin: int, stdout: int, stderr: int):
        self.zygote, self.returncode = zygote, None
        self.stdin = open(stdin, "wb", buffering=0)  # noqa: SIM115 - closed by Program.kill
        self.stdout = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self.stderr = open(stderr, "rb")  # noqa: SIM115 - closed by the program's stderr thread at its end

    def settled(self, timeout: float) -> bool:
        """Whether the zygote has reported this child's end (and swept after it), waiting up to ``timeout``."""
        if self.returncode is None:
            message = self.zygote.receive(timeout)
            if message is None:
                return False
            status = message.removeprefix(b"ended ")
            if status.isdigit():
                self.returncode = os.waitstatus_to_exitcode(int(status))
            else:  # the zygote ended (its child may have killed it), and its sandbox with everything in it
                self.returncode, self.zygote.broken = -signal.SIGKILL, True
        return True

    def poll(self) -> int | None:
        self.settled(0)
        return self.returncode

    def wait(self, timeout: float) -> int:
        if not self.settled(timeout):
            raise subprocess.TimeoutExpired("the zygote's child", timeout)
        return self.returncode

    def end(self) -> None:
        """Killed by the zygote; its end is read at the next fork (the grader need not wait for the sweep)."""
        if self.returncode is None:
            try:
                self.zygote.control.send(b"kill")
            except OSError:
                pass


_ZYGOTES: dict[int, Zygote] = {}
_REFUSED: dict[int, str] = {}
#: Zygotes of this process that ended while serving: after this many, its submissions start fresh (a zygote
#: that keeps ending would cost every child it serves a restart)
MAX_LOST = 3
_LOST: collections.Counter = collections.Counter()


def spawn(submission: Path, memory_mb: int, command: Callable[[int, int], list[str]]) -> Forked | None:
    """A warm child on ``submission``, or None where a fresh start is needed (see the module's docstring);
    ``command(control_fd, memory_mb)``: the zygote's sandbox, as the engine starts it."""
    pid = os.getpid()
    if (os.environ.get("OPTCONFORM_WARM_START", "1") == "0" or pid in _REFUSED
            or threading.current_thread() is not threading.main_thread()):  # bwrap dies with its starting thread
        return None
    for _ in range(2):
        zygote = _ZYGOTES.get(pid)
        if zygote is not None and zygote.memory_mb != memory_mb:
            _discard(pid)
            zygote = None
        if zygote is None:
            try:
                zygote = _ZYGOTES[pid] = Zygote(memory_mb, command)
            except OSError as error:
                _REFUSED[pid] = str(error)
                return None
        child = zygote.fork(submission)
        if child is not None:
            return child
        _discard(pid)  # killed by its last child, or failed: a new one, once
    return None


def _discard(pid: int) -> None:
    zygote = _ZYGOTES.pop(pid, None)
    if zygote is not None:
        zygote.close()
        _LOST[pid] += zygote.broken
        if _LOST[pid] >= MAX_LOST:
            _REFUSED[pid] = f"{MAX_LOST} zygotes ended while serving"


@atexit.register
def close_all() -> None:
    """This process's zygote, ended (at exit; a forked worker's ends with it, by ``--die-with-parent``)."""
    _discard(os.getpid())
