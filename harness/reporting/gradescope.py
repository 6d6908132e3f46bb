"""Gradescope's ``results.json`` (``check --format gradescope``, and the autograder's ``run_autograder``).

One test per function the student wrote (the story's parts), as Gradescope's autograders
usually have a handful of named tests: its score is its passing checks (a point each), and
under it the student reads the story's sentence for that function, then each failing check
in full (what was checked, what differs, the likely mistake) up to a few, and the rest by
name. With the assignment file's points, the score is in those points: each points group is
a test that carries them, and the functions' tests carry no score. A function's hidden
checks are a test of their own, shown after publication.
"""

from __future__ import annotations

from optconform.harness.checking.results import CaseResult, RunReport
from optconform.harness.checking.selection import course_functions

from .jsonsafe import to_json_safe
from .story import Part, build_story
from .story import with_story as _with_story
from .text import fmt_num, group_said, indent, is_xfailed, is_xpassed, mistake_said, text_summary, why_shown


def _student_output(case: CaseResult, part: Part | None = None, said: str | None = None) -> str:
    """What a student reads under one test: the verdict, then what was checked and what differs."""
    func = " and ".join(course_functions(case.op))
    several = " and " in func
    if case.op.endswith(".trajectory"):
        subject = f"your {func}, called for several steps in a row,"
    else:
        subject = f"your {func}"
    lines = []
    if case.status == "pass":
        lines.append("Passed.")
        if is_xpassed(case):
            lines.append("(This test was on the list of tests expected to fail, but your code gets it right.)")
    elif case.status == "not_implemented" and part is not None and part.load_problem:
        lines.append(f"Not run: the grader could not load {part.function} ({part.load_problem}), so this test "
                     "scores 0. Fix that and submit again.")
    elif case.status == "not_implemented":
        lines.append(
            f"Not run: the grader could not find {func} in your submission"
            f"{' (one or both are missing)' if several else ''}, so this test scores 0. "
            f"Check that {'they are' if several else 'it is'} defined at the top level of your file, "
            "with the name and arguments the assignment asks for."
        )
    elif case.status == "error":
        lines.append(
            f"Failed: {subject} could not be checked: it raised an error, took too long, "
            "or returned something the grader could not read."
        )
    else:
        lines.append(f"Failed: {subject} {'do' if several else 'does'} not give the reference solution's result.")
    if case.description:
        lines.append(f"What was checked: {case.description}")
    if case.status == "pass":
        return "\n".join(lines)
    if case.message:
        label = {"fail": "What differs", "error": "What went wrong"}.get(case.status, "Grader message")
        lines.append(f"{label}: {case.message}")
    if case.diagnosis and mistake_said(case.diagnosis) != mistake_said(said):  # the function's mistake: said above
        lines.append(f"Likely mistake: {mistake_said(case.diagnosis)}")
    if why_shown(case):
        lines.append(f"This test is there to catch: {case.why}")
    if case.status == "fail" and case.max_abs_err is not None:
        size = f"Largest difference from the expected values: {fmt_num(case.max_abs_err)}"
        if case.max_rel_err is not None:
            size += f" (relative: {fmt_num(case.max_rel_err)})"
        lines.append(size)
    if case.details:
        lines.append("Details:")
        lines.extend(indent(detail, "  ") for detail in case.details)
    if is_xfailed(case):
        lines.append("(Your instructor expects this test to fail for now; it still scores 0.)")
    return "\n".join(lines)


#: Failing checks shown in full under a function's test; the rest are listed by name.
SHOWN_IN_FULL = 3


def _function_output(part: Part, cases: list[CaseResult]) -> str:
    """What a student reads under one function's test: the story's sentence, then its failing checks."""
    passed = sum(case.status == "pass" for case in cases)
    lines = [part.sentence(), "", f"{passed} of {len(cases)} checks pass."]
    wrong = [case for case in cases if case.status != "pass"]
    for case in wrong[:SHOWN_IN_FULL]:
        lines += ["", f"Check {case.id}:", indent(_student_output(case, part, said=part.mistake), "  ")]
    if len(wrong) > SHOWN_IN_FULL:
        lines += ["", f"Also not passing: {', '.join(case.id for case in wrong[SHOWN_IN_FULL:])}"]
    return "\n".join(lines)


def _function_tests(story) -> list[dict]:
    tests = []
    for part in story.parts:
        for hidden in (False, True):
            cases = [case for case in part.cases if case.hidden == hidden]
            if not cases:
                continue
            passed = sum(case.status == "pass" for case in cases)
            tests.append({
                "name": part.function + (" (hidden checks)" if hidden else ""),
                "name_format": "text",
                "score": passed,
                "max_score": len(cases),
                "status": "passed" if passed == len(cases) else "failed",
                "output": _function_output(part, cases),
                "output_format": "text",
                "tags": sorted({case.op for case in cases}),
                # a hidden check shows no value anyway; students see its verdict once grades are published
                "visibility": "after_published" if hidden else "visible",
                "extra_data": to_json_safe({"cases": [
                    {"id": case.id, "op": case.op, "status": case.status, "xfail": case.xfail,
                     "max_abs_err": case.max_abs_err, "max_rel_err": case.max_rel_err, "diagnosis": case.diagnosis}
                    for case in cases]}),
            })
    return tests


def gradescope_results(report: RunReport) -> dict:
    """The Gradescope ``results.json`` object: one test per function, a point per check (or the assignment's
    points, one test per points group)."""
    story = build_story(report)
    tests = _function_tests(story)
    summary = report.summary()
    if report.points is not None:  # the assignment's points: one test per group carries them, cases none
        for test in tests:
            del test["score"], test["max_score"]
        tests = [{"name": f"points: {group['kind']} {group['group']}", "score": group["points"],
                  "max_score": group["max"], "status": "passed" if group["passed"] == group["cases"] else "failed",
                  "output": group_said(group), "visibility": "visible"}
                 for group in summary["points"]] + tests
    return {
        "score": summary["score"] if report.points is not None else sum(test["score"] for test in tests),
        "max_score": summary["max_score"] if report.points is not None else sum(test["max_score"] for test in tests),
        "output": _with_story(text_summary(report), story),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "extra_data": to_json_safe(
            {
                "target": report.target,
                "dtype": report.dtype,
                "conventions": report.conventions,
                "summary": summary,
            }
        ),
        "tests": tests,
    }
