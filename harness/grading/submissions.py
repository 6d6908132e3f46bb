"""Finding submissions: files, folders (one per student), zips and LMS exports; one file graded per student.

Every student found gets a row, graded or saying why not: a folder with no ``.py`` or
``.ipynb`` in it, a zip with none, a symbolic link (a link is never a submission: in a
folder per student it could name a classmate's file), two students whose files are one
file. Nothing a hostile name or export holds costs more than its own student.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .choice import IGNORED_DIRS, SUFFIXES, choose, set_aside
from .exports import ExportError, students, unpack
from .identity import NONE as NO_IDENTITY
from .identity import Identity

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
#: The longest file name a student's results are written under.
NAME_LIMIT = 100


@dataclass
class Submission:
    student: str
    path: Path          # the file to grade
    display: str        # the path as the gradebook shows it
    problem: str = ""   # set when the submission is known to be ungradable before it runs (e.g. a link)
    note: str = ""      # for the student: which of their files was graded, and those set aside
    identity: Identity = NO_IDENTITY  # who, as the LMS export says (ids, group members, late)

    def __post_init__(self):  # names from LMS exports need not be UTF-8: shown with U+FFFD, never a crash
        self.student, self.display = _printable(self.student), _printable(self.display)


def _printable(text: str) -> str:
    """A file name as text that any output can hold (undecodable bytes become U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _note(text: str) -> None:
    print(f"optconform: note: {_printable(text)}", file=sys.stderr)


def _gradable(path: Path) -> bool:
    return path.suffix in SUFFIXES and not path.name.startswith(".")


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in IGNORED_DIRS


def _private_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # 0700: closed to every sandbox
    atexit.register(shutil.rmtree, folder, True)
    return folder


def expand_submissions(paths: list[str], exclude: Path | None = None) -> tuple[list[Submission], list[str]]:
    """The submissions named by ``paths`` (files, folders, zips) and a one-line error per unusable path."""
    found: list[Submission] = []
    errors: list[str] = []
    for text in paths:
        path = Path(text)
        if path.is_symlink():
            errors.append(f"{text}: a symbolic link: name the file itself")
        elif not path.exists():
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
                if _visible(entry) and not (exclude is not None and _same_path(entry, exclude)):
                    found += _entry(entry)
            if len(found) == before:
                errors.append(f"{text}: no .py or .ipynb submissions in this directory")
        else:
            errors.append(f"{text}: not a file or directory")
    return _deduplicate(found), errors


def _entry(entry: Path) -> list[Submission]:
    """The student an entry of a class folder is: a file, a folder of their files, or a zip of them."""
    student = entry.stem if entry.suffix in (*SUFFIXES, ".zip") else entry.name
    if entry.is_symlink():
        if not (_gradable(entry) or entry.is_dir() or entry.suffix == ".zip"):
            return []
        return [Submission(student, entry, str(entry), f"{entry.name} is a symbolic link, not a file: a link is "
                                                       "never graded (it may name someone else's work)")]
    if entry.is_file() and _gradable(entry):
        return [Submission(student, entry, str(entry))]
    if entry.is_file() and entry.suffix.lower() == ".zip":
        return _zipped(student, entry)
    if entry.is_dir():
        return [_from_folder(student, entry)]
    if _gradable(entry):
        return [Submission(student, entry, str(entry), f"{entry.name}: not a readable file")]
    if entry.is_file():
        _note(f"{entry}: not a .py, .ipynb or .zip file; not graded")
    return []


def _own_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """A student folder's gradable files (searched below it too), and the links among them (never followed)."""
    files, links = [], []
    for current, dirs, names in os.walk(folder):  # os.walk does not enter linked folders
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in sorted(names):
            path = Path(current) / name
            if _gradable(path):
                (links if path.is_symlink() else files).append(path)
    return files, links


def _from_folder(student: str, folder: Path, display: str | None = None) -> Submission:
    try:
        files, links = _own_files(folder)
    except OSError as error:
        return Submission(student, folder, display or str(folder), f"cannot read {folder.name} "
                                                                   f"({error.strerror or error})")
    for link in links:
        _note(f"{link}: skipped: a symbolic link is never graded")
    if not files:
        what = "only symbolic links" if links else "no .py or .ipynb file"
        return Submission(student, folder, display or str(folder), f"{folder.name} holds {what}: nothing to grade")
    chosen = _chosen(student, files, folder)
    note = set_aside(chosen, files, folder)
    return Submission(student, chosen, display or str(chosen), note=note)


def _zipped(student: str, archive: Path) -> list[Submission]:
    """A student's zip in a class folder: their files, unpacked safely into a private folder."""
    folder = _private_folder("optconform-zip-")
    try:
        unpack(archive, folder, _note)
    except ExportError as error:
        return [Submission(student, archive, str(archive), f"{archive.name}: {error}")]
    return [_from_folder(student, folder, str(archive))]


def _chosen(student: str, files: list[Path], where: Path) -> Path:
    """The one file of a student's that is graded; each other one is named on stderr as set aside."""
    chosen = choose(files)
    if len(files) > 1:
        _note(f"{where}: {student}: {set_aside(chosen, files, where)}")
    return chosen


def _from_export(path: Path, text: str, errors: list[str]) -> list[Submission]:
    """The submissions of an LMS export (Gradescope, Canvas, Moodle zip), unpacked into a private folder
    that is removed when grading ends."""
    folder = _private_folder("optconform-export-")
    try:
        files = unpack(path, folder, _note)
    except ExportError as error:
        errors.append(str(error))
        return []
    grouped = students(folder, files)
    others = [f for f in files if f.suffix not in SUFFIXES and f.name != "submission_metadata.yml"]  # read
    if others:
        names = ", ".join(f.name for f in others[:5]) + (", ..." if len(others) > 5 else "")
        _note(f"{text}: {len(others)} file(s) skipped, not .py or .ipynb ({names})")
    if not grouped:
        errors.append(f"{text}: no .py or .ipynb submissions in this export")
    found = []
    for student in sorted(grouped):
        files, identity = grouped[student]
        chosen = _chosen(student, files, path)
        found.append(Submission(student, chosen, f"{text}:{chosen.relative_to(folder).as_posix()}",
                                note=set_aside(chosen, files, folder), identity=identity))
    return found


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def safe_name(student: str) -> str:
    """A file name for ``student``: letters, digits, ``._-`` (others become ``_``), never hidden or empty, at most
    :data:`NAME_LIMIT` characters (a longer one keeps a hash of the whole name, so two never collide)."""
    name = re.sub(r"[^\w.-]", "_", student, flags=re.UNICODE).strip("._") or "student"
    if len(name) > NAME_LIMIT:
        name = name[:NAME_LIMIT - 9] + "-" + hashlib.sha256(student.encode("utf-8", "replace")).hexdigest()[:8]
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return name


def _file_key(path: Path):
    try:
        status = path.stat()
        return status.st_dev, status.st_ino
    except OSError:
        return None


def _deduplicate(found: list[Submission]) -> list[Submission]:
    """The same path named twice for one student is graded once; two students whose files are one file (a hard
    link, a path given twice under two names) are both flagged; two students with one name get -2, -3, ..."""
    unique, owners, taken = [], {}, set()
    for submission in found:
        identity = None if submission.problem else _file_key(submission.path)
        if identity is not None and identity in owners:
            first = owners[identity]
            if first.student == submission.student:
                continue
            for flagged, other in ((first, submission), (submission, first)):
                flagged.problem = (f"{flagged.path.name} is the same file as {other.student}'s submission: neither "
                                   "is graded until each submits their own")
        elif identity is not None:
            owners[identity] = submission
        name, number = submission.student, 1
        while safe_name(name).lower() in taken and number <= len(found):  # each try a new name, a new hash
            number += 1
            name = f"{submission.student}-{number}"
        if name != submission.student:
            _note(f"two submissions are named {submission.student!r}; {submission.display} is graded as {name!r}")
            submission.student = name
        taken.add(safe_name(name).lower())
        unique.append(submission)
    return unique
