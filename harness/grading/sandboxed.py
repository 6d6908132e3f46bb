"""Grading one submission: its own sandboxed child, the instructor's conventions, a :class:`Graded` whatever
it does."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from optconform.errors import UsageError
from optconform.harness.checking.run import IGNORED_CONVENTIONS, Prepared
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import NOT_IN_ASSIGNMENT, select
from optconform.harness.checking.settings import Settings
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting import pages
from optconform.harness.target.session import CallFailed, TargetError, open_session
from optconform.reference.conventions import resolve

from .graded import Graded, one_line
from .submissions import Submission


class _GuardedSession:
    """A session that stops calling once grading is interrupted."""

    def __init__(self, inner, stop: threading.Event):
        self.inner, self.stop = inner, stop
        self.info = inner.info

    def call(self, op, args, conventions=None):
        if self.stop.is_set():
            raise CallFailed("not run: grading was interrupted")
        return self.inner.call(op, args, conventions)

    def call_stream(self, calls, conventions=None, sequence=False):
        if self.stop.is_set():
            return iter([CallFailed("not run: grading was interrupted") for _ in calls])
        return self.inner.call_stream(calls, conventions, sequence)

    def call_many(self, calls, conventions=None, sequence=False):
        return list(self.call_stream(calls, conventions, sequence))

    def call_chain(self, init, start, calls, carry, conventions=None):
        if self.stop.is_set():
            return [CallFailed("not run: grading was interrupted")]
        return self.inner.call_chain(init, start, calls, carry, conventions)

    def close(self):
        self.inner.close()


def _shorten_paths(text: str, path: Path) -> str:
    """The student's absolute path in a message, shown as the file name."""
    for form in (str(path.resolve()), os.path.abspath(path)):
        text = text.replace(form, path.name)
    return text


def grade_one(submission: Submission, settings: Settings, prepared: Prepared, stop: threading.Event) -> Graded:
    """Grade one submission; whatever it does, a :class:`Graded` comes back."""
    started = time.monotonic()
    if submission.problem:
        return Graded(submission, "load_error", reason=submission.problem)
    if stop.is_set():
        return Graded(submission, "grader_error", reason="not graded: grading was interrupted")
    try:
        try:
            session = open_session(str(submission.path), None, settings.timeout, sandbox=settings.sandbox,
                                   memory_mb=settings.memory)
        except TargetError as error:
            return Graded(submission, "load_error", reason=one_line(_shorten_paths(str(error), submission.path)),
                          seconds=time.monotonic() - started)
        guarded = _GuardedSession(session, stop)
        try:
            # The instructor decides the conventions: a submission's own declaration is ignored.
            conventions = resolve({}, prepared.overrides)
            selection = select(prepared.cases, conventions, settings.dtype, prepared.ops, prepared.skip,
                               prepared.xfail, session.info.ops, NOT_IN_ASSIGNMENT)
            # the report (and so the student's feedback) names the student's own file, never where the grader
            # keeps it; the gradebook has the whole path
            report = run_cases(guarded, selection, settings.dtype, conventions, submission.path.name,
                               diagnoser=Diagnoser(graded=True))
            report.points = settings.points
            pages.draw_plots(report)  # here, in the worker: the pages are written by the parent, later
            if session.info.conventions:
                report.warnings.append(IGNORED_CONVENTIONS)
        finally:
            guarded.close()
        return Graded(submission, "ok", report=report, seconds=time.monotonic() - started)
    except UsageError as error:
        return Graded(submission, "load_error", reason=one_line(_shorten_paths(str(error), submission.path)),
                      seconds=time.monotonic() - started)
    except Exception as error:  # noqa: BLE001 - one submission's trouble never stops the others
        return Graded(submission, "grader_error", reason=one_line(f"grader error: {type(error).__name__}: {error}"),
                      seconds=time.monotonic() - started)
