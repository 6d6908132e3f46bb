"""What a student reads: the issues in a report, the headline, the feedback files (text, JSON, Markdown, HTML)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from optconform.harness.checking.results import RunReport
from optconform.harness.checking.selection import required_functions
from optconform.harness.reporting import pages, render
from optconform.harness.reporting.jsonsafe import to_json_safe
from optconform.harness.reporting.story import build_story, story_lines
from optconform.harness.reporting.text import group_said, score_text

from .atomic import write_atomically
from .graded import Graded, one_line
from .submissions import _printable, safe_name

# --------------------------------------------------------------------------- the story, told in text


def _short(part) -> str:
    """A part for the gradebook's one line."""
    if part.verdict == "mistake":
        match = re.match(r"^(.{3,160}?\[[\w.:+-]+\])", part.mistake)
        return f"{part.function}: {match.group(1) if match else one_line(part.mistake, 120)} ({part.count('fail')} checks)"
    if part.verdict == "wrong":
        said = "the same value whatever the inputs" if part.constant else "no known mistake"
        return f"{part.function}: {part.count('fail')} of {part.checks} checks wrong ({said})"
    if part.verdict == "error":
        return f"{part.function}: {part.count('error')} errors ({one_line(part.first_error.message, 80)})"
    return f"{part.function}: not loaded: {part.load_problem}" if part.load_problem else f"{part.function}: not found"


def headline(graded: Graded) -> str:
    """One line for the gradebook: the load error, or the functions that need work, most important first."""
    if graded.status != "ok":
        return graded.reason
    need = build_story(graded.report).first_look()
    parts = [_short(part) for part in need[:2]] + ([f"+{len(need) - 2} more"] if len(need) > 2 else [])
    return one_line("; ".join(parts), 300)


def feedback_header(graded: Graded, row: dict) -> str:
    """A short, friendly note for the student, naming the main mistakes before the full report."""
    sub = graded.submission
    lines = [f"Feedback for {sub.student} ({_printable(sub.path.name)})",
             f"Score: {score_text(row['score'], row['max_score'])} ({row['percent']:.1f}%)"]
    if graded.report is not None:
        lines.append("This assignment checks: " + ", ".join(required_functions(c.op for c in graded.report.results)))
    if sub.note:
        lines.append(sub.note)
    for group in (graded.report.summary().get("points") or []) if graded.report is not None else []:
        if group.get("credit"):  # the rest of this part is right: said, with what it earned
            lines.append(f"Part {group['group']}: {group_said(group)}.")
    lines.append("")
    if graded.status != "ok":
        lines += ["Your submission could not be graded, so nothing was checked and the score is 0:",
                  f"  {graded.reason}"]
        if graded.status == "load_error":
            lines += ["", "Fix this (make sure the file opens and runs without errors) and submit again."]
        else:
            lines += ["", "This is a problem with the grader, not necessarily with your work: "
                          "please tell your instructor."]
        return "\n".join(lines)
    lines += story_lines(build_story(graded.report))
    lines += ["", "The full report follows: each failing check says what was expected and what your code returned."]
    return "\n".join(lines)


def report_document(report: RunReport) -> dict:
    """The report as JSON-safe data, made once per report (the feedback and the kept result both use it)."""
    if "_document" not in report.__dict__:
        report.__dict__["_document"] = to_json_safe(report.to_json())
    return report.__dict__["_document"]


def report_json(report: RunReport) -> str:
    """:func:`report_document` as compact JSON text, written once per report (the feedback's ``.json`` and the
    kept result hold the same text)."""
    if "_json" not in report.__dict__:
        report.__dict__["_json"] = json.dumps(report_document(report), separators=(",", ":"))
    return report.__dict__["_json"]


def write_feedback(graded: Graded, row: dict, feedback_dir: Path) -> None:
    name = safe_name(graded.submission.student)
    header = feedback_header(graded, row)
    if graded.status == "ok":
        body = render(graded.report, "text")
        document = report_json(graded.report)  # for programs
    else:
        body = ""
        document = json.dumps(to_json_safe({
            "target": graded.submission.display, "status": graded.status, "error": graded.reason,
            "conforms": False,
            "summary": {"passed": 0, "failed": 0, "errors": 0, "not_implemented": 0, "score": 0,
                        "max_score": row["max_score"]},
            "cases": []}), indent=2)
    rule = "=" * 72
    write_atomically(feedback_dir / f"{name}.txt", f"{header}\n\n{rule}\n\n{body}" if body else header)
    write_atomically(feedback_dir / f"{name}.json", document)
    blocks = pages.student_blocks(graded, row)
    write_atomically(feedback_dir / f"{name}.md", pages.to_markdown(blocks))
    write_atomically(feedback_dir / f"{name}.html", pages.to_html(f"Feedback for {graded.submission.student}", blocks))
