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

import os
import shlex
import sys

from .adapter import PythonAdapter, ResultShapeError
from .contract import CallFailed, NotImplementedOp, TargetError, TargetInfo, raised
from .process import ProcessSession

__all__ = ["CallFailed", "InProcessSession", "NotImplementedOp", "ProcessSession", "TargetError", "TargetInfo",
           "open_session"]


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
            raise CallFailed(str(error), "the result could not be read (hidden case: its details are withheld)") from None
        except SystemExit as error:  # a port that calls sys.exit must not end the run as if it passed
            raise CallFailed(f"called sys.exit({error.code!r})", "called sys.exit (hidden case: its code is withheld)") from None
        except Exception as error:  # noqa: BLE001 - the target's exception becomes this case's error
            raise raised(f"{type(error).__name__}: {error}"[:300]) from None

    def close(self) -> None:
        pass


def child_argv(target: str) -> list[str]:
    """The command that serves a Python file, notebook or module as a child process.

    A module is imported as ``python -m`` would import it from here: the caller's
    working directory goes first on the child's path (the child itself runs in a
    scratch directory).
    """
    if os.path.exists(target):
        return [sys.executable, "-m", "optconform.harness.target.child", os.path.abspath(target)]
    return [sys.executable, "-m", "optconform.harness.target.child", target, "--sys-path", os.getcwd()]


#: How untrusted files are run: ``required`` (grade: no sandbox, no run), ``auto`` (check: the sandbox where
#: this machine has one, else a warning), ``off`` (the instructor's explicit --no-sandbox).
SANDBOX_MODES = ("required", "auto", "off")


def file_session(target: str, timeout: float, sandbox: str = "auto", memory_mb: int | None = None) -> ProcessSession:
    """A ``.py`` file or notebook served by the child, inside a sandbox engine when there is one."""
    from pathlib import Path

    from . import sandbox as confinement

    name = os.path.basename(target)
    if sandbox != "off":
        reason = confinement.probe()
        if reason is None:
            memory_mb = memory_mb or confinement.DEFAULT_MEMORY_MB
            try:
                launch = confinement.launch(Path(target).resolve(), memory_mb)
            except OSError as error:
                raise TargetError(f"the sandbox could not be set up for {name}: {error}") from None
            return ProcessSession([], name, timeout, sandbox=True, launch=launch, memory_mb=memory_mb)
        if sandbox == "required":
            raise TargetError(f"no sandbox for untrusted code: {reason} (run `optconform doctor`; "
                              "--no-sandbox runs submissions unconfined)")
        warning = f"no sandbox: {reason}; {name} ran with the grader's own rights"
    else:
        warning = f"no sandbox (--no-sandbox): {name} ran with the grader's own rights"
    return ProcessSession(child_argv(target), name, timeout, sandbox=True, warnings=[warning], memory_mb=memory_mb)


def open_session(target: str | None, cmd: str | None, timeout: float, in_process: bool = True,
                 sandbox: str = "auto", memory_mb: int | None = None, module: bool = False):
    """The session for a command-line target: a file or notebook in the sandboxed child (``sandbox``: see
    :data:`SANDBOX_MODES`), ``NAME`` too where ``NAME.py`` exists; a module (trusted code) only when its name
    is dotted (``pkg.mod``, ``pkg.mod:obj``) or ``module`` says so, imported in-process (or, with
    ``in_process=False``, in a child like a file, unconfined); or ``--cmd``."""
    from .loader import LoadError, file_for, load_module_target

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
    path = None if module else file_for(target)
    if path is not None:
        if not os.path.exists(path):
            raise TargetError(f"{path}: no such file")
        return file_session(path, timeout, sandbox, memory_mb)
    if not module and not any(mark in target for mark in ".:"):
        raise TargetError(f"{target}: no such file (nor {target}.py); to import a module of that name, "
                          "add --module")
    if not in_process:
        return ProcessSession(child_argv(target), target, timeout, sandbox=True, memory_mb=memory_mb)
    if os.getcwd() not in sys.path:  # import a module as `python -m` would, from here
        sys.path.insert(0, os.getcwd())
    try:
        return InProcessSession(load_module_target(target), target)
    except LoadError as error:
        raise TargetError(str(error)) from None
