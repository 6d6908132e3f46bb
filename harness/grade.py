"""``optconform grade``: many student submissions into a gradebook and per-student feedback.

Grading is a room of its own, one module a step:

- :mod:`.submissions` finds them (files, one folder per student, LMS export zips
  via :mod:`.lms`) and picks the one file graded per student;
- :mod:`.executors` runs each in its own sandboxed child (:mod:`.session`), in worker
  processes here or on a Dask cluster; whatever a submission does (fails to load,
  hangs, crashes, raises) costs only its own row; :mod:`.resume` keeps each result;
- :mod:`.gradebook` writes ``gradebook.csv`` and ``gradebook.json``;
- :mod:`.feedback` and :mod:`.pages` write ``feedback/STUDENT.txt|.json|.md|.html``
  and the class summary.

This module grades one submission (:func:`grade_one`) and runs the whole
(:func:`run_grade`). Only the grader writes, each file atomically, after every
sandbox is gone.

Exit codes: 0 every submission was graded (whatever the scores: a student's
non-conformance is not the grader's failure), 1 the grader failed on some
submission, 2 a usage or input error (bad options, a path that is neither a
submission nor a folder or export of them; the others are still graded).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from optconform.cli import EXIT_NONCONFORMING, EXIT_OK, EXIT_USAGE, UsageError

from ..reference.conventions import ConventionError, resolve
from . import executors, pages, resume
from .cli import prepare, progress_bar
from .atomic import write_atomically
from .feedback import _one_line, write_feedback
from .gradebook import make_row, summary_table, write_gradebook
from .results import CaseResult, RunReport
from .runner import run_cases
from .selection import NOT_IN_ASSIGNMENT, select
from .submissions import Submission, expand_submissions, safe_name
from .session import CallFailed, TargetError, open_session


# --------------------------------------------------------------------------- one submission


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


@dataclass
class Graded:
    submission: Submission
    status: str                      # ok | load_error | grader_error
    report: RunReport | None = None
    reason: str = ""
    seconds: float = 0.0
    row: dict = field(default_factory=dict)


IGNORED_CONVENTIONS = ("your file declares OPTCONFORM_CONVENTIONS; it was ignored: the instructor's "
                       "conventions apply to every submission")


def _shorten_paths(text: str, path: Path) -> str:
    """The student's absolute path in a message, shown as the file name."""
    for form in (str(path.resolve()), os.path.abspath(path)):
        text = text.replace(form, path.name)
    return text


def grade_one(submission: Submission, args, prepared, stop: threading.Event) -> Graded:
    """Grade one submission; whatever it does, a :class:`Graded` comes back."""
    started = time.monotonic()
    if submission.problem:
        return Graded(submission, "load_error", reason=submission.problem)
    if stop.is_set():
        return Graded(submission, "grader_error", reason="not graded: grading was interrupted")
    ops, overrides, skip, xfail, cases = prepared
    try:
        try:
            session = open_session(str(submission.path), None, args.timeout,
                                   sandbox="off" if getattr(args, "no_sandbox", False) else "required", memory_mb=args.memory)
        except TargetError as error:
            return Graded(submission, "load_error", reason=_one_line(_shorten_paths(str(error), submission.path)),
                          seconds=time.monotonic() - started)
        guarded = _GuardedSession(session, stop)
        try:
            # The instructor decides the conventions: a submission's own declaration is ignored.
            conventions = resolve({}, overrides)
            selection = select(cases, conventions, args.dtype, ops, skip, xfail, session.info.ops, NOT_IN_ASSIGNMENT)
            report = run_cases(guarded, selection, args.dtype, conventions, submission.display)
            report.points = getattr(getattr(args, "assignment", None), "points", None)
            pages.draw_plots(report)  # here, in the worker: the pages are written by the parent, later
            if session.info.conventions:
                report.warnings.append(IGNORED_CONVENTIONS)
        finally:
            guarded.close()
        return Graded(submission, "ok", report=report, seconds=time.monotonic() - started)
    except UsageError as error:
        return Graded(submission, "load_error", reason=_one_line(_shorten_paths(str(error), submission.path)),
                      seconds=time.monotonic() - started)
    except Exception as error:  # noqa: BLE001 - one submission's trouble never stops the others
        return Graded(submission, "grader_error", reason=_one_line(f"grader error: {type(error).__name__}: {error}"),
                      seconds=time.monotonic() - started)


# --------------------------------------------------------------------------- entry point


def run_grade(args) -> int:
    if not getattr(args, "no_sandbox", False):
        from .sandbox import probe

        # bubblewrap's trial run starts a sandboxed Python: it waits on it while the vectors load
        trial = threading.Thread(target=probe, daemon=True)
        trial.start()
    prepared = prepare(args)
    if not getattr(args, "no_sandbox", False):
        trial.join()
        missing = probe()  # the trial's answer, kept
        if missing:
            raise UsageError(f"no sandbox for untrusted submissions: {missing}; run `optconform doctor`, or "
                             "pass --no-sandbox to grade them unconfined")
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    out = Path(args.out)
    submissions, path_errors = expand_submissions(args.submissions, exclude=out)
    for line in path_errors:
        print(f"optconform: error: {line}", file=sys.stderr)
    if not submissions:
        raise UsageError("nothing to grade: no .py or .ipynb submissions among the paths given")
    feedback_dir = out / "feedback"
    try:
        feedback_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {feedback_dir}: {error.strerror or error}") from None

    ops, overrides, skip, xfail, cases = prepared
    assignment = getattr(args, "assignment", None)
    points = getattr(assignment, "points", None)
    try:
        selected = select(cases, resolve({}, overrides), args.dtype, ops, skip, xfail, [], NOT_IN_ASSIGNMENT).run
        default_max = len(selected)
        if points is not None:  # what a submission that does not load is out of
            default_max = points.score([CaseResult(c.id, c.op, "fail", tags=tuple(c.tags)) for c in selected])[1]
    except ConventionError as error:
        raise UsageError(str(error)) from None
    if default_max == 0:
        raise UsageError("no case selected: every case was skipped or the selection is empty "
                         "(check --ops, --skip and --dtype)")

    graded: list[Graded] = []
    rows_by_student: dict[str, dict] = {}
    write_errors: list[str] = []
    setup = resume.fingerprint(args)
    keys = {sub.student: resume.key(sub, setup) for sub in submissions}
    earlier = {} if args.force else {sub.student: resume.load(out, safe_name(sub.student), sub, keys[sub.student])
                                     for sub in submissions}
    todo = [sub for sub in submissions if earlier.get(sub.student) is None]
    if len(todo) < len(submissions):
        print(f"optconform: {len(submissions) - len(todo)} submission(s) unchanged since the last run: their "
              "results are reused (--force grades everything again)", file=sys.stderr)
    if not todo:
        results = iter(())
    elif args.executor == "dask":
        if not args.scheduler:
            raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
        results = executors.dask(todo, args, args.scheduler)
    else:
        results = executors.local(todo, args, jobs, prepared)
    with progress_bar(len(todo), "grading", unit="submission") as advance:  # on a terminal only
        for result in results:
            graded.append(result)
            if advance is not None:
                advance(result)
    fresh = {result.submission.student for result in graded}
    graded += [earlier[sub.student] for sub in submissions if sub.student not in fresh]
    for result in graded:
        if result.report is not None:  # the points in force, also for a result kept from an earlier run
            result.report.points = points
        rows_by_student[result.submission.student] = make_row(result, default_max)

    # Every sandbox is gone by now: only the grader writes, each file atomically, after all are graded.
    for result in graded:
        try:
            write_feedback(result, rows_by_student[result.submission.student], feedback_dir)
            if result.submission.student in fresh:
                resume.save(out, safe_name(result.submission.student), result, keys[result.submission.student])
        except OSError as error:
            write_errors.append(f"cannot write feedback for {result.submission.student}: {error.strerror or error}")
    stale = resume.remove_stale(out, {safe_name(sub.student) for sub in submissions})
    if stale:
        print(f"optconform: removed the feedback of {len(stale)} student(s) no longer among the submissions: "
              f"{', '.join(stale[:10])}{', ...' if len(stale) > 10 else ''}", file=sys.stderr)
    rows = [rows_by_student[name] for name in sorted(rows_by_student, key=lambda s: (s.lower(), s))]
    from optconform import __version__

    meta = {"optconform_version": __version__, "dtype": args.dtype, "ops": args.ops or "all",
            "conventions": list(args.convention), "timeout": args.timeout, "vectors": args.vectors or "shipped",
            "max_score": default_max,
            "assignment_file": str(assignment.path) if assignment and assignment.path else None,
            "points": vars(points) if points else "one point a case"}
    try:
        write_gradebook(out, rows, graded, meta)
        summary = pages.class_blocks(rows)
        write_atomically(out / "class.md", pages.to_markdown(summary))
        write_atomically(out / "class.html", pages.to_html("Class summary", summary))
    except OSError as error:
        raise UsageError(f"cannot write the gradebook in {out}: {error.strerror or error}") from None
    for line in write_errors:
        print(f"optconform: error: {line}", file=sys.stderr)

    print(summary_table(rows))
    statuses = Counter(row["status"] for row in rows)
    mean = sum(row["percent"] for row in rows) / len(rows)
    print(f"\ngraded {len(rows)} submission{'' if len(rows) == 1 else 's'}: {statuses['ok']} ok, "
          f"{statuses['load_error']} load error{'' if statuses['load_error'] == 1 else 's'}"
          + (f", {statuses['grader_error']} grader error(s)" if statuses["grader_error"] else "")
          + f"; mean {mean:.1f}%; gradebook and feedback in {out}")
    if path_errors:
        print(f"optconform: error: {len(path_errors)} path(s) could not be graded (see above)", file=sys.stderr)
        return EXIT_USAGE
    if statuses["grader_error"] or write_errors:
        return EXIT_NONCONFORMING
    return EXIT_OK
