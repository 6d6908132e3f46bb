"""What every sandbox engine starts: a private copy of the child server, its limits, environment and first line.

The child server's modules (:data:`CHILD_FILES`) are copied once per grading process into
a folder of their own, compiled there, and made readable to all: they hold no expected
value, and they are the only part of optconform a sandbox can import. Each engine
(:mod:`.bubblewrap`, :mod:`.uid_engine`) starts ``python -I -S -c`` with :func:`boot_code`
under :data:`LIMITS` and :func:`child_environment`, and describes one start as a
:class:`Launch`.
"""

from __future__ import annotations

import atexit
import compileall
import functools
import os
import resource
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

#: The child server and what it imports, relative to the ``optconform`` package (nothing else is copied).
CHILD_FILES = ("__init__.py", "harness/__init__.py", "harness/target/__init__.py", "harness/target/child.py",
               "harness/target/protocol.py", "harness/target/adapter.py", "harness/target/loader.py",
               "harness/target/sources.py", "harness/target/zygote.py",
               "harness/target/schema/wire.schema.json", "vectors/__init__.py", "vectors/codec.py")

#: The address space a child may use unless the instructor gives more (``--memory``, ``memory`` in the
#: assignment file): enough for layers up to about 2900 x 2900.
DEFAULT_MEMORY_MB = 2048

#: Resource limits of everything in a sandbox (set before the engine starts, inherited by all inside).
LIMITS = {
    "RLIMIT_AS": 2048 * 1024 * 1024,     # address space: 2 GiB (the instructor's --memory)
    "RLIMIT_CPU": 600,                   # CPU seconds
    "RLIMIT_FSIZE": 64 * 1024 * 1024,    # largest file written: 64 MiB
    "RLIMIT_NOFILE": 256,                # open files
    "RLIMIT_NPROC": 512,                 # processes of the sandbox's uid (not enforced on root: see security.md)
    "RLIMIT_CORE": 0,                    # no core dumps
    "RLIMIT_MSGQUEUE": 0,                # no POSIX message queue (it would outlive its process, unseen)
}

#: The seccomp policy (libseccomp, through ``pyseccomp``), set by the child's first lines, before the submission
#: is read: these calls fail with EPERM, and socket() but for AF_UNIX with EACCES. Kernel keys outlive their
#: process (a note one submission leaves for another), the rest reach other processes or the kernel's surface.
DENIED_CALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "add_key", "request_key", "bpf",
                "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
                "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "personality")
SECCOMP_PROLOGUE = (
    "import errno, pyseccomp as _s; _f = _s.SyscallFilter(defaction=_s.ALLOW); "
    "_f.add_rule(_s.ERRNO(errno.EACCES), 'socket', _s.Arg(0, _s.NE, 1)); "
    f"[_f.add_rule(_s.ERRNO(errno.EPERM), _n) for _n in {DENIED_CALLS!r}]; _f.load(); del _f, _s, errno; "
)


@functools.lru_cache(maxsize=1)
def seccomp_available() -> bool:
    """Whether the seccomp policy can be set here: ``pyseccomp`` and the system's libseccomp both load."""
    try:
        import pyseccomp

        pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    except Exception:  # noqa: BLE001 - not installed, or its library missing: "not available"
        return False
    return True


@dataclass
class Launch:
    """One start of the child server by an engine: the command, how to start it, and what to do after it."""

    engine: str
    argv: list[str]
    #: extra ``subprocess.Popen`` arguments (``cwd``, ``env``, ``user``, ``group``, ...); empty: the session's own
    popen: dict = field(default_factory=dict)
    #: the engine reports a child killed by signal n as exit code 128 + n (bubblewrap does)
    shifted_exit_codes: bool = False
    #: called after every end of the program: whatever it left running is ended, whatever it wrote is swept
    after_exit: Callable[[], None] = lambda: None
    #: called once, when the session closes
    close: Callable[[], None] = lambda: None
    #: a warm start (:mod:`.warm`), tried before ``argv``: a started process for :class:`~.program.Program`, or
    #: None when a fresh start is needed
    spawn: Callable[[], object | None] = lambda: None


def apply_limits(memory_mb: int = DEFAULT_MEMORY_MB) -> None:
    """Set :data:`LIMITS` on this process, its address space to ``memory_mb`` (run in the forked child, before
    the engine or the child server starts). Nothing is imported here: after the uid engine's ``setuid`` the
    interpreter's own files may no longer be readable."""
    for name, value in {**LIMITS, "RLIMIT_AS": memory_mb * 1024 * 1024}.items():
        limit = getattr(resource, name, None)
        if limit is None:
            continue
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass


def child_environment(scratch: str) -> dict[str, str]:
    """The whole environment of a sandboxed child: nothing of the grader's."""
    return {"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "MPLCONFIGDIR": scratch}


def package_dirs() -> list[str]:
    """The directories packages are imported from (site-packages and the like), outside the prefixes or not."""
    return sorted({p for p in sys.path if p and os.path.isdir(p) and ("site-packages" in p or "dist-packages" in p)})


def boot_code(child_root: str, prologue: str = "", server: str | None = "child") -> str:
    """The child's first lines: the child server, the standard library and the package directories on the
    path, nothing else (``-I -S``: no user site, no PYTHONPATH, no .pth file pointing at the repository);
    ``prologue`` runs next, before the submission is read; ``server``: the module whose ``main`` runs (the
    child server, or the :mod:`.zygote` that forks it), or None for a trial run's own code to follow."""
    first = ("import sys; "
             f"sys.path[:] = [{child_root!r}] + [p for p in sys.path if p] + {package_dirs()!r}; " + prologue)
    if server is None:
        return first
    return first + f"from optconform.harness.target.{server} import main; sys.exit(main(sys.argv[1:]))"


@functools.lru_cache(maxsize=1)
def staged_child() -> str:
    """A private copy of the child server's modules, made once per grading process (read-only to all)."""
    root = Path(tempfile.mkdtemp(prefix="optconform-child-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    package = Path(str(resources.files("optconform")))
    for relative in CHILD_FILES:
        target = root / "optconform" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative == "vectors/__init__.py":  # the child needs the codec, never the loader of golden vectors
            target.write_text('"""The codec only: the golden vectors are not in the sandbox."""\n', encoding="utf-8")
        else:
            shutil.copyfile(_source_of(package, relative), target)
    # Compiled here once, not by every child (which may not write): tens of milliseconds a submission.
    compileall.compile_dir(str(root), quiet=2)
    for directory in [root, *root.rglob("*")]:
        directory.chmod(0o755 if directory.is_dir() else 0o644)
    return str(root)


def _source_of(package: Path, relative: str) -> Path:
    """Where a child file lives: the installed package, or (editable install) the repository's own folders."""
    top, _, rest = relative.partition("/")
    if rest and not (package / relative).exists():
        import importlib

        module = importlib.import_module(f"optconform.{top}")
        return Path(module.__file__).parent / rest
    return package / relative
