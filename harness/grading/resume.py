"""Resumable grading: one result file per submission, keyed by the file's bytes and the grading set-up.

``grade`` keeps ``OUT/results/STUDENT.json`` for every submission as soon as it is graded
(an interrupted run keeps what it graded). A later run
over the same folder reuses a result whose key still matches (the same file, graded under
the same ops, conventions, dtype, vector set, skip and xfail lists, time limit, points and
optconform version) and grades only what is new or changed; ``--force`` regrades all.
The gradebook is rebuilt from every submission's result. Feedback and results of students
no longer among the submissions are removed, and named.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from optconform import __version__
from optconform.harness.checking.results import RunReport
from optconform.harness.checking.settings import Settings
from optconform.harness.reporting.jsonsafe import to_json_safe
from optconform.vectors import suite_identity

from .atomic import write_atomically
from .feedback import report_json
from .graded import Graded

RESULTS = "results"


def fingerprint(settings: Settings) -> str:
    """What a result depends on besides the file: the grading set-up, as one hash."""

    def contents(path):
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace") if path else None
        except OSError:
            return None

    points = settings.points
    setup = {"version": __version__, "dtype": settings.dtype, "ops": settings.ops,
             "conventions": sorted(settings.conventions), "timeout": settings.timeout, "memory": settings.memory,
             "vectors": suite_identity(settings.vectors), "visibility": settings.visibility,
             "skip": contents(settings.skip), "xfail": contents(settings.xfail), "sandbox": settings.sandbox != "off",
             "points": points.as_dict() if points else None}
    return hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()


def key(submission, setup: str) -> str:
    digest = hashlib.sha256(setup.encode())
    try:
        digest.update(submission.path.read_bytes() if not submission.problem else submission.problem.encode())
    except OSError as error:
        digest.update(str(error).encode())
    return digest.hexdigest()


def load(out: Path, name: str, submission, wanted: str):
    """The earlier Graded of ``submission`` when its key is ``wanted``, else None."""
    try:
        document = json.loads((out / RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        if document.get("key") != wanted:
            return None
        report = RunReport.from_json(document["report"]) if document.get("report") else None
        return Graded(submission, document["status"], report=report, reason=document.get("reason", ""),
                      seconds=float(document.get("seconds", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no result, or one this version cannot read: graded again


def save(out: Path, name: str, graded: Graded, wanted: str) -> None:
    """Keep ``graded`` under ``name``, keyed by ``wanted``."""
    (out / RESULTS).mkdir(parents=True, exist_ok=True)
    head = to_json_safe({"key": wanted, "student": graded.submission.student, "file": graded.submission.display,
                         "status": graded.status, "reason": graded.reason, "seconds": graded.seconds})
    report = report_json(graded.report) if graded.report else "null"  # the feedback's own text, not made again
    write_atomically(out / RESULTS / f"{name}.json", json.dumps(head, separators=(",", ":"))[:-1]
                     + f',"report":{report}}}')


def remove_stale(out: Path, present: set[str]) -> list[str]:
    """Delete the feedback and results of students not in ``present`` (safe names); return their names."""
    gone = set()
    for folder in (out / "feedback", out / RESULTS):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") or not path.is_file() or path.suffix not in (".txt", ".json", ".md", ".html"):
                continue
            if path.stem not in present:
                path.unlink()
                gone.add(path.stem)
    return sorted(gone)
