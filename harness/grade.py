"""``optconform grade``: many student submissions into a gradebook and per-student feedback.

Each submission (a ``.py`` file or an ``.ipynb`` notebook) is graded on its own:
it runs in its own sandboxed child process (see :mod:`.session`), and whatever it
does (fails to load, hangs, crashes, raises) costs only its own row. Submissions
are graded concurrently (``--jobs``, default: one per CPU); a line on stderr
reports each one as it finishes.

Into ``--out DIR`` go:

- ``gradebook.csv``: one row per student (``student, file, score, max_score,
  percent, passed, failed, errors, not_implemented, status, diagnosis``), sorted by
  student; ``status`` is ``ok``, ``load_error`` (the submission could not be
  loaded or started: score 0, the reason in ``diagnosis``) or ``grader_error``
  (a fault of the grader itself, which also makes the exit code 1);
- ``gradebook.json``: the same rows plus the counts per op and the diagnoses;
- ``feedback/<student>.txt``: a short friendly header naming the main mistakes,
  then the text report; ``feedback/<student>.json``: the JSON report.

Exit codes: 0 every submission was graded (whatever the scores: a student's
non-conformance is not the grader's failure), 1 the grader failed on some
submission, 2 a usage or input error (bad options, a path that is neither a
submission nor a directory of them; the others are still graded).

A submission's directory layout: a ``.py``/``.ipynb`` file named on the command
line is one student (named after the file's stem); in a directory named on the
command line, each such file directly inside is one student, and each
subdirectory holding exactly one such file is one student named after the
subdirectory (Gradescope- and Moodle-style exports).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from optconform.cli import EXIT_NONCONFORMING, EXIT_OK, EXIT_USAGE, UsageError

from ..reference.conventions import ConventionError, resolve
from . import executors, pages, resume
from .cli import prepare, progress_bar
from .diagnose import mistake_names
from .report import render, to_json_safe
from .results import CaseResult, RunReport
from .runner import run_cases
from .selection import NOT_IN_ASSIGNMENT, course_functions, select
from .session import CallFailed, TargetError, open_session

SUFFIXES = (".py", ".ipynb")

CSV_COLUMNS = ("student", "file", "score", "max_score", "percent", "passed", "failed", "errors",
               "not_implemented", "status", "diagnosis")

_IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints", "__MACOSX"}
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


# --------------------------------------------------------------------------- submissions


@dataclass
class Submission:
    student: str
    path: Path          # the file to grade
    display: str        # the path as the gradebook shows it
    problem: str = ""   # set when the submission is known to be ungradable before it runs (e.g. two files)

    def __post_init__(self):  # names from LMS exports need not be UTF-8: shown with U+FFFD, never a crash
        self.student, self.display = _printable(self.student), _printable(self.display)


def _printable(text: str) -> str:
    """A file name as text that any output can hold (undecodable bytes become U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _loops(path: Path) -> bool:
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return True
    except OSError:
        return False
    return False


def _gradable(path: Path) -> bool:
    return path.suffix in SUFFIXES and not path.name.startswith(".")


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in _IGNORED_DIRS


def expand_submissions(paths: list[str], exclude: Path | None = None) -> tuple[list[Submission], list[str]]:
    """The submissions named by ``paths`` (files and directories) and a one-line error per unusable path."""
    found: list[Submission] = []
    errors: list[str] = []
    for text in paths:
        path = Path(text)
        if not path.exists():
            errors.append(f"{text}: no such file or directory")
        elif path.is_file() and path.suffix.lower() == ".zip":
            found += _from_export(path, text, errors)
        elif path.is_file():
            if path.suffix in SUFFIXES:
                found.append(Submission(path.stem, path, text))
            else:
                errors.append(f"{text}: not a .py file, an .ipynb notebook or a directory of them")
        elif path.is_dir():
            before = len(found)
            try:
                entries = sorted(path.iterdir(), key=lambda p: p.name)
            except OSError as error:
                errors.append(f"{text}: cannot list ({error.strerror or error})")
                continue
            for entry in entries:
                if not _visible(entry) or (exclude is not None and _same_path(entry, exclude)):
                    continue
                if _gradable(entry) and not entry.is_file():
                    what = "a symlink loop" if entry.is_symlink() and _loops(entry) else "not a readable file"
                    found.append(Submission(entry.stem, entry, str(entry), f"{entry.name}: skipped: {what}"))
                elif entry.is_file() and _gradable(entry):
                    found.append(Submission(entry.stem, entry, str(entry)))
                elif entry.is_dir():
                    try:
                        inside = sorted((p for p in entry.iterdir() if p.is_file() and _gradable(p)),
                                        key=lambda p: p.name)
                    except OSError as error:
                        errors.append(f"{entry}: cannot list ({error.strerror or error})")
                        continue
                    if inside:
                        chosen = _chosen(entry.name, inside, str(entry))
                        found.append(Submission(entry.name, chosen, str(chosen)))
                    else:
                        print(f"optconform: note: {_printable(str(entry))}: no .py or .ipynb file inside; not graded",
                              file=sys.stderr)
                elif entry.is_symlink():
                    print(f"optconform: warning: {_printable(str(entry))}: skipped: a broken link or symlink loop",
                          file=sys.stderr)
            if len(found) == before:
                errors.append(f"{text}: no .py or .ipynb submissions in this directory")
        else:
            errors.append(f"{text}: not a file or directory")
    return _deduplicate(found), errors


def _chosen(student: str, files: list[Path], where: str) -> Path:
    """The one file of a student's that is graded; each other one is named as skipped."""
    from .lms import choose

    chosen = choose(files)
    for other in files:
        if other != chosen:
            print(f"optconform: note: {_printable(where)}: {_printable(student)}: skipped {_printable(other.name)} "
                  f"(graded {_printable(chosen.name)}, which defines more of the assignment's functions)",
                  file=sys.stderr)
    return chosen


def _from_export(path: Path, text: str, errors: list[str]) -> list[Submission]:
    """The submissions of an LMS export (Gradescope, Canvas, Moodle zip), unpacked into a private folder
    that is removed when grading ends."""
    import atexit
    import shutil

    from .lms import ExportError, students, unpack

    folder = Path(tempfile.mkdtemp(prefix="optconform-export-"))
    atexit.register(shutil.rmtree, folder, True)
    try:
        files = unpack(path, folder)
    except ExportError as error:
        errors.append(str(error))
        return []
    grouped = students(folder, files)
    others = [f for f in files if f.suffix not in SUFFIXES and f.name != "submission_metadata.yml"]  # read
    if others:
        names = ", ".join(f.name for f in others[:5]) + (", ..." if len(others) > 5 else "")
        print(f"optconform: note: {_printable(text)}: {len(others)} file(s) skipped, not .py or .ipynb ({names})",
              file=sys.stderr)
    if not grouped:
        errors.append(f"{text}: no .py or .ipynb submissions in this export")
    found = []
    for student in sorted(grouped):
        chosen = _chosen(student, grouped[student], text)
        found.append(Submission(student, chosen, f"{text}:{chosen.relative_to(folder).as_posix()}"))
    return found


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def safe_name(student: str) -> str:
    """A file name for ``student``: letters, digits, ``._-`` (others become ``_``), never hidden or empty."""
    name = re.sub(r"[^\w.-]", "_", student, flags=re.UNICODE).strip("._") or "student"
    name = name[:100]
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return name


def _deduplicate(found: list[Submission]) -> list[Submission]:
    """The same file named twice is graded once; two students with one name (or file name) get -2, -3, ..."""
    unique, seen_files, taken = [], set(), set()
    for submission in found:
        key = submission.path.resolve() if not submission.problem else (submission.display,)
        if key in seen_files:
            continue
        seen_files.add(key)
        name, number = submission.student, 1
        while safe_name(name).lower() in taken:
            number += 1
            name = f"{submission.student}-{number}"
        if name != submission.student:
            print(f"optconform: note: two submissions are named {submission.student!r}; "
                  f"{submission.display} is graded as {name!r}", file=sys.stderr)
            submission.student = name
        taken.add(safe_name(name).lower())
        unique.append(submission)
    return unique


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


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
                                   sandbox="off" if getattr(args, "no_sandbox", False) else "required")
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


# --------------------------------------------------------------------------- diagnoses


def _short_diagnosis(diagnosis: str) -> str:
    """``title [name]: explanation Fix: ...`` -> ``title [name]``; anything else, its first 120 characters."""
    match = re.match(r"^(.{3,160}?\[[\w.:-]+\])", diagnosis)
    return match.group(1) if match else _one_line(diagnosis, 120)


@dataclass
class Issue:
    """One thing wrong with a submission: an op's failures, errors or absence."""

    kind: str            # diagnosed | fail | error | not_implemented
    ops: list[str]
    count: int
    total: int
    text: str = ""       # the diagnosis or first message


def _primary_mistake(diagnosis: str) -> str:
    """The mistake a diagnosis names first (its whole text when it names none)."""
    names = mistake_names(diagnosis)
    return names[0] if names else diagnosis


def issues(report: RunReport) -> list[Issue]:
    """What went wrong, most important first: named mistakes, then failures, errors, missing ops."""
    per_op: dict[str, list] = defaultdict(list)
    for case in report.results:
        per_op[case.op].append(case)
    found: list[Issue] = []
    by_diagnosis: dict[str, Issue] = {}
    by_missing: dict[str, Issue] = {}
    for op, cases in per_op.items():
        failing = [c for c in cases if c.status == "fail" and not c.xfail]
        errors = [c for c in cases if c.status == "error" and not c.xfail]
        missing = [c for c in cases if c.status == "not_implemented"]
        # cases are grouped by the mistake their diagnosis names first, so "matches X (also
        # consistent with Y)" counts with "matches X"; the most frequent wording speaks for them
        primary = {id(c): _primary_mistake(c.diagnosis) for c in failing if c.diagnosis}
        mistakes = Counter(primary.values())
        if mistakes:
            mistake, count = mistakes.most_common(1)[0]
            diagnosis = Counter(c.diagnosis for c in failing if primary.get(id(c)) == mistake).most_common(1)[0][0]
            if diagnosis in by_diagnosis:
                issue = by_diagnosis[diagnosis]
                issue.ops.append(op)
                issue.count += count
                issue.total += len(cases)
            else:
                by_diagnosis[diagnosis] = Issue("diagnosed", [op], count, len(cases), diagnosis)
                found.append(by_diagnosis[diagnosis])
            rest = len(failing) - count
            if rest:
                first = next(c for c in failing if primary.get(id(c)) != mistake)
                found.append(Issue("fail", [op], rest, len(cases), first.message))
        elif failing:
            found.append(Issue("fail", [op], len(failing), len(cases), failing[0].message))
        if errors:
            found.append(Issue("error", [op], len(errors), len(cases), errors[0].message))
        if missing:
            function = course_functions(op)[0]
            if function in by_missing:
                by_missing[function].ops.append(op)
                by_missing[function].count += len(missing)
                by_missing[function].total += len(cases)
            else:
                by_missing[function] = Issue("not_implemented", [op], len(missing), len(cases))
                found.append(by_missing[function])
    rank = {"diagnosed": 0, "fail": 1, "error": 2, "not_implemented": 3}
    return sorted(found, key=lambda issue: (rank[issue.kind], -issue.count))


def headline(graded: Graded) -> str:
    """One line for the gradebook: the load error, or the top issues."""
    if graded.status != "ok":
        return graded.reason
    found = issues(graded.report)
    parts = []
    for issue in found[:2]:
        ops = ", ".join(issue.ops)
        if issue.kind == "diagnosed":
            parts.append(f"{ops}: {_short_diagnosis(_mistake(issue.text))} ({issue.count} cases)")
        elif issue.kind == "fail":
            parts.append(f"{ops}: {issue.count} of {issue.total} cases wrong")
        elif issue.kind == "error":
            parts.append(f"{ops}: {issue.count} errors ({_one_line(issue.text, 80)})")
        else:
            parts.append(f"{ops}: not implemented" + _lost_to_syntax(graded.report, issue.ops))
    if len(found) > 2:
        parts.append(f"+{len(found) - 2} more")
    return _one_line("; ".join(parts), 300)


def _lost_to_syntax(report: RunReport, ops: list[str]) -> str:
    """``": a syntax error at ... line N"`` when the function behind ``ops`` sat in a block skipped for one."""
    names = {course_functions(op)[0] for op in ops}
    for warning in report.warnings:
        defines = re.search(r"\[defines ([\w, ]+)\]$", warning)
        if defines and names & {name.strip() for name in defines.group(1).split(",")}:
            return f": {warning[:defines.start()]}"
    return ""


def _function(ops: list[str], steps: bool = True) -> str:
    """The student's function(s) behind ``ops``, e.g. ``update_parameters_with_adam (over several steps)``."""
    names = list(dict.fromkeys(course_functions(op)[0] for op in ops))
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if steps and all(op.endswith(".trajectory") for op in ops):
        text += ", called for several steps in a row,"
    return text


def _mistake(diagnosis: str) -> str:
    """A diagnosis without a leading ``matches`` / ``consistent with``, to follow "a known mistake: "."""
    return re.sub(r"^(matches|consistent with)\s+", "", diagnosis.strip(), flags=re.IGNORECASE)


def feedback_header(graded: Graded, row: dict) -> str:
    """A short, friendly note for the student, naming the main mistakes before the full report."""
    sub = graded.submission
    lines = [f"Feedback for {sub.student} ({_printable(sub.path.name)})",
             f"Score: {row['score']}/{row['max_score']} ({row['percent']:.1f}%)", ""]
    if graded.status != "ok":
        lines += ["Your submission could not be graded, so nothing was checked and the score is 0:",
                  f"  {graded.reason}"]
        if graded.status == "load_error":
            lines += ["", "Fix this (make sure the file opens and runs without errors) and submit again."]
        else:
            lines += ["", "This is a problem with the grader, not necessarily with your work: "
                          "please tell your instructor."]
        return "\n".join(lines)
    found = issues(graded.report)
    if not found:
        lines.append("Everything that was checked matches the reference. Well done!")
    else:
        lines.append("What to look at first:")
        for issue in found[:4]:
            function = _function(issue.ops)
            if issue.kind == "diagnosed":
                text = (f"Your {function} gives wrong results in {issue.count} of {issue.total} checks, "
                        f"and they match a known mistake: {_mistake(issue.text)}")
            elif issue.kind == "fail":
                text = (f"Your {function} does not give the reference results in {issue.count} of "
                        f"{issue.total} checks. First difference: {_one_line(issue.text, 240)}")
            elif issue.kind == "error":
                text = (f"Your {function} raised an error, took too long or returned something the grader "
                        f"could not read in {issue.count} of {issue.total} checks: {_one_line(issue.text, 240)}")
            elif _lost_to_syntax(graded.report, issue.ops):
                text = (f"The grader could not load {_function(issue.ops, steps=False)} ({issue.count} checks scored 0)"
                        f"{_lost_to_syntax(graded.report, issue.ops)}. Fix that syntax error and submit again.")
            else:
                text = (f"The grader could not find {_function(issue.ops, steps=False)} in your submission ({issue.count} checks scored 0). "
                        "Check that it is defined at the top level, with the name and arguments the assignment asks for.")
            lines.append(f"  - {text}")
        if len(found) > 4:
            lines.append(f"  - ... and {len(found) - 4} more: see the full report below.")
    load_warnings = [w for w in graded.report.warnings if "skipped" in w]
    if load_warnings:
        lines += ["", "Parts of your file could not be loaded (and were left out):"]
        lines += [f"  - {_one_line(w, 240)}" for w in load_warnings[:5]]
    lines += ["", "The full report follows: each failing check says what was expected and what your code returned."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- gradebook


def _op_counts(report: RunReport | None) -> dict:
    counts: dict[str, Counter] = {}
    for case in report.results if report else ():
        counts.setdefault(case.op, Counter())["xfail" if case.xfail and case.status != "pass" else case.status] += 1
    return {op: {key: c[key] for key in ("pass", "fail", "error", "not_implemented", "xfail")}
            for op, c in counts.items()}


def make_row(graded: Graded, default_max: int) -> dict:
    sub = graded.submission
    if graded.status == "ok":
        summary = graded.report.summary()
        score, max_score = summary["score"], summary["max_score"]
        counts = (summary["passed"], summary["failed"], summary["errors"], summary["not_implemented"])
    else:
        score, max_score, counts = 0, default_max, (0, 0, 0, 0)
    return {
        "student": sub.student, "file": sub.display, "score": score, "max_score": max_score,
        "percent": round(100.0 * score / max_score, 1) if max_score else 0.0,
        "passed": counts[0], "failed": counts[1], "errors": counts[2], "not_implemented": counts[3],
        "status": graded.status, "diagnosis": headline(graded), "parts": _parts(graded.report),
        "mistakes": "; ".join(sorted({mistake_names(case.diagnosis)[0] for case in
                                      (graded.report.results if graded.report else ())
                                      if case.status == "fail" and mistake_names(case.diagnosis)})),
    }


def _parts(report: RunReport | None) -> dict:
    """``{op or group: (points, max)}``: the assignment file's groups, else one point a case of each op."""
    if report is None:
        return {}
    groups = report.summary().get("points")
    if groups is not None:
        return {g["group"]: (g["points"], g["max"]) for g in groups}
    return {op: (c["pass"], sum(c.values())) for op, c in _op_counts(report).items()}


def _csv_cell(value):
    """Text that a spreadsheet would run as a formula (=, +, -, @) is quoted with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write(path: Path, text: str) -> None:
    """Write ``text`` atomically: a temporary file beside ``path``, then a rename over it."""
    _replace(path, (text if text.endswith("\n") else text + "\n").encode("utf-8", "replace"))


def _replace(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_feedback(graded: Graded, row: dict, feedback_dir: Path) -> None:
    name = safe_name(graded.submission.student)
    header = feedback_header(graded, row)
    if graded.status == "ok":
        body = render(graded.report, "text")
        report_json = render(graded.report, "json")
    else:
        body = ""
        report_json = json.dumps(to_json_safe({
            "target": graded.submission.display, "status": graded.status, "error": graded.reason,
            "conforms": False,
            "summary": {"passed": 0, "failed": 0, "errors": 0, "not_implemented": 0, "score": 0,
                        "max_score": row["max_score"]},
            "cases": []}), indent=2)
    rule = "=" * 72
    _write(feedback_dir / f"{name}.txt", f"{header}\n\n{rule}\n\n{body}" if body else header)
    _write(feedback_dir / f"{name}.json", report_json)
    blocks = pages.student_blocks(graded, row)
    _write(feedback_dir / f"{name}.md", pages.to_markdown(blocks))
    _write(feedback_dir / f"{name}.html", pages.to_html(f"Feedback for {graded.submission.student}", blocks))


def write_gradebook(out: Path, rows: list[dict], graded: list[Graded], meta: dict) -> None:
    table = io.StringIO(newline="")
    parts = list(dict.fromkeys(part for row in rows for part in row["parts"]))  # every op, in first-seen order
    columns = [*CSV_COLUMNS[:5], *(c for part in parts for c in (part, f"{part} max")), *CSV_COLUMNS[5:],
               "mistakes"]
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        cells = {key: _csv_cell(row[key]) for key in (*CSV_COLUMNS, "mistakes")}
        for part in parts:
            cells[part], cells[f"{part} max"] = row["parts"].get(part, ("", ""))
        writer.writerow(cells)
    _replace(out / "gradebook.csv", table.getvalue().encode("utf-8", "replace"))
    by_student = {g.submission.student: g for g in graded}
    entries = []
    for row in rows:
        g = by_student[row["student"]]
        entry = {key: value for key, value in row.items() if key != "parts"}
        entry["parts"] = {part: {"points": got, "max": most} for part, (got, most) in row["parts"].items()}
        entry["feedback"] = f"feedback/{safe_name(row['student'])}.txt"
        entry["seconds"] = round(g.seconds, 2)
        entry["ops"] = _op_counts(g.report)
        entry["diagnosis_summary"] = list(g.report.diagnosis_summary) if g.report else []
        entry["warnings"] = list(g.report.warnings) if g.report else []
        if g.status != "ok":
            entry["reason"] = g.reason
        entries.append(entry)
    _write(out / "gradebook.json", json.dumps(to_json_safe({**meta, "submissions": entries}), indent=2))


def summary_table(rows: list[dict]) -> str:
    width = max([len("student")] + [len(row["student"]) for row in rows])
    width = min(width, 40)
    lines = [f"{'student':<{width}}  {'score':>9}  {'%':>6}  {'status':<12}  diagnosis"]
    for row in rows:
        score = f"{row['score']}/{row['max_score']}"
        lines.append(f"{row['student'][:width]:<{width}}  {score:>9}  {row['percent']:>6.1f}  {row['status']:<12}  "
                     f"{_one_line(row['diagnosis'], 100)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def run_grade(args) -> int:
    prepared = prepare(args)
    if not getattr(args, "no_sandbox", False):
        from .sandbox import probe

        missing = probe()
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
    try:
        selected = select(cases, resolve({}, overrides), args.dtype, ops, skip, xfail, [], NOT_IN_ASSIGNMENT).run
        default_max = len(selected)
        points = getattr(getattr(args, "assignment", None), "points", None)
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
        results = executors.local(todo, args, jobs)
    with progress_bar(len(todo), "grading", unit="submission") as advance:  # on a terminal only
        for result in results:
            graded.append(result)
            if advance is not None:
                advance(result)
    fresh = {result.submission.student for result in graded}
    graded += [earlier[sub.student] for sub in submissions if sub.student not in fresh]
    points_in_force = getattr(getattr(args, "assignment", None), "points", None)
    for result in graded:
        if result.report is not None:
            result.report.points = points_in_force
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

    assignment = getattr(args, "assignment", None)
    points = getattr(assignment, "points", None)
    meta = {"optconform_version": __version__, "dtype": args.dtype, "ops": args.ops or "all",
            "conventions": list(args.convention), "timeout": args.timeout, "vectors": args.vectors or "shipped",
            "max_score": default_max,
            "assignment_file": str(assignment.path) if assignment and assignment.path else None,
            "points": vars(points) if points else "one point a case"}
    try:
        write_gradebook(out, rows, graded, meta)
        summary = pages.class_blocks(rows)
        _write(out / "class.md", pages.to_markdown(summary))
        _write(out / "class.html", pages.to_html("Class summary", summary))
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
