"""``optconform grade``: many student submissions into a gradebook and per-student feedback.

Grading is a room of its own, one module a step:

- :mod:`.submissions` finds them (files, one folder per student, LMS export zips
  via :mod:`.exports`) and picks the one file graded per student (:mod:`.choice`);
- :mod:`.executors` runs each (:func:`.sandboxed.grade_one`: its own sandboxed child),
  in worker processes here or on a Dask cluster; whatever a submission does (fails to
  load, hangs, crashes, raises) costs only its own row; :mod:`.resume` keeps each result;
- :mod:`.gradebook` writes ``gradebook.csv`` and ``gradebook.json``;
- :mod:`.feedback` and :mod:`optconform.harness.reporting.pages` write
  ``feedback/STUDENT.txt|.json|.md|.html`` and the class summary.

This module runs the whole (:func:`run_grade`). Only the grader writes, each file
atomically, after every sandbox is gone.

Exit codes: 0 every submission was graded (whatever the scores: a student's
non-conformance is not the grader's failure), 1 the grader failed on some
submission, 2 a usage or input error (bad options, a path that is neither a
submission nor a folder or export of them; the others are still graded).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from optconform.errors import EXIT_NONCONFORMING, EXIT_OK, EXIT_USAGE, UsageError
from optconform.harness.checking.results import CaseResult
from optconform.harness.checking.run import prepare, progress_bar
from optconform.harness.checking.selection import DEFAULT_COURSE, NOT_IN_ASSIGNMENT, required_functions, select
from optconform.harness.checking.settings import Settings
from optconform.harness.reporting import pages
from optconform.harness.target.sandbox import exposed, probe
from optconform.reference.conventions import ConventionError, resolve

from . import executors, resume
from .atomic import write_atomically
from .feedback import write_feedback
from .gradebook import make_row, summary_table, write_gradebook
from .graded import Graded
from .lms_files import write_lms_files
from .submissions import expand_submissions, safe_name


@dataclass(frozen=True)
class GradePlan:
    """What ``grade`` grades and where its results go (the how is the run's :class:`Settings`)."""

    submissions: tuple[str, ...]
    out: Path = Path("grades")
    jobs: int | None = None          # worker processes (default: one per core)
    force: bool = False              # grade again what an earlier run into ``out`` already graded
    executor: str = "local"          # local | dask
    scheduler: str | None = None     # the Dask scheduler's address


# --------------------------------------------------------------------------- entry point


def _case_ops(prepared, left_out) -> list[str]:
    return [op for op in dict.fromkeys(case.op for case in prepared.cases) if op not in left_out]


def run_grade(settings: Settings, plan: GradePlan) -> int:
    sandboxed = settings.sandbox != "off"
    if sandboxed:
        # bubblewrap's trial run starts a sandboxed Python: it waits on it while the vectors load
        trial = threading.Thread(target=probe, daemon=True)
        trial.start()
    prepared = prepare(settings)
    if sandboxed:
        trial.join()
        missing = probe()  # the trial's answer, kept
        if missing:
            raise UsageError(f"no sandbox for untrusted submissions: {missing}; run `optconform doctor`, or "
                             "pass --no-sandbox to grade them unconfined")
    jobs = plan.jobs if plan.jobs is not None else (os.cpu_count() or 1)
    out = plan.out
    submissions, path_errors = expand_submissions(list(plan.submissions), exclude=out)
    if not submissions and len(path_errors) == 1:  # one error, said once
        raise UsageError(path_errors[0])
    for line in path_errors:
        print(f"optconform: error: {line}", file=sys.stderr)
    if not submissions:
        raise UsageError("nothing to grade: no .py or .ipynb submissions among the paths given")
    feedback_dir = out / "feedback"
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # the gradebook is the grader's, no submission's
        feedback_dir.mkdir(exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {feedback_dir}: {error.strerror or error}") from None
    if sandboxed:  # an engine that hides only what is closed (the uid engine): the class, the output, the vectors
        open_to_submissions = exposed([*plan.submissions, out, *([settings.vectors] if settings.vectors else [])])
        if open_to_submissions:
            raise UsageError(open_to_submissions)

    points = settings.points
    if settings.ops is None:  # said before anything is graded: the class is held to the 2021+ version
        print(f"optconform: note: no course version or ops given: grading the {DEFAULT_COURSE}+ version of the "
              f"assignment ({', '.join(required_functions(_case_ops(prepared, NOT_IN_ASSIGNMENT)))}); set course = "
              '"2017" or "2018" in optconform.toml (or --course) for the earlier versions', file=sys.stderr)
    try:
        selected = select(prepared.cases, resolve({}, prepared.overrides), settings.dtype, prepared.ops, prepared.skip,
                          prepared.xfail, [], NOT_IN_ASSIGNMENT).run
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
    setup = resume.fingerprint(settings)
    keys = {sub.student: resume.key(sub, setup) for sub in submissions}
    earlier = {} if plan.force else {sub.student: resume.load(out, safe_name(sub.student), sub, keys[sub.student])
                                     for sub in submissions}
    todo = [sub for sub in submissions if earlier.get(sub.student) is None]
    if len(todo) < len(submissions):
        print(f"optconform: {len(submissions) - len(todo)} submission(s) unchanged since the last run: their "
              "results are reused (--force grades everything again)", file=sys.stderr)
    if not todo:
        results = iter(())
    elif plan.executor == "dask":
        results = executors.dask(todo, settings, plan.scheduler)
    else:
        results = executors.local(todo, settings, jobs, prepared)
    def record(result: Graded, fresh: bool) -> None:
        """A submission's row, its feedback and (graded now) its result for the next run, each file written
        atomically by the grader (the output folder is open to no sandbox: see ``exposed`` above)."""
        if result.report is not None:  # the points in force, also for a result kept from an earlier run
            result.report.points = points
        rows_by_student[result.submission.student] = row = make_row(result, default_max)
        try:
            write_feedback(result, row, feedback_dir)
            if fresh:
                resume.save(out, safe_name(result.submission.student), result, keys[result.submission.student])
        except OSError as error:
            write_errors.append(f"cannot write feedback for {result.submission.student}: {error.strerror or error}")

    # Each result is written as it comes, while the workers grade the rest: an interrupted run keeps what it
    # graded, and the next one grades only the rest.
    with progress_bar(len(todo), "grading", unit="submission") as advance:  # on a terminal only
        try:
            for result in results:
                graded.append(result)
                record(result, fresh=True)
                if advance is not None:
                    advance(result)
        except KeyboardInterrupt:
            if graded:
                print(f"optconform: the results of {len(graded)} graded submission(s) are kept in "
                      f"{out / resume.RESULTS}: the same command grades the rest", file=sys.stderr)
            raise
    fresh = {result.submission.student for result in graded}
    for sub in submissions:
        if sub.student not in fresh:
            graded.append(earlier[sub.student])
            record(earlier[sub.student], fresh=False)
    stale = resume.remove_stale(out, {safe_name(sub.student) for sub in submissions})
    if stale:
        print(f"optconform: removed the feedback of {len(stale)} student(s) no longer among the submissions: "
              f"{', '.join(stale[:10])}{', ...' if len(stale) > 10 else ''}", file=sys.stderr)
    rows = [rows_by_student[name] for name in sorted(rows_by_student, key=lambda s: (s.lower(), s))]
    from optconform import __version__

    meta = {"optconform_version": __version__, "dtype": settings.dtype, "ops": settings.ops or "all",
            "course": settings.course or (None if settings.ops else DEFAULT_COURSE),
            "conventions": list(settings.conventions), "timeout": settings.timeout,
            "vectors": settings.vectors or "shipped", "max_score": default_max,
            "assignment_file": settings.assignment_file,
            "points": points.as_dict() if points else "one point a case"}
    try:
        write_gradebook(out, rows, graded, meta)
        for name in write_lms_files(out, rows, settings.assignment_name):
            print(f"optconform: wrote {out / name}, the file its LMS imports the grades from", file=sys.stderr)
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
    print(f"\n{_what_was_graded(len(fresh), len(rows) - len(fresh))}: {statuses['ok']} ok, "
          f"{statuses['load_error']} load error{'' if statuses['load_error'] == 1 else 's'}"
          + (f", {statuses['grader_error']} grader error(s)" if statuses["grader_error"] else "")
          + f"; mean {mean:.1f}%; gradebook and feedback in {out}")
    if path_errors:
        print(f"optconform: error: {len(path_errors)} path(s) could not be graded (see above)", file=sys.stderr)
        return EXIT_USAGE
    if statuses["grader_error"] or write_errors:
        return EXIT_NONCONFORMING
    return EXIT_OK


def _what_was_graded(fresh: int, kept: int) -> str:
    """``graded 3 submissions``, ``graded 1 submission (9 kept from the last run)``, or, when nothing changed,
    ``nothing changed since the last run: 10 submissions kept``."""
    def count(n: int) -> str:
        return f"{n} submission{'' if n == 1 else 's'}"

    if not fresh:
        return f"nothing changed since the last run: {count(kept)} kept"
    return f"graded {count(fresh)}" + (f" ({kept} kept from the last run)" if kept else "")
