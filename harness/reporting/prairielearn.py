"""The PrairieLearn external grader's ``results.json``: ``check --format prairielearn``.

PrairieLearn reads ``gradable``, ``score`` (a fraction, 0 to 1), ``message``, ``output``
and ``tests``, each test with ``name``, ``description``, ``points``, ``max_points``,
``message`` and ``output``. One test per op, or per points group of the assignment
file; each says how many checks pass and names the mistake of the first that fails.
"""

from __future__ import annotations

from optconform.harness.checking.points import group_members
from optconform.harness.checking.results import RunReport

from .jsonsafe import to_json_safe
from .story import build_story
from .story import with_story as _with_story
from .text import group_said, mistake_said, points_text, text_summary


def _group_output(cases) -> str:
    failing = [c for c in cases if c.status != "pass"]
    if not failing:
        return "every check passes"
    first = failing[0]
    lines = [f"{len(failing)} of {len(cases)} checks fail; the first: {first.id}: {first.message}"]
    if first.diagnosis:
        lines.append(f"likely mistake: {mistake_said(first.diagnosis)}")
    return "\n".join(lines)


def prairielearn_results(report: RunReport) -> dict:
    summary = report.summary()
    tests = []
    if report.points is not None:
        for group in summary["points"]:
            members = group_members(report.results, group["kind"], group["group"])
            tests.append({"name": f"{group['kind']} {group['group']}", "description": f"{group['cases']} checks",
                          "points": group["points"], "max_points": group["max"],
                          "message": group_said(group),
                          "output": _group_output(members)})
    else:
        for op in dict.fromkeys(c.op for c in report.results):
            cases = [c for c in report.results if c.op == op]
            passed = sum(c.status == "pass" for c in cases)
            tests.append({"name": op, "description": f"{len(cases)} checks of {op}", "points": passed,
                          "max_points": len(cases), "message": f"{passed} of {len(cases)} checks pass",
                          "output": _group_output(cases)})
    most = summary["max_score"]
    return to_json_safe({"gradable": True, "score": round(summary["score"] / most, 6) if most else 0.0,
                         "message": f"score {points_text(summary['score'])} of {points_text(most)}",
                         "output": _with_story(text_summary(report), build_story(report)),
                         "tests": tests})
