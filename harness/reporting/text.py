"""The text report: for a person at a terminal.

A summary that can be taken in at a glance comes first (target, dtype, conventions,
counts per status, counts per op, the diagnosis summary and warnings); then every
failing or erroring case with what differs, the likely mistake, why the case exists
and the details; then the ops not implemented (one line each), the expected failures
(``--xfail``), and, with ``verbose=True``, the passing cases. The helpers that say a
number or count the cases as a person reads them serve the other formats too.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from optconform.harness.checking.results import CaseResult, RunReport

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


def is_xfailed(case: CaseResult) -> bool:
    """A case listed as an expected failure that did fail or err."""
    return case.xfail and case.status in ("fail", "error")


def is_xpassed(case: CaseResult) -> bool:
    """A case listed as an expected failure that passed anyway."""
    return case.xfail and case.status == "pass"


def ops_in_order(report: RunReport) -> list[str]:
    seen: list[str] = []
    for case in report.results:
        if case.op not in seen:
            seen.append(case.op)
    rank = {op: i for i, op in enumerate(_OP_ORDER)}
    return sorted(seen, key=lambda op: (rank.get(op, len(rank)), seen.index(op)))


def status_counts(cases) -> dict:
    """Counts as a person reads them: xfailed cases apart from failures and errors."""
    counts = Counter()
    for case in cases:
        if is_xfailed(case):
            counts["xfail"] += 1
        else:
            counts[case.status] += 1
    return counts


def fmt_num(x) -> str:
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


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters (a reason, a headline, a gradebook cell)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


def indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in str(text).splitlines())


def conventions_text(conventions) -> str:
    if not conventions:
        return "(defaults)"
    if isinstance(conventions, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(conventions.items(), key=lambda kv: str(kv[0])))
    return str(conventions)


def errors_text(case: CaseResult) -> str | None:
    if case.max_abs_err is None and case.max_rel_err is None:
        return None
    return f"max abs err {fmt_num(case.max_abs_err)}, max rel err {fmt_num(case.max_rel_err)}"


# --------------------------------------------------------------------------- summary line


def summary_line(report: RunReport) -> str:
    """One line: ``optconform: TARGET at DTYPE: N passed, N failed, N errors, N not implemented (score S/M)``.

    Expected failures (``--xfail``) are counted apart (``, N xfail``, shown only when
    there are any) and not as failures.
    """
    counts = status_counts(report.results)
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
        f"(score {score_text(summary['score'], summary['max_score'])})"
    )


# --------------------------------------------------------------------------- text


def points_text(value) -> str:
    """Points as a person reads them: whole numbers whole, else one decimal (``30``, ``30.5``; never ``30.01`` beside
    ``0.0``); the gradebook's files keep the exact number."""
    value = round(float(value), 1)
    return str(int(value)) if value.is_integer() else f"{value:.1f}"


def group_said(group: dict) -> str:
    """A points group's line: its checks, and the credit its one mistake earned where the assignment gives some."""
    said = f"{group['passed']} of {group['cases']} checks pass"
    if group.get("credit"):
        said += f"; credit for a known mistake, {group['credit']}: {points_text(group['points'])} of " \
                f"{points_text(group['max'])} points"
    return said


def score_text(score, max_score) -> str:
    return f"{points_text(score)}/{points_text(max_score)}"


def why_shown(case) -> bool:
    """Whether a failing case's ``why`` (the bug class it exists to catch) is worth saying: only where no mistake is
    named (a named one would be contradicted by another case's purpose) and the case failed on its values (an
    error's cause is the error, not the case's purpose)."""
    return bool(case.why) and case.status == "fail" and not case.diagnosis


def mistake_said(diagnosis: str | None) -> str:
    """A named mistake as a report says it: its title first (``no bias correction [no-bias-correction]: ...``),
    not "matches no bias correction", which reads as matching nothing."""
    return re.sub(r"^(matches|consistent with)\s+", "", (diagnosis or "").strip())


#: Why cases were not run, as the text report heads each group.
SKIPPED_BY_USER = "Skipped (--skip)"
SKIPPED_AT_FLOAT32 = "Not run at float32 (float64 only: values float32 cannot hold)"
SKIPPED_BY_MAX_FAILURES = "Not run (--max-failures reached)"
SKIPPED_BY_PLATFORM = "Not run (platform.subnormals=flushed: the platform flushes subnormal numbers to zero)"


def skipped_groups(skipped: list[str]) -> dict[str, list[str]]:
    """The entries of ``report.skipped`` by why they were not run: the user's --skip file, a float64-only case in
    a float32 run, or --max-failures (each entry is ``case id: reason``, as the selection and runner write it)."""
    groups: dict[str, list[str]] = {SKIPPED_BY_USER: [], SKIPPED_AT_FLOAT32: [], SKIPPED_BY_MAX_FAILURES: [],
                                    SKIPPED_BY_PLATFORM: []}
    for entry in skipped:
        reason = entry.split(": ", 1)[1] if ": " in entry else ""
        if reason.startswith("run at float64 only"):
            groups[SKIPPED_AT_FLOAT32].append(entry)
        elif reason.startswith("not run: --max-failures"):
            groups[SKIPPED_BY_MAX_FAILURES].append(entry)
        elif reason.startswith("not run: the target declares platform.subnormals"):
            groups[SKIPPED_BY_PLATFORM].append(entry)
        else:
            groups[SKIPPED_BY_USER].append(entry)
    return groups


def text_summary(report: RunReport) -> str:
    """The at-a-glance part of the text report: header, counts, per-op table, diagnosis, warnings."""
    counts = status_counts(report.results)
    lines = [summary_line(report), ""]
    target = report.target or "(unnamed target)"
    if report.target_name and report.target_name != report.target:
        target += f" ({report.target_name})"
    lines.append(f"  target:      {target}")
    lines.append(f"  dtype:       {report.dtype}")
    lines.append(f"  conventions: {conventions_text(report.conventions)}")
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

    ops = ops_in_order(report)
    if ops:
        width = max(len("op"), *(len(op) for op in ops))
        header = ("pass", "fail", "error", "not impl", "xfail")
        lines.append("")
        lines.append("  " + "op".ljust(width) + "".join(f"  {h:>8}" for h in header))
        for op in ops:
            c = status_counts(case for case in report.results if case.op == op)
            values = (c["pass"], c["fail"], c["error"], c["not_implemented"], c["xfail"])
            lines.append("  " + op.ljust(width) + "".join(f"  {v:>8}" for v in values))

    if report.diagnosis_summary:
        lines.append("")
        lines.append("Diagnosis:")
        lines.extend(indent(line, "  ") for line in report.diagnosis_summary)
    if report.warnings:
        lines.append("")
        lines.append("Warnings:")
        lines.extend(indent(line, "  ") for line in report.warnings)
    return "\n".join(lines)


#: Failing cases shown per op in the concise text report (``-v``: all of them).
SHOWN_PER_OP = 3


def _case_block(case: CaseResult, label: str, said: set | None = None) -> list[str]:
    """A failing case; with ``said`` (the concise report), a diagnosis already given is not repeated, and only
    the first case of its diagnosis lists every key that differs."""
    lines = [f"{label} {case.id}"]
    if case.message:
        lines.append(indent(case.message, "  "))
    repeated = said is not None and case.diagnosis in said
    if case.diagnosis:
        names = " ".join(f"[{name}]" for name in re.findall(r"\[([\w+-]+)\]", case.diagnosis))
        lines.append(f"  likely mistake: {'as above ' + names if repeated and names else mistake_said(case.diagnosis)}")
    if why_shown(case) and not repeated:
        lines.append(f"  why this case exists: {case.why}")
    errors = errors_text(case)
    if errors and not repeated:
        lines.append(f"  {errors}")
    if not repeated:
        for detail in case.details:
            lines.append(indent(detail, "      "))
    if said is not None:
        said.add(case.diagnosis)
    return lines


def render_text(report: RunReport, verbose: bool = False) -> str:
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
        for op in ops_in_order(report):
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
        for op in ops_in_order(report):
            if missing[op]:
                n = missing[op]
                lines.append(f"  {op}: not implemented ({n} case{'' if n == 1 else 's'})")

    xfailed = [case for case in report.results if is_xfailed(case)]
    xpassed = [case for case in report.results if is_xpassed(case)]
    if xfailed or xpassed:
        lines += ["", f"Expected failures (--xfail; not counted as failures) ({len(xfailed) + len(xpassed)}):"]
        for case in xfailed:
            line = f"  XFAIL {case.id}"
            if case.status == "error":
                line += " (error)"
            if case.message:
                line += f": {first_line(case.message)}"
            if case.diagnosis:
                line += f" (likely mistake: {mistake_said(case.diagnosis)})"
            lines.append(line)
        for case in xpassed:
            lines.append(f"  XPASS {case.id}: passes although listed as an expected failure")

    for heading, entries in skipped_groups(report.skipped).items():
        if entries:
            lines += ["", f"{heading}: {len(entries)} case{'' if len(entries) == 1 else 's'}"]
            if verbose:
                lines += [f"  {entry}" for entry in entries]

    if verbose:
        passed = [case for case in report.results if case.status == "pass"]
        if passed:
            lines += ["", f"Passed ({len(passed)}):"]
            for case in passed:
                errors = errors_text(case)
                lines.append(f"  PASS  {case.id}" + (f" ({errors})" if errors else ""))

    lines += ["", summary_line(report)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- junit
