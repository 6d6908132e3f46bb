"""Running a selection of cases against a session into a RunReport."""

from __future__ import annotations

from typing import Callable, Iterable

from .checks import check_case
from .results import CaseResult, RunReport


def _diagnoser():
    """The diagnosis layer, if present: ``diagnose(case, got, dtype)`` and ``summarize(results)``."""
    try:
        from . import diagnose
    except ImportError:
        return None
    return diagnose


def run_case(case, session, dtype: str, conventions: dict, xfail: bool = False, diagnoser=None) -> CaseResult:
    outcome = check_case(case, session, dtype, conventions)
    comparison = outcome.comparison
    diagnosis = None
    if outcome.status == "fail" and outcome.got is not None and diagnoser is not None:
        try:
            diagnosis = diagnoser.diagnose(case, outcome.got, dtype)
        except Exception as error:  # noqa: BLE001 - a diagnosis must never cost the result
            diagnosis = None
            outcome.details.append(f"(diagnosis unavailable: {type(error).__name__}: {error})")
    return CaseResult(
        id=case.id, op=case.op, status=outcome.status, message=outcome.message,
        max_abs_err=comparison.max_abs_err if comparison else None,
        max_rel_err=comparison.max_rel_err if comparison else None,
        diagnosis=diagnosis, description=case.description, why=case.why,
        details=outcome.details, xfail=xfail)


def run_cases(session, selection, dtype: str, conventions: dict, target: str,
              on_result: Callable[[CaseResult], None] | None = None) -> RunReport:
    """Every selected case, in order; one case's trouble never costs another's result."""
    report = RunReport(target=target, dtype=dtype, conventions=conventions, target_name=session.info.name,
                       skipped=list(selection.skipped), warnings=list(selection.warnings) + list(session.info.warnings))
    diagnoser = _diagnoser()
    for case in selection.run:
        result = run_case(case, session, dtype, conventions, case.id in selection.xfail, diagnoser)
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    xpassed = [r.id for r in report.results if r.xfail and r.status == "pass"]
    report.warnings += [f"{case_id}: listed as xfail but passes (remove it from the xfail file)" for case_id in xpassed]
    if diagnoser is not None and hasattr(diagnoser, "summarize"):
        try:
            report.diagnosis_summary = list(diagnoser.summarize(report.results))
        except Exception as error:  # noqa: BLE001
            report.warnings.append(f"diagnosis summary unavailable: {type(error).__name__}: {error}")
    return report
