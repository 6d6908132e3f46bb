"""A warm start inside the sandbox: NumPy and the child server imported once, then forked for each program.

:mod:`.warm` starts this as the only program of a bubblewrap sandbox, under the same policy as
a fresh child's but for ``/submission``, a small tmpfs of its own. It never runs submitted code
itself. On its control socket (a ``SOCK_SEQPACKET`` socket, its descriptor in ``argv``) it takes
one request at a time:

- ``fork MEMORY_MB NAME`` with four descriptors (``SCM_RIGHTS``): the program's stdin, stdout
  and stderr, and the submission, open for reading. The submission is written to
  ``/submission/NAME`` (read-only), and a child is forked that takes the three pipes as its
  standard streams, closes every other descriptor, and serves the submission
  (:func:`.child.main`) as a fresh child would. The answer is ``forked``, or ``failed: REASON``.
- ``kill``: the child is killed (ignored when no child runs: it ended as the grader asked).

When the child ends, the sandbox is put back as the zygote found it (:class:`Sandbox`): every
other process in it is killed (whatever the child left running), every entry the child made on a
writable mount (``/tmp``, ``/dev/shm``, ``/submission``) is removed, and what was
there is checked unchanged, with the kernel keys the sandbox can see and its System V IPC objects.
Only then is ``ended STATUS`` (the wait status) sent, and the next fork taken. What cannot be put
back ends the zygote, and with it the sandbox: the grader starts another.

The zygote is not dumpable (``prctl(PR_SET_DUMPABLE, 0)``, inherited by its children), so no
process of the sandbox can read or write its memory or reach its descriptors through ``/proc``.
A child that kills or stops it costs only the warm start: the grader starts a fresh sandbox.
"""

from __future__ import annotations

import importlib
import os
import re
import select
import shutil
import signal
import socket
import sys
import time

#: What every child imports: imported once, here (the child server's own modules import NumPy and the rest).
WARM = ("numpy", "threading", "weakref", "resource", "traceback", "optconform.harness.target.child",
        "optconform.harness.target.adapter", "optconform.harness.target.loader", "optconform.harness.target.protocol")
#: How long the end of what a child left running may take before the zygote gives up (and ends).
SWEEP_SECONDS = 5.0


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    _not_dumpable()
    for name in WARM:
        importlib.import_module(name)
    from .child import main as serve

    os.chdir("/")
    if len(os.listdir("/proc/self/task")) != 1:  # a thread (a BLAS pool) would not survive the fork
        control.send(b"refused: the interpreter started a thread")
        return 1
    try:
        os.close(os.pidfd_open(os.getpid()))  # Linux 5.3: how the zygote waits for a child and its grader at once
    except (AttributeError, OSError) as error:
        control.send(f"refused: no pidfd_open ({error})".encode())
        return 1
    sandbox = Sandbox()
    control.send(b"ready")
    while True:
        message, fds, _, _ = socket.recv_fds(control, 4096, 4)
        if not message:
            return 0  # the grader has gone
        if message == b"kill":  # the last child ended as the grader asked for its end: nothing to do
            for fd in fds:
                os.close(fd)
            continue
        word, _, rest = message.decode("utf-8", "replace").partition(" ")
        memory, _, name = rest.partition(" ")
        if word != "fork" or len(fds) != 4 or not memory.isdigit() or not _plain_name(name):
            for fd in fds:
                os.close(fd)
            control.send(b"failed: a malformed request")
            continue
        try:
            path = _place(fds[3], name)
            pid = os.fork()
        except OSError as error:
            for fd in fds:
                os.close(fd)
            control.send(f"failed: {error}".encode())
            continue
        if pid == 0:
            _become_child(fds, int(memory), path, serve)
        for fd in fds:
            os.close(fd)
        control.send(b"forked")
        status, gone = _await(control, pid)
        try:
            sandbox.restore()
        except (Unrestorable, OSError):  # the child's end is said, and the zygote ends: its sandbox goes with it
            if not gone:
                control.send(f"ended {status}".encode())
            return 1
        if gone:
            return 0
        control.send(f"ended {status}".encode())


def _not_dumpable() -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise SystemExit("prctl(PR_SET_DUMPABLE) failed")


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


def _place(fd: int, name: str) -> str:
    """The submission, from its descriptor to ``/submission/NAME``, read-only."""
    path = os.path.join("/submission", name)
    with open(fd, "rb", closefd=False) as source, open(path, "xb") as copy:
        os.lseek(fd, 0, os.SEEK_SET)
        shutil.copyfileobj(source, copy, 1 << 20)
    os.chmod(path, 0o444)
    return path


def _become_child(fds: list[int], memory_mb: int, path: str, serve) -> None:
    """In the forked child: the pipes become fds 0, 1 and 2, every other descriptor is closed, and the child
    server serves ``path``; the process ends with it (never returning into the zygote's loop)."""
    code = 70
    try:
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir("/tmp")
        os.environ["OPTCONFORM_MEMORY_MB"] = str(memory_mb)
        sys.argv = ["-c", path]
        code = serve([path])
    except BaseException:  # noqa: BLE001 - the child's own end, said on its stderr
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 70)


def _await(control: socket.socket, pid: int) -> tuple[int, bool]:
    """The child's wait status once it ends, killing it on ``kill`` or when the grader goes; and whether the
    grader has gone."""
    ended = os.pidfd_open(pid)
    gone = False
    try:
        while True:
            ready, _, _ = select.select([control, ended], [], [])
            if ended in ready:
                break
            message = control.recv(64)
            if message == b"kill" or not message:
                gone = gone or not message
                os.kill(pid, signal.SIGKILL)
    finally:
        os.close(ended)
    return os.waitpid(pid, 0)[1], gone


class Unrestorable(Exception):
    """What a child changed cannot be put back."""


class Sandbox:
    """What a child could change in the sandbox, as the zygote found it: every process, every entry of every
    writable mount (``/tmp``, ``/dev/shm``, ``/submission``: whichever the sandbox has), every key."""

    def __init__(self):
        self.writable, self.mounts = _mounts()
        self.entries = self.listing()
        self.keys = _keys()

    def listing(self) -> dict[str, tuple]:
        """Each entry on the writable mounts (not crossing into another mount): what it is, its mode, owner and
        inode, and for all but folders (whose times change as entries come and go) its size, change time and
        link; without recursion, and failing on what it cannot read (a folder a child closed)."""
        found, pending = {}, list(self.writable)
        while pending:
            directory = pending.pop()
            info = os.stat(directory, follow_symlinks=False)
            found[directory] = (info.st_mode, info.st_uid, info.st_gid, info.st_ino)
            for entry in os.scandir(directory):
                if entry.path in self.mounts:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                    continue
                info = entry.stat(follow_symlinks=False)
                link = os.readlink(entry.path) if entry.is_symlink() else None
                found[entry.path] = (info.st_mode, info.st_uid, info.st_gid, info.st_ino, info.st_size,
                                     info.st_ctime_ns, link)
        return found

    def restore(self) -> None:
        """Every process but the sandbox's init and this one, killed; every entry a child made, removed; and
        the rest checked to be as it was; :class:`Unrestorable` (or the OSError that stopped it) if not."""
        me, deadline = os.getpid(), time.monotonic() + SWEEP_SECONDS
        while True:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not [n for n in os.listdir("/proc") if n.isdigit() and int(n) not in (1, me)]:
                break
            if time.monotonic() > deadline:
                raise Unrestorable("a child's processes would not end")
            time.sleep(0.001)
        pending = list(self.writable)
        while pending:
            for entry in os.scandir(pending.pop()):
                if entry.path in self.mounts:
                    continue
                if entry.path not in self.entries:
                    _remove(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
        if self.listing() != self.entries:
            raise Unrestorable("a child changed what the sandbox was made with")
        if _keys() != self.keys:  # a key a child added outlives it, in the sandbox's user namespace
            raise Unrestorable("a child left a key")
        for kind in ("shm", "msg", "sem"):  # System V objects outlive their processes: none may be left
            with open(f"/proc/sysvipc/{kind}", encoding="ascii") as table:
                if len(table.read().splitlines()) > 1:
                    raise Unrestorable(f"a child left System V IPC objects ({kind})")


def _mounts() -> tuple[list[str], set[str]]:
    """The sandbox's writable mounted folders (not ``/proc``; device nodes are mounted too), and every mount
    point."""
    writable, every = [], set()
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            every.add(point)
            if "rw" in fields[5].split(",") and fields[fields.index("-") + 1] != "proc" and os.path.isdir(point):
                writable.append(point)
    return writable, every


def _keys() -> set[str]:
    """The kernel keys this process can see (none to check where the kernel has no keyrings)."""
    try:
        with open("/proc/keys", encoding="utf-8") as table:
            return {line.split()[0] for line in table}
    except FileNotFoundError:
        return set()


def _remove(path: str) -> None:
    """A file, or a folder and everything in it: without recursion (a child may nest folders thousands deep),
    whatever modes the child gave its folders (the zygote's uid owns them: it opens each before listing it)."""
    if not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        return
    pending, found = [path], []
    while pending:
        directory = pending.pop()
        os.chmod(directory, 0o700)
        found.append(directory)
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            else:
                os.unlink(entry.path)
    for directory in reversed(found):
        os.rmdir(directory)
