"""The gradebook: a row per student (score, parts, status, mistakes), written as CSV and JSON, atomically."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from optconform.harness.checking.results import RunReport, mistake_names
from optconform.harness.reporting.jsonsafe import to_json_safe
from optconform.harness.reporting.story import build_story
from optconform.harness.reporting.text import score_text

from .atomic import replace_atomically, write_atomically
from .feedback import headline
from .graded import Graded, one_line
from .submissions import safe_name

CSV_COLUMNS = ("student", "file", "score", "max_score", "percent", "conforms", "passed", "failed", "errors",
               "not_implemented", "status", "diagnosis")
#: Who each row is, as the LMS export said: one row per person (each member of a Gradescope group).
IDENTITY_COLUMNS = ("name", "sid", "email", "user_id", "lms", "submission_id", "late")


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
        "conforms": "yes" if graded.status == "ok" and graded.report.conforms else "no",
        "identity": sub.identity,
        "passed": counts[0], "failed": counts[1], "errors": counts[2], "not_implemented": counts[3],
        "status": graded.status, "diagnosis": headline(graded), "parts": _parts(graded.report),
        "mistakes": "; ".join(sorted({name for part in (build_story(graded.report).parts if graded.report else ())
                                      if part.verdict == "mistake" for name in mistake_names(part.mistake)})),
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


def _people(row: dict) -> list[dict]:
    """The row's identity cells, one set per person it stands for."""
    identity = row["identity"]
    late = "" if identity.late is None else ("yes" if identity.late else "no")
    members = identity.members or (None,)
    return [{"name": m.name if m else row["student"], "sid": m.sid if m else "", "email": m.email if m else "",
             "user_id": m.user_id if m else "", "lms": identity.lms, "submission_id": identity.submission_id,
             "late": late} for m in members]


def write_gradebook(out: Path, rows: list[dict], graded: list[Graded], meta: dict) -> None:
    table = io.StringIO(newline="")
    parts = list(dict.fromkeys(part for row in rows for part in row["parts"]))  # every op, in first-seen order
    columns = [*CSV_COLUMNS[:6], *(c for part in parts for c in (part, f"{part} max")), *CSV_COLUMNS[6:],
               "mistakes", *IDENTITY_COLUMNS]
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        cells = {key: _csv_cell(row[key]) for key in (*CSV_COLUMNS, "mistakes")}
        for part in parts:
            cells[part], cells[f"{part} max"] = row["parts"].get(part, ("", ""))
        for person in _people(row):
            writer.writerow({**cells, **{key: _csv_cell(value) for key, value in person.items()}})
    replace_atomically(out / "gradebook.csv", table.getvalue().encode("utf-8", "replace"))
    by_student = {g.submission.student: g for g in graded}
    entries = []
    for row in rows:
        g = by_student[row["student"]]
        entry = {key: value for key, value in row.items() if key not in ("parts", "identity")}
        entry["identity"] = row["identity"].as_dict()
        entry["parts"] = {part: {"points": got, "max": most} for part, (got, most) in row["parts"].items()}
        entry["feedback"] = f"feedback/{safe_name(row['student'])}.txt"
        entry["seconds"] = round(g.seconds, 2)
        entry["ops"] = _op_counts(g.report)
        entry["diagnosis_summary"] = list(g.report.diagnosis_summary) if g.report else []
        entry["warnings"] = list(g.report.warnings) if g.report else []
        if g.status != "ok":
            entry["reason"] = g.reason
        entries.append(entry)
    write_atomically(out / "gradebook.json", json.dumps(to_json_safe({**meta, "submissions": entries}), indent=2))


def summary_table(rows: list[dict]) -> str:
    width = max([len("student")] + [len(row["student"]) for row in rows])
    width = min(width, 40)
    lines = [f"{'student':<{width}}  {'score':>9}  {'%':>6}  {'status':<12}  diagnosis"]
    for row in rows:
        score = score_text(row["score"], row["max_score"])
        lines.append(f"{row['student'][:width]:<{width}}  {score:>9}  {row['percent']:>6.1f}  {row['status']:<12}  "
                     f"{one_line(row['diagnosis'], 100)}")
    return "\n".join(lines)
