"""The sandbox every untrusted submission runs in: one of two engines, whichever this machine allows.

- :mod:`.bubblewrap`: new user, PID, network and mount namespaces, where the machine
  allows them (a laptop, a CI runner, a VM);
- :mod:`.uid_engine`: in a container that refuses namespaces but runs the grader as root
  (Gradescope, PrairieLearn, Docker-based CI): a uid of the child's own, a seccomp
  filter, optconform and the grader's folders closed to it, every process of it ended
  after each program.

Both start the same staged child server (:mod:`.staging`) under the same limits.
``OPTCONFORM_SANDBOX`` (``bubblewrap`` or ``uid``) pins one; otherwise the first that
works is used. Where neither works, :func:`probe` says why in one line, and nothing runs
unless the instructor asked for it unconfined (``--no-sandbox``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from . import bubblewrap, uid_engine
from .staging import DEFAULT_MEMORY_MB, Launch

ENGINES = {"bubblewrap": bubblewrap, "uid": uid_engine}


@functools.lru_cache(maxsize=1)
def engine() -> tuple[str | None, str | None]:
    """The engine in use and, where there is none, why: ``(name, None)`` or ``(None, reason)``."""
    pinned = os.environ.get("OPTCONFORM_SANDBOX", "").strip()
    if pinned:
        if pinned not in ENGINES:
            return None, f"OPTCONFORM_SANDBOX={pinned!r} names no engine (bubblewrap or uid)"
        reason = ENGINES[pinned].probe()
        return (pinned, None) if reason is None else (None, f"{pinned} (pinned by OPTCONFORM_SANDBOX): {reason}")
    reasons = []
    for name, module in ENGINES.items():
        reason = module.probe()
        if reason is None:
            return name, None
        reasons.append(reason)
    return None, "; ".join(reasons)


def probe() -> str | None:
    """Why no sandbox can be set up here (one line), or None when one can."""
    return engine()[1]


def launch(submission: Path, memory_mb: int = DEFAULT_MEMORY_MB) -> Launch:
    """Start the child server on ``submission`` in the engine in use (:func:`probe` must have said None)."""
    name, reason = engine()
    if name is None:
        raise RuntimeError(f"no sandbox: {reason}")
    return ENGINES[name].launch(submission, memory_mb)


def exposed(paths) -> str | None:
    """Where the engine in use hides nothing by itself (the uid engine), the first of ``paths`` a submission
    could read, said with the command that closes them; None when none is readable, or the engine hides all."""
    name, _ = engine()
    if name != "uid":
        return None
    found = uid_engine.readable([p for p in paths if os.path.exists(p)])
    if not found:
        return None
    return (f"a submission could read {found[0]} (the uid engine hides only what is closed to other users): "
            f"close it with `{uid_engine.closing_advice(found)}`")


def describe() -> str:
    """What isolation this machine gives, for ``optconform doctor``."""
    name, reason = engine()
    if name is None:
        return f"sandbox: NOT AVAILABLE: {reason}"
    return f"sandbox: {ENGINES[name].describe()}" + root_note(name)


def root_note(name: str, euid: int | None = None) -> str:
    """What running the grader as root changes: with bubblewrap the child keeps uid 0 outside its namespace, and
    the kernel does not enforce ``RLIMIT_NPROC`` for root, so a fork bomb is not stopped at 512 processes (only
    when the call times out and the sandbox is killed)."""
    if (os.geteuid() if euid is None else euid) != 0 or name != "bubblewrap":
        return ""
    return ("\nnote: the grader runs as root, and bubblewrap's child keeps uid 0 outside its namespace, where the "
            "kernel does not enforce the process limit (nproc): a fork bomb runs until the call's time is up and the "
            "sandbox is killed. "
            "Run the grader as an ordinary user, or pin the uid engine (OPTCONFORM_SANDBOX=uid), under which it "
            "holds (docs/security.md)")
