"""JUnit XML: ``<testsuites>`` root, one ``<testsuite>`` per op, one ``<testcase>`` per case, for CI test
reporters (GitHub, GitLab, Jenkins); written with junitparser."""

from __future__ import annotations

import re

from optconform.harness.checking.results import CaseResult, RunReport

from .text import (
    conventions_text,
    errors_text,
    first_line,
    is_xfailed,
    is_xpassed,
    mistake_said,
    ops_in_order,
    why_shown,
)

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
    errors = errors_text(case)
    if errors:
        parts.append(errors)
    if case.details:
        parts.append("\n".join(case.details))
    if why_shown(case):
        parts.append(f"why this case exists: {case.why}")
    return _xml_text("\n".join(parts))


def _junit_message(case: CaseResult) -> str:
    message = first_line(case.message) or ("error" if case.status == "error" else "does not match the reference")
    if case.diagnosis:
        message += f" — likely mistake: {mistake_said(case.diagnosis)}"
    return _xml_text(message)


def render_junit(report: RunReport) -> str:
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    target = report.target or report.target_name or "target"
    root = JUnitXml(_xml_text(f"optconform: {target} at {report.dtype}"))
    for op in ops_in_order(report):
        suite = TestSuite(_xml_text(op))
        suite.add_property("target", _xml_text(target))
        suite.add_property("dtype", _xml_text(report.dtype))
        suite.add_property("conventions", _xml_text(conventions_text(report.conventions)))
        for case in report.results:
            if case.op != op:
                continue
            testcase = TestCase(_xml_text(case.id), _xml_text(op), round(case.seconds, 6))
            if case.status == "not_implemented":
                testcase.result = [Skipped("not implemented")]
            elif is_xfailed(case):
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
            elif is_xpassed(case):
                testcase.system_out = "listed as an expected failure (--xfail) but passes"
            suite.add_testcase(testcase)
        suite.update_statistics()
        root.add_testsuite(suite)
    root.update_statistics()
    # the common JUnit schema (the one pytest validates against) has no "skipped" on <testsuites>
    if "skipped" in root._elem.attrib:
        del root._elem.attrib["skipped"]
    return root.tostring().decode("utf-8")
