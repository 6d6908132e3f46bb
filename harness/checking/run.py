"""One target checked under one :class:`~.settings.Settings`: from the settings to a :class:`RunReport`.

:func:`prepare` reads and checks everything that can be the user's mistake (the ops,
the conventions, the lists, the vector set) before any target starts;
:func:`run_target` opens the target, runs the selected cases and closes it. The
command line, the autograder and the grader all take this one road.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import NamedTuple

from optconform.errors import UsageError
from optconform.harness.target.session import TargetError, open_session
from optconform.reference.conventions import ConventionError, resolve
from optconform.vectors import VectorError, load_suite, suite_identity

from .results import CaseResult, RunReport
from .runner import Diagnoser, run_cases
from .selection import CaseIdList, SelectionError, parse_conventions, parse_ops, select
from .settings import Settings

IGNORED_CONVENTIONS = ("your file declares OPTCONFORM_CONVENTIONS; it was ignored: the instructor's "
                       "conventions apply to every submission")


class Prepared(NamedTuple):
    """What the settings select, read and checked once: the ops, the convention overrides, the skip and
    xfail lists, and the loaded cases."""

    ops: list[str] | None
    overrides: dict
    skip: CaseIdList
    xfail: CaseIdList
    cases: list


def prepare(settings: Settings) -> Prepared:
    """Everything a run needs that can fail as a usage or input error, checked before a target starts."""
    try:
        ops = parse_ops(settings.ops)
        overrides = parse_conventions(list(settings.conventions))
        skip, xfail = CaseIdList.read(settings.skip), CaseIdList.read(settings.xfail)
        cases = load_suite(settings.vectors, visibility=settings.visibility, allow_modified=settings.allow_modified)
    except (SelectionError, VectorError) as error:
        raise UsageError(str(error)) from None
    if settings.timeout is None or not 0 < settings.timeout < float("inf"):  # also refuses nan
        raise UsageError(f"--timeout must be a positive number of seconds, not {settings.timeout:g}")
    if settings.memory < 256:
        raise UsageError(f"--memory must be at least 256 (MB), not {settings.memory}")
    if settings.max_failures is not None and settings.max_failures < 1:
        raise UsageError(f"--max-failures must be at least 1, not {settings.max_failures}")
    return Prepared(ops, overrides, skip, xfail, cases)


class LoadFailure(UsageError):
    """A target that did not load: a usage error (exit 2) that still carries a report, every case an error."""

    def __init__(self, message: str, report: RunReport):
        super().__init__(message)
        self.report = report


def load_error_report(target: str, message: str, prepared: Prepared, dtype: str) -> RunReport:
    """The report of a target that never loaded: each selected case an error carrying the load message."""
    conventions = resolve({}, prepared.overrides)
    selection = select(prepared.cases, conventions, dtype, prepared.ops, prepared.skip, prepared.xfail)
    report = RunReport(target=target, dtype=dtype, conventions=conventions, target_name=target,
                       skipped=list(selection.skipped), warnings=list(selection.warnings))
    report.results = [CaseResult(id=case.id, op=case.op, status="error", message=f"not loaded: {message}",
                                 description=case.description, why=case.why) for case in selection.run]
    return report


def run_target(settings: Settings, target: str | None, cmd: str | None, prepared: Prepared | None = None,
               diagnoser: Diagnoser | None = None, quiet: bool = False, display: str | None = None) -> RunReport:
    """Open the target, run the selected cases, close; returns the RunReport, which names the target as
    ``display`` (a student's own file name, never where the grader keeps it) where given."""
    prepared = prepared or prepare(settings)
    display = display or target or cmd
    try:
        session = open_session(target, cmd, settings.timeout, in_process=settings.in_process,
                               sandbox=settings.sandbox, memory_mb=settings.memory, module=settings.module)
    except TargetError as error:
        raise LoadFailure(str(error), load_error_report(display, str(error), prepared, settings.dtype)) from None
    try:
        try:  # grading: the instructor decides the conventions
            conventions = resolve({} if settings.graded else session.info.conventions, prepared.overrides)
        except ConventionError as error:
            raise UsageError(f"{session.info.name} declares {error}") from None
        selection = select(prepared.cases, conventions, settings.dtype, prepared.ops, prepared.skip, prepared.xfail,
                           session.info.ops)
        if not selection.run:
            raise UsageError("no case selected: every case was skipped or the selection is empty "
                             "(check --ops, --skip and --dtype)")
        with progress_bar(len(selection.run), session.info.name, quiet) as advance:
            report = run_cases(session, selection, settings.dtype, conventions, display, settings.max_failures,
                               advance, diagnoser)
        report.vectors = suite_identity(settings.vectors)
        report.points = settings.points
        if settings.graded and session.info.conventions:
            report.warnings.append(IGNORED_CONVENTIONS)
        return report
    finally:
        session.close()


@contextmanager
def progress_bar(total: int, label: str, quiet: bool = False, unit: str = "case"):
    """A progress bar on stderr while cases (or submissions) run, only when stderr is a terminal; it is gone
    when they end. Yields ``advance(item)``, or None when there is no bar."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    import shutil

    from tqdm import tqdm

    size = shutil.get_terminal_size()  # a terminal that reports no size (0 x 0) would hide tqdm's bar: 80 x 24
    with tqdm(total=total, desc=label, unit=unit, leave=False, file=sys.stderr, ncols=size.columns or 80,
              nrows=size.lines or 24) as bar:
        yield lambda result: bar.update(1)
