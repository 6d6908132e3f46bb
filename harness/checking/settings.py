"""The settings of a run, as one typed, frozen object.

The command line builds it once, from its options and the assignment file
(:func:`optconform.harness.grading.assignment.build_settings`), and every layer below
reads what it needs from it; nothing below the command line sees ``argparse``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .points import Points

#: The defaults of the settings an assignment file may also give.
DEFAULTS = {"dtype": "float64", "timeout": 10.0, "memory": 2048}
SANDBOX_MODES = ("auto", "required", "off")


@dataclass(frozen=True)
class Settings:
    """What a ``check`` or a ``grade`` runs, and how."""

    #: comma-separated ops or families (``adam,mini_batches``); None runs every op
    ops: str | None = None
    #: the course version the ops came from (``2017``, ``2018``, ``2021``), where the assignment named one
    course: str | None = None
    #: ``KEY=VALUE`` conventions: the assignment file's first, the command line's after them (the last wins)
    conventions: tuple[str, ...] = ()
    #: the precision the implementation computes in, which picks the tolerances
    dtype: str = "float64"
    #: another vector set (a folder made by ``generate --seed``); None: the shipped set
    vectors: str | None = None
    #: ``visible`` or ``hidden``, overriding the vector set's manifest; None: the manifest's
    visibility: str | None = None
    #: files of case ids to skip, and expected to fail
    skip: str | None = None
    xfail: str | None = None
    #: per-call time limit (seconds) and the memory (MB) a submission's process may use
    timeout: float = 10.0
    memory: int = 2048
    #: use a vector set whose files no longer match its manifest
    allow_modified: bool = False
    #: the sandbox of a file target: ``auto`` (where the machine has one), ``required``, or ``off``
    sandbox: str = "auto"
    #: a module target imported into this process (False: in a child process, like a file)
    in_process: bool = True
    #: the target is a module even where its name is not dotted (``--module``)
    module: bool = False
    #: the instructor's conventions only: a target's own declaration is ignored (grading)
    graded: bool = False
    #: stop after this many failing cases (the rest are listed as not run)
    max_failures: int | None = None
    #: what each part is worth; None: one point a case
    points: Points | None = None
    #: the assignment file these settings came from, if any, and the assignment's name (its ``name``)
    assignment_file: str | None = None
    assignment_name: str = "optconform"
