"""``optconform check``: from command-line arguments to a report and an exit code."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from optconform.cli import EXIT_NONCONFORMING, EXIT_OK, UsageError

from ..reference.conventions import ConventionError, resolve
from ..vectors import VectorError, load_suite, suite_identity
from .runner import run_cases
from .selection import CaseIdList, SelectionError, parse_conventions, parse_ops, select
from .session import TargetError, open_session


def prepare(args):
    """Everything a run needs that can fail as a usage or input error, checked before a target starts."""
    try:
        ops = parse_ops(args.ops)
        overrides = parse_conventions(args.convention)
        skip, xfail = CaseIdList.read(args.skip), CaseIdList.read(args.xfail)
        cases = load_suite(args.vectors, visibility=getattr(args, "visibility", None),
                           allow_modified=getattr(args, "allow_modified", False))
    except (SelectionError, VectorError) as error:
        raise UsageError(str(error)) from None
    if args.timeout is not None and not 0 < args.timeout < float("inf"):  # also refuses nan
        raise UsageError(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    if getattr(args, "memory", None) is not None and args.memory < 256:
        raise UsageError(f"--memory must be at least 256 (MB), not {args.memory}")
    if getattr(args, "max_failures", None) is not None and args.max_failures < 1:
        raise UsageError(f"--max-failures must be at least 1, not {args.max_failures}")
    return ops, overrides, skip, xfail, cases


class LoadFailure(UsageError):
    """A target that did not load: a usage error (exit 2) that still carries a report, every case an error."""

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report


def load_error_report(target: str, message: str, prepared, dtype: str):
    """The report of a target that never loaded: each selected case an error carrying the load message."""
    from .results import CaseResult, RunReport

    ops, overrides, skip, xfail, cases = prepared
    conventions = resolve({}, overrides)
    selection = select(cases, conventions, dtype, ops, skip, xfail)
    report = RunReport(target=target, dtype=dtype, conventions=conventions, target_name=target,
                       skipped=list(selection.skipped), warnings=list(selection.warnings))
    report.results = [CaseResult(id=case.id, op=case.op, status="error", message=f"not loaded: {message}",
                                 description=case.description, why=case.why) for case in selection.run]
    return report


def run_target(args, target: str | None, cmd: str | None, prepared=None):
    """Open the target, run the selected cases, close; returns the RunReport."""
    ops, overrides, skip, xfail, cases = prepared or prepare(args)
    try:
        session = open_session(target, cmd, args.timeout, in_process=not getattr(args, "isolate", False),
                               sandbox="off" if getattr(args, "no_sandbox", False) else "auto",
                               memory_mb=getattr(args, "memory", None))
    except TargetError as error:
        raise LoadFailure(str(error), load_error_report(target or cmd, str(error), (ops, overrides, skip, xfail, cases),
                                                        args.dtype)) from None
    try:
        graded = getattr(args, "format", None) in ("gradescope", "prairielearn")  # the instructor decides
        try:
            conventions = resolve({} if graded else session.info.conventions, overrides)
        except ConventionError as error:
            raise UsageError(f"{session.info.name} declares {error}") from None
        selection = select(cases, conventions, args.dtype, ops, skip, xfail, session.info.ops)
        if not selection.run:
            raise UsageError("no case selected: every case was skipped or the selection is empty "
                             "(check --ops, --skip and --dtype)")
        with progress_bar(len(selection.run), session.info.name, getattr(args, "quiet", False)) as advance:
            report = run_cases(session, selection, args.dtype, conventions, target or cmd,
                               getattr(args, "max_failures", None), advance)
        report.vectors = suite_identity(args.vectors)
        report.points = getattr(getattr(args, "assignment", None), "points", None)
        if graded and session.info.conventions:
            from .grade import IGNORED_CONVENTIONS

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


def run_check(args) -> int:
    from .report import render, summary_line

    if bool(args.target) == bool(args.cmd):
        raise UsageError("give exactly one of TARGET or --cmd")
    try:
        report = run_target(args, args.target, args.cmd)
    except LoadFailure as failure:
        if args.output:  # a results file is always written (a Gradescope run needs one); the exit stays 2
            _write(args.output, render(failure.report, args.format))
        raise
    if getattr(args, "quiet", False) and args.format == "text":
        text = summary_line(report)  # the verdict only
    else:
        text = render(report, args.format, verbose=args.verbose) if args.format == "text" else render(report,
                                                                                                    args.format)
    if args.output:
        _write(args.output, text)
        print(render(report, "text") if args.format == "text" else summary_line(report))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    xpassed = [r.id for r in report.results if r.xfail and r.status == "pass"]
    if getattr(args, "strict_xfail", False) and xpassed:  # as pytest's xfail_strict: an xfail that passes fails
        print(f"optconform: {len(xpassed)} case(s) listed as xfail pass (--strict-xfail): {', '.join(xpassed[:5])}",
              file=sys.stderr)
        return EXIT_NONCONFORMING
    return EXIT_OK if report.conforms else EXIT_NONCONFORMING


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
