"""Finding submissions: files, folders (one per student), LMS export zips; one file graded per student."""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .choice import IGNORED_DIRS, SUFFIXES, choose
from .exports import ExportError, students, unpack

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
    return not path.name.startswith(".") and path.name not in IGNORED_DIRS


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
