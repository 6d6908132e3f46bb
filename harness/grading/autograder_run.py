"""One submission, in the LMS's container: ``python -m optconform.harness.grading.autograder_run ROOT`` (Gradescope's
``run_autograder``) or ``... --prairielearn ROOT GRADE`` (PrairieLearn's ``run_prairielearn``).

Each runs once per submission, in a fresh container, as root. :func:`run` finds the
student's file (Gradescope: ``ROOT/submission``; PrairieLearn: ``GRADE/student``), checks
it as ``check --format gradescope|prairielearn`` does (the instructor's conventions,
every call in the sandbox), and **always** writes ``results.json`` (``ROOT/results`` or
``GRADE/results``), last and atomically, whatever the submission does. Where no sandbox
can confine the submission, nothing of it runs: the results say, visibly, that the
autograder is misconfigured, and score 0.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from optconform.errors import UsageError
from optconform.harness.checking.run import LoadFailure, load_error_report, prepare, run_target
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting import render
from optconform.harness.target import sandbox

from .assignment import AssignmentError, build_settings
from .atomic import write_atomically
from .choice import IGNORED_DIRS, choose, set_aside


@dataclass(frozen=True)
class Layout:
    """Where an LMS's container keeps the autograder's files, the student's and the results, and their format."""

    source: Path
    submission: Path
    results: Path
    format: str

    @staticmethod
    def gradescope(root: Path) -> "Layout":
        return Layout(root / "source", root / "submission", root / "results" / "results.json", "gradescope")

    @staticmethod
    def prairielearn(root: Path, grade: Path) -> "Layout":
        return Layout(root / "source", grade / "student", grade / "results" / "results.json", "prairielearn")


def find_submission(folder: Path) -> tuple[Path | None, str]:
    """The file to grade among the submission's ``.py`` and ``.ipynb`` files, and a note on the choice: the
    one that defines the most of the graded functions (a notebook first on a tie)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file()
                   and not p.is_symlink() and not IGNORED_DIRS & set(p.relative_to(folder).parts))
    if not files:
        return None, "no .py or .ipynb file was found in your submission"
    chosen = choose(files)
    return chosen, set_aside(chosen, files, folder)


def misconfigured(layout: Layout) -> str | None:
    """Why no submission may run here (no sandbox, or one that would let it read the autograder), or None."""
    reason = sandbox.probe()
    if reason is None:
        reason = sandbox.exposed([layout.source, layout.results.parent, layout.submission])
    return reason


def run(layout: Layout) -> int:
    """Grade the submission into the layout's results file; a results file is written in every case."""
    started = time.monotonic()
    results, fmt = layout.results, layout.format
    note, document = "", None
    try:
        reason = misconfigured(layout)
        if reason:
            document = _score_zero(fmt, f"the autograder is misconfigured, so your submission was not run (this is "
                                        f"not your mistake: tell your instructor): {reason}")
        else:
            submission, note = find_submission(layout.submission)
            if submission is None:
                document, note = _nothing_submitted(layout, note), ""
            else:
                document = _check(layout, submission)
    except BaseException as error:  # noqa: BLE001 - whatever happens, the student gets a results file
        document = _score_zero(fmt, f"the grader could not grade this submission: {type(error).__name__}: {error}")
        if isinstance(error, KeyboardInterrupt):
            _write(results, document, note, started)
            raise
    _write(results, document, note, started)
    return 0


def _check(layout: Layout, submission: Path) -> dict:
    """Check ``submission`` as ``check --format gradescope|prairielearn`` does, under the assignment file and the
    private vectors the autograder carries; a file that does not load is graded too (every case an error)."""
    try:
        settings = _settings(layout)
        try:
            report = run_target(settings, str(submission), None, diagnoser=Diagnoser(graded=True), quiet=True,
                                display=submission.relative_to(layout.submission).as_posix())
        except LoadFailure as failure:
            report = failure.report
    except (UsageError, AssignmentError) as error:
        return _score_zero(layout.format, str(error))
    return json.loads(render(report, layout.format))


def _settings(layout: Layout):
    """The assignment's settings, from the file and the private vectors the autograder carries."""
    source = layout.source
    config = source / "optconform.toml"
    given = {"vectors": str(source / "vectors")} if (source / "vectors" / "manifest.json").is_file() else {}
    return build_settings(given, str(config) if config.is_file() else None, graded=True, sandbox="required")


def _nothing_submitted(layout: Layout, why: str) -> dict:
    """No file to grade: every check of the assignment scores 0, under its own test, with its full maximum, so the
    student sees what the assignment asks for (and the LMS the right total). PrairieLearn's "not gradable" stays:
    there an empty submission charges no attempt."""
    if layout.format == "prairielearn":
        return _score_zero(layout.format, why)
    try:
        settings = _settings(layout)
        report = load_error_report("(no file)", why, prepare(settings), settings.dtype)
    except (UsageError, AssignmentError) as error:
        return _score_zero(layout.format, f"{why} ({error})")
    report.points = settings.points
    document = json.loads(render(report, layout.format))
    document["output"] = f"Score 0: {why}.\n\n{document.get('output', '')}".strip()
    return document


def _score_zero(fmt: str, message: str) -> dict:
    """Nothing graded: Gradescope's score 0, PrairieLearn's "not gradable" (no attempt charged), saying why."""
    if fmt == "prairielearn":
        return {"gradable": False, "score": 0.0, "message": f"Not graded: {message}.", "output": "", "tests": []}
    return {"score": 0, "output": f"Score 0: {message}.", "visibility": "visible", "tests": []}


def _write(results: Path, document: dict, note: str, started: float) -> None:
    if "gradable" not in document:  # PrairieLearn's format has no execution time
        document["execution_time"] = round(time.monotonic() - started, 3)
    if note:
        document["output"] = f"{note}\n\n{document.get('output', '')}".strip()
    results.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(results, json.dumps(document, indent=2))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1:
        return run(Layout.gradescope(Path(argv[0])))
    if len(argv) == 3 and argv[0] == "--prairielearn":
        return run(Layout.prairielearn(Path(argv[1]), Path(argv[2])))
    print("usage: python -m optconform.harness.grading.autograder_run ROOT | --prairielearn ROOT GRADE",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
