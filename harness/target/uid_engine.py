"""The second engine, for containers that refuse namespaces: a uid of the child's own, and what root can close.

Gradescope, PrairieLearn and Docker-based CI run the grader as root in a container whose
seccomp profile refuses new namespaces, so bubblewrap cannot start there. Where the
grader is root, each child runs instead:

- as a uid of its own from :data:`UID_RANGE`, which no account has (so it owns no file),
  taken under a lock for the session's life (two children never share one), with no
  supplementary groups and umask 077;
- in a fresh scratch folder of its own (its working directory, ``HOME`` and ``TMPDIR``),
  beside a copy of its submission: the submission's own folder need not be readable
  to it;
- as the staged child server (``python -I -S``, :mod:`.staging`), never the installed
  optconform, under the same resource limits as bubblewrap's (``RLIMIT_NPROC`` now
  holds: the uid is not root);
- under a seccomp filter (libseccomp, through ``pyseccomp``) set before the submission
  is read: no socket but a Unix one (no network), no ``ptrace`` or reading another
  process's memory, no kernel keyrings, ``bpf``, ``perf_event_open``, ``userfaultfd`` or
  ``io_uring`` (which would pass the filter by).

After every end of the program, every process of the uid is killed (``kill(-1)`` as that
uid, until ``/proc`` shows none) and every file it owns in the world-writable folders is
removed, before the grader takes a result.

What it cannot hide it refuses to run beside: :func:`probe` has a child of a sandbox uid
try to read the optconform package and the shipped vectors, and :func:`readable` the
folders a run names (a private vector set, the output, the submissions); a path it can
read stops the run with the ``chmod`` that closes it. ``docs/security.md`` gives the
threat model and the limits.
"""

from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .staging import (
    DENIED_CALLS,
    LIMITS,
    SECCOMP_PROLOGUE,
    Launch,
    apply_limits,
    boot_code,
    child_environment,
    staged_child,
)

#: The uids the children run as: a range no account uses (``OPTCONFORM_SANDBOX_UIDS=FIRST-LAST`` moves it).
UID_RANGE = (61000, 61999)
#: The world-writable folders whose files of a sandbox uid are removed after each program.
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")

def uid_range() -> range:
    text = os.environ.get("OPTCONFORM_SANDBOX_UIDS", "")
    first, _, last = text.partition("-")
    if first.isdigit() and last.isdigit() and 0 < int(first) <= int(last):
        return range(int(first), int(last) + 1)
    return range(UID_RANGE[0], UID_RANGE[1] + 1)


def _lock_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "optconform-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.geteuid() or folder.is_symlink():
        raise OSError(f"{folder} is not the grader's own")
    return folder


def _is_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


class _Uid:
    """One uid of the range, held under a lock until :meth:`release`."""

    def __init__(self):
        folder = _lock_dir()
        for uid in uid_range():
            if _is_account(uid):
                continue
            handle = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            self.uid, self._lock = uid, handle
            end_everything_of(uid)  # whatever a grader that died left behind
            return
        raise OSError(f"every sandbox uid of {uid_range().start}-{uid_range().stop - 1} is in use")

    def release(self) -> None:
        os.close(self._lock)


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Uid:"):
                        if str(uid).encode() in line.split()[1:]:
                            found.append(int(entry.name))
                        break
        except OSError:
            continue
    return found


def end_everything_of(uid: int) -> None:
    """Kill every process of ``uid`` (``kill(-1)`` run as that uid reaches them all, a forking one included) and
    remove every file it owns in :data:`SHARED_SCRATCH`."""
    for _ in range(50):
        if not _processes_of(uid):
            break
        subprocess.run([sys.executable, "-I", "-S", "-c", "import os\ntry: os.kill(-1, 9)\nexcept OSError: pass"],
                       user=uid, group=uid, extra_groups=[], env={}, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", timeout=30)
        time.sleep(0.01)
    for folder in SHARED_SCRATCH:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def launch(submission: Path, memory_mb: int) -> Launch:
    """Start the child server on a copy of ``submission``, as a uid of its own, in a scratch folder of its own."""
    held = _Uid()
    scratch = Path(tempfile.mkdtemp(prefix=f"optconform-{held.uid}-"))  # the grader's: never swept with the uid's
    scratch.chmod(0o711)
    home, copy = scratch / "home", scratch / "submission" / submission.name
    home.mkdir()
    copy.parent.mkdir()
    shutil.copyfile(submission, copy)
    for path in (home, copy.parent, copy):
        os.chown(path, held.uid, held.uid, follow_symlinks=False)

    def after_exit() -> None:
        end_everything_of(held.uid)

    def close() -> None:
        end_everything_of(held.uid)
        shutil.rmtree(scratch, ignore_errors=True)
        held.release()

    environment = {**child_environment(str(home)), "OPTCONFORM_MEMORY_MB": str(memory_mb)}
    argv = [sys.executable, "-I", "-S", "-c", boot_code(staged_child(), SECCOMP_PROLOGUE), str(copy)]
    popen = {"cwd": str(home), "env": environment, "user": held.uid, "group": held.uid, "extra_groups": [],
             "umask": 0o077}
    return Launch("uid", argv, popen, after_exit=after_exit, close=close)


_READ = """
import json, os, sys
found = []
for path in json.loads(sys.argv[1]):
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
        found.append(path)
    except OSError:
        pass
print(json.dumps(found))
"""


def _as_sandbox(code: str, *args: str) -> subprocess.CompletedProcess:
    held = _Uid()
    try:
        return subprocess.run([sys.executable, "-I", "-S", "-c", code, *args], user=held.uid, group=held.uid,
                              extra_groups=[], env=child_environment("/"), cwd="/", capture_output=True, text=True,
                              timeout=60, preexec_fn=apply_limits)
    finally:
        end_everything_of(held.uid)
        held.release()


def readable(paths) -> list[str]:
    """Those of ``paths`` that a sandbox uid can read (a folder: list)."""
    done = _as_sandbox(_READ, json.dumps([str(p) for p in paths]))
    if done.returncode != 0:
        raise OSError(f"a sandbox uid could not run Python: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout)


def package_paths() -> list[str]:
    """Where optconform itself lives: the package, and (an editable install) its folders elsewhere."""
    found = set()
    for name in ("optconform", "optconform.harness", "optconform.reference", "optconform.vectors"):
        spec = importlib.util.find_spec(name)
        found.update(spec.submodule_search_locations or [] if spec else [])
    return sorted(os.path.realpath(p) for p in found)


def closing_advice(paths) -> str:
    return f"chmod -R o-rwx {' '.join(sorted(paths))}"


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """Why this engine cannot confine a child here (one line), or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"the uid engine needs Linux; this is {sys.platform}"
    if os.geteuid() != 0:
        return "the uid engine needs the grader to run as root (as in a Gradescope or PrairieLearn container)"
    try:
        numpy_and_seccomp = _as_sandbox(boot_code(staged_child(), SECCOMP_PROLOGUE, server=None)
                                        + "import numpy, os, socket\n"
                                        + "try:\n socket.socket(socket.AF_INET)\nexcept OSError: print(os.getuid())")
        if numpy_and_seccomp.returncode != 0 or not numpy_and_seccomp.stdout.strip().isdigit():
            reason = (numpy_and_seccomp.stderr.strip().splitlines() or ["no output"])[-1]
            if "pyseccomp" in reason or "libseccomp" in reason:
                return "no libseccomp for the uid engine: pip install pyseccomp, and Debian's libseccomp2"
            return f"a sandbox uid cannot run the child's Python and NumPy here ({reason[:160]})"
        exposed = readable(package_paths())
    except (OSError, subprocess.SubprocessError) as error:
        return f"the uid engine cannot start a child here: {error}"
    if exposed:
        return (f"a sandbox uid can read optconform itself ({exposed[0]}): close it with "
                f"`{closing_advice(exposed)}`")
    return None


def describe() -> str:
    span = uid_range()
    return (f"uid engine (a container without namespaces): each child a uid of its own ({span.start}-"
            f"{span.stop - 1}, no account), no groups, umask 077, a private scratch folder with a copy of its "
            f"submission; seccomp: no socket but AF_UNIX, no {', '.join(DENIED_CALLS[:6])}, ...; optconform "
            f"itself closed to it; every process of the uid killed and its files in {', '.join(SHARED_SCRATCH)} "
            "removed after each program; limits " + ", ".join(f"{k[7:].lower()}={v}" for k, v in LIMITS.items()))
