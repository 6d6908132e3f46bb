"""The files each learning-management system imports, so that grades go back where the submissions came from.

Written beside the gradebook when a class came from that system's export, one row per
person (each member of a Gradescope group gets the group's score):

- **Canvas**: ``canvas_import.csv``, the gradebook import format: ``Student, ID, SIS User
  ID, SIS Login ID, Section`` and one column for the assignment, whose second row is
  ``Points Possible``. Canvas matches a row by ``ID`` (the user id its export names each
  file with); rename the assignment column to an existing assignment's ``Name (id)``, as
  Canvas's own gradebook export titles it, to fill that assignment rather than create one.
- **Gradescope**: ``gradescope_scores.csv``, keyed by the roster: ``Name, SID, Email,
  Score``.
- **Moodle**: ``moodle_grading_worksheet.csv``, the assignment's grading worksheet
  (``Identifier`` is ``Participant <id>``, the id its export names each folder with), with
  the one-line feedback in ``Feedback comments``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .atomic import replace_atomically
from .identity import Member

CANVAS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
GRADESCOPE = ("Name", "SID", "Email", "Score")
MOODLE = ("Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
          "Last modified (submission)", "Last modified (grade)", "Feedback comments")
FILES = {"canvas": "canvas_import.csv", "gradescope": "gradescope_scores.csv", "moodle": "moodle_grading_worksheet.csv"}


def _cell(value):
    """Text a spreadsheet would run as a formula (=, +, -, @) is written with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _people(rows: list[dict], lms: str) -> list[tuple[Member, dict]]:
    return [(member, row) for row in rows if row["identity"].lms == lms for member in row["identity"].members]


def _canvas(people, assignment: str) -> list[list]:
    most = max((row["max_score"] for _, row in people), default=0)
    table = [[*CANVAS, assignment], ["Points Possible", "", "", "", "", most]]
    table += [[member.name, member.user_id, "", "", "", row["score"]] for member, row in people]
    return table


def _gradescope(people, assignment: str) -> list[list]:
    return [list(GRADESCOPE)] + [[m.name, m.sid, m.email, row["score"]] for m, row in people]


def _moodle(people, assignment: str) -> list[list]:
    return [list(MOODLE)] + [[f"Participant {m.user_id}", m.name, m.email, "", row["score"], row["max_score"], "Yes",
                              "", "", row["diagnosis"]] for m, row in people]


WRITERS = {"canvas": _canvas, "gradescope": _gradescope, "moodle": _moodle}


def write_lms_files(out: Path, rows: list[dict], assignment: str) -> list[str]:
    """Write the import file of every system a row's identity names; returns the files written."""
    written = []
    for lms, name in FILES.items():
        people = _people(rows, lms)
        if not people:
            continue
        table = io.StringIO(newline="")
        csv.writer(table).writerows([[_cell(value) for value in line] for line in WRITERS[lms](people, assignment)])
        replace_atomically(out / name, table.getvalue().encode("utf-8"))
        written.append(name)
    return written
