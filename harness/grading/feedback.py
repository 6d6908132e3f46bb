"""What a student reads: the issues in a report, the headline, the feedback files (text, JSON, Markdown, HTML)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from optconform.harness.checking.results import RunReport, mistake_names
from optconform.harness.checking.selection import course_functions, required_functions
from optconform.harness.reporting import pages, render
from optconform.harness.reporting.jsonsafe import to_json_safe

from .atomic import write_atomically
from .graded import Graded, one_line
from .submissions import _printable, safe_name

# --------------------------------------------------------------------------- diagnoses


def _short_diagnosis(diagnosis: str) -> str:
    """``title [name]: explanation Fix: ...`` -> ``title [name]``; anything else, its first 120 characters."""
    match = re.match(r"^(.{3,160}?\[[\w.:-]+\])", diagnosis)
    return match.group(1) if match else one_line(diagnosis, 120)


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
            parts.append(f"{ops}: {issue.count} errors ({one_line(issue.text, 80)})")
        else:
            parts.append(f"{ops}: not implemented" + _lost_to_syntax(graded.report, issue.ops))
    if len(found) > 2:
        parts.append(f"+{len(found) - 2} more")
    return one_line("; ".join(parts), 300)


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
             f"Score: {row['score']}/{row['max_score']} ({row['percent']:.1f}%)"]
    if graded.report is not None:
        lines.append("This assignment checks: " + ", ".join(required_functions(c.op for c in graded.report.results)))
    if sub.note:
        lines.append(sub.note)
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
                        f"{issue.total} checks. First difference: {one_line(issue.text, 240)}")
            elif issue.kind == "error":
                text = (f"Your {function} raised an error, took too long or returned something the grader "
                        f"could not read in {issue.count} of {issue.total} checks: {one_line(issue.text, 240)}")
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
        lines += [f"  - {one_line(w, 240)}" for w in load_warnings[:5]]
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
