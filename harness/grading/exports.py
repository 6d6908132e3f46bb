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

#: Limits on an export: its members, and the bytes they unpack to.
MAX_MEMBERS = 100_000
MAX_BYTES = 1 << 30
_CANVAS = re.compile(r"^(?P<name>[^_]+?)(?:_late)?_(?P<user>\d+)_(?P<submission>\d+)_(?P<file>.+)$", re.IGNORECASE)
_MOODLE = re.compile(r"^(?P<name>.+?)_\d+_assignsubmission_\w+?_?$")


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


def _gradescope_names(root: Path) -> dict[str, str]:
    metadata = root / "submission_metadata.yml"
    try:
        import yaml
    except ImportError:  # without PyYAML the folder names stand in for the students
        return {}
    try:
        document = yaml.safe_load(metadata.read_text(encoding="utf-8", errors="replace")) or {}
    except (yaml.YAMLError, OSError):
        return {}
    names = {}
    for folder, entry in document.items() if isinstance(document, dict) else ():
        submitters = entry.get(":submitters") or entry.get("submitters") or [] if isinstance(entry, dict) else []
        found = [str(s.get(":name") or s.get("name") or s.get(":sid") or "") for s in submitters if isinstance(s, dict)]
        if any(found):
            names[str(folder)] = " + ".join(n for n in found if n)
    return names


def students(root: Path, files: list[Path]) -> dict[str, list[Path]]:
    """``{student: [their .py/.ipynb files]}`` for an unpacked export rooted at ``root``."""
    tops = [p for p in root.iterdir() if not p.name.startswith(".") and p.name not in IGNORED_DIRS]
    if len(tops) == 1 and tops[0].is_dir():  # an export wrapped in one folder
        root = tops[0]
    gradescope = _gradescope_names(root) if (root / "submission_metadata.yml").is_file() else {}
    grouped: dict[str, list[Path]] = {}
    for path in files:
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            continue
        if path.suffix not in SUFFIXES or IGNORED_DIRS & set(parts) or any(p.startswith(".") for p in parts):
            continue
        if len(parts) == 1:
            canvas = _CANVAS.match(parts[0])
            student = canvas.group("name") if canvas else path.stem
        else:
            folder = parts[0]
            moodle = _MOODLE.match(folder)
            student = gradescope.get(folder) or (moodle.group("name") if moodle else folder)
        grouped.setdefault(student, []).append(path)
    return grouped
