"""Submissions as learning-management systems export them: a zip from Gradescope, Canvas or Moodle.

``submissions_in_zip`` unpacks an export (safely: no path outside the folder, no link,
bounded size) and returns one :class:`Submission` per student, with the student's
identity read from the export:

- **Gradescope**: ``submission_metadata.yml`` maps each ``submission_<id>/`` folder to its
  submitters' names (a group's names joined with ``+``);
- **Canvas**: flat files ``name_12345_67890_file.py`` (``name_LATE_...`` when late): the
  student is the name part;
- **Moodle**: folders ``Full Name_12345_assignsubmission_file_/``: the student is the
  name part;
- anything else: a folder per student, or one file per student named after them.

Of a student's files, the one graded is the ``.py`` or ``.ipynb`` that defines the most of
the assignment's functions (:func:`choose`); every other file found is a named skip.
"""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from .choice import IGNORED_DIRS, SUFFIXES
from .identity import NONE as NO_IDENTITY
from .identity import Identity, Member

#: Limits on an export: its members, and the bytes they unpack to.
MAX_MEMBERS = 100_000
MAX_BYTES = 1 << 30
_CANVAS = re.compile(r"^(?P<name>[^_]+?)(?P<late>_late)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<file>.+)$",
                     re.IGNORECASE)
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<participant>\d+)_assignsubmission_\w+?_?$")


class ExportError(ValueError):
    """An export that cannot be unpacked safely; the text names the member."""


def unpack(archive_path: Path, into: Path, note: Callable[[str], None] = lambda text: None) -> list[Path]:
    """Every member of the zip under ``into``; refuses absolute or climbing paths and bombs (ExportError), and
    skips, saying so through ``note``, a link and a member that cannot be written (a name too long for the
    file system, a name that is both a file and a folder): it costs only itself."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ExportError(f"{archive_path}: not a readable zip ({error})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_BYTES:
            raise ExportError(f"{archive_path}: over {MAX_MEMBERS} files or {MAX_BYTES >> 20} MiB unpacked")
        written = []
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            if member.filename.startswith(("/", "\\")) or ".." in parts or not parts:
                raise ExportError(f"{archive_path}: member {member.filename!r} points outside the export")
            if stat.S_ISLNK(member.external_attr >> 16):
                note(f"{archive_path}: {member.filename}: skipped: a link is never a submission")
                continue
            target = into.joinpath(*parts)
            try:
                _write_member(archive, member, target, archive_path)
            except (OSError, zipfile.BadZipFile, NotImplementedError, EOFError) as error:
                note(f"{archive_path}: {member.filename}: skipped: cannot be unpacked "
                     f"({getattr(error, 'strerror', None) or error})")
                continue
            written.append(target)
    return written


def _write_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, archive_path: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(member) as source, open(target, "xb") as sink:  # "x": a member named twice is not merged
        remaining = member.file_size + 1
        while chunk := source.read(1 << 20):  # the sizes in the directory may lie: count what comes
            remaining -= len(chunk)
            if remaining < 0:
                raise ExportError(f"{archive_path}: member {member.filename!r} is larger than it says")
            sink.write(chunk)


def _gradescope_identities(root: Path) -> dict[str, Identity]:
    """``{submission folder: Identity}`` from a Gradescope export's ``submission_metadata.yml``."""
    metadata = root / "submission_metadata.yml"
    try:
        import yaml
    except ImportError:  # without PyYAML the folder names stand in for the students
        return {}
    try:
        document = yaml.safe_load(metadata.read_text(encoding="utf-8", errors="replace")) or {}
    except (yaml.YAMLError, OSError):
        return {}
    found = {}
    for folder, entry in document.items() if isinstance(document, dict) else ():
        entry = entry if isinstance(entry, dict) else {}
        submitters = entry.get(":submitters") or entry.get("submitters") or []
        members = tuple(Member(str(s.get(":name") or s.get("name") or ""), str(s.get(":sid") or s.get("sid") or ""),
                               str(s.get(":email") or s.get("email") or "")) for s in submitters if isinstance(s, dict))
        members = tuple(m for m in members if m.name or m.sid or m.email)
        if members:
            late = entry.get(":late", entry.get("late"))
            found[str(folder)] = Identity("gradescope", members, late if isinstance(late, bool) else None,
                                          str(folder).removeprefix("submission_"))
    return found


def _student_name(identity: Identity) -> str:
    return " + ".join(m.name or m.sid or m.email for m in identity.members)


def students(root: Path, files: list[Path]) -> dict[str, tuple[list[Path], Identity]]:
    """``{student: ([their .py/.ipynb files], what the export says of them)}`` for an unpacked export."""
    tops = [p for p in root.iterdir() if not p.name.startswith(".") and p.name not in IGNORED_DIRS]
    if len(tops) == 1 and tops[0].is_dir():  # an export wrapped in one folder
        root = tops[0]
    gradescope = _gradescope_identities(root) if (root / "submission_metadata.yml").is_file() else {}
    grouped: dict[str, tuple[list[Path], Identity]] = {}
    for path in files:
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            continue
        if path.suffix not in SUFFIXES or IGNORED_DIRS & set(parts) or any(p.startswith(".") for p in parts):
            continue
        identity = NO_IDENTITY
        if len(parts) == 1:
            canvas = _CANVAS.match(parts[0])
            student = canvas.group("name") if canvas else path.stem
            if canvas:
                identity = Identity("canvas", (Member(student, user_id=canvas.group("user")),),
                                    canvas.group("late") is not None, canvas.group("submission"))
        else:
            folder = parts[0]
            moodle = _MOODLE.match(folder)
            if folder in gradescope:
                identity = gradescope[folder]
                student = _student_name(identity)
            elif moodle:
                student = moodle.group("name")
                identity = Identity("moodle", (Member(student, user_id=moodle.group("participant")),))
            else:
                student = folder
        grouped.setdefault(student, ([], identity))[0].append(path)
    return grouped
