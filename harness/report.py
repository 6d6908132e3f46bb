"""Rendering a :class:`~optconform.harness.results.RunReport` for people and machines.

``render(report, fmt)`` turns one run into one of four formats:

- ``text``: for a person at a terminal. A summary that can be taken in at a glance
  comes first (target, dtype, conventions, counts per status, counts per op, the
  diagnosis summary and warnings); then every failing or erroring case with what
  differs, the likely mistake, why the case exists and the details; then the ops
  not implemented (one line each), the expected failures (``--xfail``), and, with
  ``verbose=True``, the passing cases.
- ``json``: ``RunReport.to_json()``, always valid JSON (non-finite floats become
  the strings ``"nan"``, ``"inf"``, ``"-inf"``, as in the vectors).
- ``junit``: JUnit XML (``<testsuites>`` root, one ``<testsuite>`` per op, one
  ``<testcase>`` per case) for CI test reporters (GitHub, GitLab, Jenkins).
- ``gradescope``: the ``results.json`` of Gradescope's autograder specification
  (:mod:`.gradescope`); ``prairielearn``: PrairieLearn's (:mod:`.prairielearn`).

A failing case listed in the ``--xfail`` file counts as an expected failure, not as
a failure, in every format.

This module reads the result model (and the course's function names) and nothing else.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter

from .results import CaseResult, RunReport

__all__ = ["FORMATS", "render", "summary_line", "text_summary", "to_json_safe"]

#: The formats :func:`render` knows.
FORMATS = ("text", "json", "junit", "gradescope", "prairielearn")

#: The order ops are listed in; ops not named here follow in order of first appearance.
_OP_ORDER = (
    "mini_batches",
    "momentum.init",
    "momentum.update",
    "momentum.trajectory",
    "adam.init",
    "adam.update",
    "adam.trajectory",
)



# --------------------------------------------------------------------------- helpers


def _is_xfailed(case: CaseResult) -> bool:
    """A case listed as an expected failure that did fail or err."""
    return case.xfail and case.status in ("fail", "error")


def _is_xpassed(case: CaseResult) -> bool:
    """A case listed as an expected failure that passed anyway."""
    return case.xfail and case.status == "pass"


def _ops_in_order(report: RunReport) -> list[str]:
    seen: list[str] = []
    for case in report.results:
        if case.op not in seen:
            seen.append(case.op)
    rank = {op: i for i, op in enumerate(_OP_ORDER)}
    return sorted(seen, key=lambda op: (rank.get(op, len(rank)), seen.index(op)))


def _counts(cases) -> dict:
    """Counts as a person reads them: xfailed cases apart from failures and errors."""
    counts = Counter()
    for case in cases:
        if _is_xfailed(case):
            counts["xfail"] += 1
        else:
            counts[case.status] += 1
    return counts


def _fmt_num(x) -> str:
    if x is None:
        return "n/a"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}"


def _first_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in str(text).splitlines())


def _conventions_text(conventions) -> str:
    if not conventions:
        return "(defaults)"
    if isinstance(conventions, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(conventions.items(), key=lambda kv: str(kv[0])))
    return str(conventions)


def _errors_text(case: CaseResult) -> str | None:
    if case.max_abs_err is None and case.max_rel_err is None:
        return None
    return f"max abs err {_fmt_num(case.max_abs_err)}, max rel err {_fmt_num(case.max_rel_err)}"


def to_json_safe(value):
    """``value`` with every non-finite float replaced by ``"nan"``, ``"inf"`` or ``"-inf"``.

    NumPy scalars and arrays become plain Python values; tuples become lists;
    dict keys become strings. Anything else JSON cannot hold becomes its ``str``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_safe(v) for v in value]
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays, without importing NumPy
    if callable(tolist):
        try:
            return to_json_safe(tolist())
        except Exception:  # pragma: no cover - an odd object with a tolist attribute
            pass
    return str(value)


def _dumps(obj) -> str:
    return json.dumps(to_json_safe(obj), indent=2, allow_nan=False)


# --------------------------------------------------------------------------- summary line


def summary_line(report: RunReport) -> str:
    """One line: ``optconform: TARGET at DTYPE: N passed, N failed, N errors, N not implemented (score S/M)``.

    Expected failures (``--xfail``) are counted apart (``, N xfail``, shown only when
    there are any) and not as failures.
    """
    counts = _counts(report.results)
    summary = report.summary()
    target = report.target or report.target_name or "(unnamed target)"
    parts = [
        f"{counts['pass']} passed",
        f"{counts['fail']} failed",
        f"{counts['error']} error{'' if counts['error'] == 1 else 's'}",
        f"{counts['not_implemented']} not implemented",
    ]
    if counts["xfail"]:
        parts.append(f"{counts['xfail']} xfail")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    return (
        f"optconform: {target} at {report.dtype}: {', '.join(parts)} "
        f"(score {summary['score']}/{summary['max_score']})"
    )


# --------------------------------------------------------------------------- text


def text_summary(report: RunReport) -> str:
    """The at-a-glance part of the text report: header, counts, per-op table, diagnosis, warnings."""
    counts = _counts(report.results)
    lines = [summary_line(report), ""]
    target = report.target or "(unnamed target)"
    if report.target_name and report.target_name != report.target:
        target += f" ({report.target_name})"
    lines.append(f"  target:      {target}")
    lines.append(f"  dtype:       {report.dtype}")
    lines.append(f"  conventions: {_conventions_text(report.conventions)}")
    lines.append(f"  verdict:     {'CONFORMS' if report.conforms else 'DOES NOT CONFORM'}")
    status_parts = [
        f"{counts['pass']} passed",
        f"{counts['fail']} failed",
        f"{counts['error']} error{'' if counts['error'] == 1 else 's'}",
        f"{counts['not_implemented']} not implemented",
        f"{counts['xfail']} xfail",
    ]
    if report.skipped:
        status_parts.append(f"{len(report.skipped)} skipped")
    lines.append(f"  cases:       {', '.join(status_parts)} (of {len(report.results)})")

    ops = _ops_in_order(report)
    if ops:
        width = max(len("op"), *(len(op) for op in ops))
        header = ("pass", "fail", "error", "not impl", "xfail")
        lines.append("")
        lines.append("  " + "op".ljust(width) + "".join(f"  {h:>8}" for h in header))
        for op in ops:
            c = _counts(case for case in report.results if case.op == op)
            values = (c["pass"], c["fail"], c["error"], c["not_implemented"], c["xfail"])
            lines.append("  " + op.ljust(width) + "".join(f"  {v:>8}" for v in values))

    if report.diagnosis_summary:
        lines.append("")
        lines.append("Diagnosis:")
        lines.extend(_indent(line, "  ") for line in report.diagnosis_summary)
    if report.warnings:
        lines.append("")
        lines.append("Warnings:")
        lines.extend(_indent(line, "  ") for line in report.warnings)
    return "\n".join(lines)


#: Failing cases shown per op in the concise text report (``-v``: all of them).
SHOWN_PER_OP = 3


def _case_block(case: CaseResult, label: str, said: set | None = None) -> list[str]:
    """A failing case; with ``said`` (the concise report), a diagnosis already given is not repeated, and only
    the first case of its diagnosis lists every key that differs."""
    lines = [f"{label} {case.id}"]
    if case.message:
        lines.append(_indent(case.message, "  "))
    repeated = said is not None and case.diagnosis in said
    if case.diagnosis:
        names = " ".join(f"[{name}]" for name in re.findall(r"\[([\w+-]+)\]", case.diagnosis))
        lines.append(f"  likely mistake: {'as above ' + names if repeated and names else case.diagnosis}")
    if case.why and not repeated:
        lines.append(f"  why this case exists: {case.why}")
    errors = _errors_text(case)
    if errors and not repeated:
        lines.append(f"  {errors}")
    if not repeated:
        for detail in case.details:
            lines.append(_indent(detail, "      "))
    if said is not None:
        said.add(case.diagnosis)
    return lines


def _render_text(report: RunReport, verbose: bool = False) -> str:
    lines = [text_summary(report)]

    failing = [case for case in report.results if case.status in ("fail", "error") and not case.xfail]
    if failing and verbose:
        lines += ["", f"Failures and errors ({len(failing)}):"]
        for case in failing:
            lines.append("")
            lines += _case_block(case, "FAIL " if case.status == "fail" else "ERROR")
    elif failing:
        lines += ["", f"Failures and errors ({len(failing)}; at most {SHOWN_PER_OP} per op, -v lists every one):"]
        said: set = set()
        for op in _ops_in_order(report):
            of_op = [case for case in failing if case.op == op]
            for case in of_op[:SHOWN_PER_OP]:
                lines.append("")
                lines += _case_block(case, "FAIL " if case.status == "fail" else "ERROR", said)
            if len(of_op) > SHOWN_PER_OP:
                more = len(of_op) - SHOWN_PER_OP
                lines += ["", f"  ... and {more} more failing {op} case{'' if more == 1 else 's'}"]

    missing = Counter(case.op for case in report.results if case.status == "not_implemented")
    if missing:
        lines += ["", "Not implemented:"]
        for op in _ops_in_order(report):
            if missing[op]:
                n = missing[op]
                lines.append(f"  {op}: not implemented ({n} case{'' if n == 1 else 's'})")

    xfailed = [case for case in report.results if _is_xfailed(case)]
    xpassed = [case for case in report.results if _is_xpassed(case)]
    if xfailed or xpassed:
        lines += ["", f"Expected failures (--xfail; not counted as failures) ({len(xfailed) + len(xpassed)}):"]
        for case in xfailed:
            line = f"  XFAIL {case.id}"
            if case.status == "error":
                line += " (error)"
            if case.message:
                line += f": {_first_line(case.message)}"
            if case.diagnosis:
                line += f" (likely mistake: {case.diagnosis})"
            lines.append(line)
        for case in xpassed:
            lines.append(f"  XPASS {case.id}: passes although listed as an expected failure")

    if report.skipped:
        lines += ["", f"Skipped (--skip): {len(report.skipped)} case{'' if len(report.skipped) == 1 else 's'}"]
        if verbose:
            lines += [f"  {case_id}" for case_id in report.skipped]

    if verbose:
        passed = [case for case in report.results if case.status == "pass"]
        if passed:
            lines += ["", f"Passed ({len(passed)}):"]
            for case in passed:
                errors = _errors_text(case)
                lines.append(f"  PASS  {case.id}" + (f" ({errors})" if errors else ""))

    lines += ["", summary_line(report)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- junit

# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF).
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text) -> str:
    return _XML_INVALID.sub(lambda m: f"\\x{{{ord(m.group()):x}}}", str(text if text is not None else ""))


def _junit_body(case: CaseResult) -> str:
    parts = []
    if case.message and "\n" in case.message.strip():
        parts.append(case.message.strip())
    if case.description:
        parts.append(f"case: {case.description}")
    errors = _errors_text(case)
    if errors:
        parts.append(errors)
    if case.details:
        parts.append("\n".join(case.details))
    if case.why:
        parts.append(f"why this case exists: {case.why}")
    return _xml_text("\n".join(parts))


def _junit_message(case: CaseResult) -> str:
    message = _first_line(case.message) or ("error" if case.status == "error" else "does not match the reference")
    if case.diagnosis:
        message += f" — likely mistake: {case.diagnosis}"
    return _xml_text(message)


def _render_junit(report: RunReport) -> str:
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    target = report.target or report.target_name or "target"
    root = JUnitXml(_xml_text(f"optconform: {target} at {report.dtype}"))
    for op in _ops_in_order(report):
        suite = TestSuite(_xml_text(op))
        suite.add_property("target", _xml_text(target))
        suite.add_property("dtype", _xml_text(report.dtype))
        suite.add_property("conventions", _xml_text(_conventions_text(report.conventions)))
        for case in report.results:
            if case.op != op:
                continue
            testcase = TestCase(_xml_text(case.id), _xml_text(op), round(case.seconds, 6))
            if case.status == "not_implemented":
                testcase.result = [Skipped("not implemented")]
            elif _is_xfailed(case):
                message = "xfail: " + _junit_message(case)
                skipped = Skipped(message)
                skipped.text = _junit_body(case)
                testcase.result = [skipped]
            elif case.status == "fail":
                failure = Failure(_junit_message(case), "mismatch")
                failure.text = _junit_body(case)
                testcase.result = [failure]
            elif case.status == "error":
                error = Error(_junit_message(case), "error")
                error.text = _junit_body(case)
                testcase.result = [error]
            elif _is_xpassed(case):
                testcase.system_out = "listed as an expected failure (--xfail) but passes"
            suite.add_testcase(testcase)
        suite.update_statistics()
        root.add_testsuite(suite)
    root.update_statistics()
    # the common JUnit schema (the one pytest validates against) has no "skipped" on <testsuites>
    if "skipped" in root._elem.attrib:
        del root._elem.attrib["skipped"]
    return root.tostring().decode("utf-8")


# --------------------------------------------------------------------------- entry point


def render(report: RunReport, fmt: str, *, verbose: bool = False) -> str:
    """Render ``report`` as ``fmt`` (one of :data:`FORMATS`) and return the text.

    ``verbose`` (text only) also lists the passing and skipped cases. The text has
    no final newline (add one when writing a file). JUnit XML is returned without
    an XML declaration: write it encoded as UTF-8 (XML's default encoding).
    """
    if fmt == "text":
        return _render_text(report, verbose=verbose)
    if fmt == "json":
        return _dumps(report.to_json())
    if fmt == "junit":
        return _render_junit(report)
    if fmt == "prairielearn":
        from .prairielearn import prairielearn_results

        return _dumps(prairielearn_results(report))
    if fmt == "gradescope":
        from .gradescope import gradescope_results

        return _dumps(gradescope_results(report))
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
