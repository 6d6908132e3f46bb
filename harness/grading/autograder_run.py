"""One Gradescope submission: ``run_autograder`` runs ``python -m optconform.harness.grading.autograder_run ROOT``.

Gradescope runs it once per submission, in a fresh container, as root. :func:`run` finds
the student's file under ``ROOT/submission``, checks it as ``check --format gradescope``
does (the instructor's conventions, every call in the sandbox), and **always** writes
``ROOT/results/results.json``, last and atomically, whatever the submission does. Where
no sandbox can confine the submission, nothing of it runs: the results say, visibly, that
the autograder is misconfigured, and score 0.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from optconform.errors import UsageError
from optconform.harness.checking.run import LoadFailure, run_target
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting import render
from optconform.harness.target import sandbox

from .assignment import AssignmentError, build_settings
from .atomic import write_atomically
from .choice import IGNORED_DIRS, choose, set_aside


def find_submission(folder: Path) -> tuple[Path | None, str]:
    """The file to grade among the submission's ``.py`` and ``.ipynb`` files, and a note on the choice: the
    one that defines the most of the graded functions (a notebook first on a tie)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file()
                   and not p.is_symlink() and not IGNORED_DIRS & set(p.relative_to(folder).parts))
    if not files:
        return None, "no .py or .ipynb file was found in your submission"
    chosen = choose(files)
    return chosen, set_aside(chosen, files, folder)


def misconfigured(root: Path) -> str | None:
    """Why no submission may run here (no sandbox, or one that would let it read the autograder), or None."""
    reason = sandbox.probe()
    if reason is None:
        reason = sandbox.exposed([root / "source", root / "results", root / "submission"])
    return reason


def run(root: Path) -> int:
    """Grade ``root/submission`` into ``root/results/results.json``; a results file is written in every case."""
    started = time.monotonic()
    results = root / "results" / "results.json"
    note, document = "", None
    try:
        reason = misconfigured(root)
        if reason:
            document = _score_zero(f"the autograder is misconfigured, so your submission was not run (this is not "
                                   f"your mistake: tell your instructor): {reason}")
        else:
            submission, note = find_submission(root / "submission")
            if submission is None:
                document, note = _score_zero(note), ""
            else:
                document = _check(root, submission)
    except BaseException as error:  # noqa: BLE001 - whatever happens, the student gets a results file
        document = _score_zero(f"the grader could not grade this submission: {type(error).__name__}: {error}")
        if isinstance(error, KeyboardInterrupt):
            _write(results, document, note, started)
            raise
    _write(results, document, note, started)
    return 0


def _check(root: Path, submission: Path) -> dict:
    """Check ``submission`` as ``check --format gradescope`` does, under the assignment file and the private
    vectors the zip carries; a file that does not load is graded too (every case an error)."""
    source = root / "source"
    config = source / "optconform.toml"
    given = {"vectors": str(source / "vectors")} if (source / "vectors" / "manifest.json").is_file() else {}
    try:
        settings = build_settings(given, str(config) if config.is_file() else None, graded=True, sandbox="required")
        try:
            report = run_target(settings, str(submission), None, diagnoser=Diagnoser(), quiet=True,
                                display=submission.relative_to(root / "submission").as_posix())
        except LoadFailure as failure:
            report = failure.report
    except (UsageError, AssignmentError) as error:
        return _score_zero(str(error))
    return json.loads(render(report, "gradescope"))


def _score_zero(message: str) -> dict:
    return {"score": 0, "output": f"Score 0: {message}.", "visibility": "visible", "tests": []}


def _write(results: Path, document: dict, note: str, started: float) -> None:
    document["execution_time"] = round(time.monotonic() - started, 3)
    if note:
        document["output"] = f"{note}\n\n{document.get('output', '')}".strip()
    results.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(results, json.dumps(document, indent=2))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m optconform.harness.grading.autograder_run ROOT", file=sys.stderr)
        return 2
    return run(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
