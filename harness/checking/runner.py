"""Running a selection of cases against a session into a RunReport.

A failing case is explained by a :class:`Diagnoser`, which the caller hands in (the
diagnosis is a layer above this one, :class:`optconform.harness.diagnosis.Diagnoser`);
without one, results carry no likely mistake.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Protocol

from optconform.reference.conventions import for_call

from .checks import check_case
from .inputs import case_inputs
from .mini_batches import CALLS_AHEAD, mini_batch_calls
from .results import CaseResult, RunReport, mistake_names
from .series import series


class Diagnoser(Protocol):
    """What the runner asks of the diagnosis: a failing case's likely mistake, an erring case's, a run's."""

    def case(self, case, got, dtype: str, pairs_seen: list[str]) -> str | None: ...

    def error(self, case, message: str) -> str | None: ...

    def summary(self, results) -> list[str]: ...

    def settle(self, results, cases=None, dtype: str = "float64") -> None: ...

    def plan(self, cases) -> None: ...


def run_case(case, session, dtype: str, conventions: dict, xfail: bool = False, pairs_seen=None,
             diagnoser: Diagnoser | None = None) -> CaseResult:
    """Check one case and, when it fails on its values, name the likely mistake.

    ``pairs_seen`` (a set, kept across one target's cases) collects the pairs of mistakes named so far,
    which the diagnosis of later cases tries first.
    """
    started = time.perf_counter()
    outcome = check_case(case, session, dtype, conventions)
    comparison = outcome.comparison
    diagnosis = None
    pairs_seen = set() if pairs_seen is None else pairs_seen
    try:
        if diagnoser is not None and outcome.status == "fail" and outcome.got is not None:
            diagnosis = diagnoser.case(case, outcome.got, dtype, sorted(pairs_seen))
            pairs_seen.update(name for name in mistake_names(diagnosis) if "+" in name)
        elif diagnoser is not None and outcome.status == "error":
            diagnosis = diagnoser.error(case, outcome.message)
    except Exception as error:  # noqa: BLE001 - a diagnosis must never cost the result
        diagnosis = None
        outcome.details.append(f"(diagnosis unavailable: {type(error).__name__}: {error})")
    result = CaseResult(
        id=case.id, op=case.op, status=outcome.status, message=outcome.message,
        max_abs_err=comparison.max_abs_err if comparison else None,
        max_rel_err=comparison.max_rel_err if comparison else None,
        diagnosis=diagnosis, description=case.description, why=case.why,
        details=outcome.details, xfail=xfail, seconds=time.perf_counter() - started, tags=tuple(case.tags),
        series=series(case, outcome, dtype))
    return withheld(result, outcome) if getattr(case, "hidden", False) else result


def withheld(result: CaseResult, outcome) -> CaseResult:
    """A hidden case's result as a student may see it: the op, pass or fail, the named mistake; no value.

    A failure names only a key of the expected output that differs (never a key the
    submission made up); an error keeps only the grader's own words
    (:attr:`~optconform.harness.target.contract.CallFailed.withheld`), never the text the
    submission wrote, its exit code or its signal.
    """
    result.hidden = True
    result.max_abs_err = result.max_rel_err = None
    result.details = []
    result.series = None
    if result.status == "fail":
        result.message = f"the result differs from the reference{_expected_key(outcome.comparison)} (hidden case: " \
                         "values withheld)"
    elif result.status == "error":
        result.message = outcome.withheld or "the call failed (hidden case: its message is withheld)"
    return result  # a diagnosis is the catalogue's words and key names, never a value: it stays


def _expected_key(comparison) -> str:
    """Where a hidden case's result differs, said with the reference's own keys only."""
    ours = [m for m in comparison.mismatches if m.problem != "unexpected key"] if comparison else []
    if ours:
        return f" in {max(ours, key=lambda m: m.excess).where or 'the result'}"
    if comparison and comparison.mismatches:
        return " (the result holds a key the reference does not)"
    return ""


def run_cases(session, selection, dtype: str, conventions: dict, target: str,
              max_failures: int | None = None, on_case=None, diagnoser: Diagnoser | None = None) -> RunReport:
    """Every selected case, in order; one case's trouble never costs another's result.

    With ``max_failures``, the run stops once that many cases have failed; the
    rest are listed as skipped, saying why. ``on_case(result)`` is called after
    each case (a progress display).
    """
    report = RunReport(target=target, dtype=dtype, conventions=conventions, target_name=session.info.name,
                       skipped=list(selection.skipped), warnings=list(selection.warnings))
    pairs_seen: set[str] = set()
    failures = 0
    if diagnoser is not None:
        diagnoser.plan(selection.run)
    prefetched = _Prefetcher(session, selection.run, dtype, conventions)
    for index, case in enumerate(selection.run):
        if max_failures is not None and failures >= max_failures:
            report.skipped += [f"{rest.id}: not run: --max-failures {max_failures} reached"
                               for rest in selection.run[index:]]
            break
        result = run_case(case, prefetched.session_for(index), dtype, conventions, case.id in selection.xfail,
                          pairs_seen, diagnoser)
        failures += result.counts_as_failure
        report.results.append(result)
        if on_case is not None:
            on_case(result)
    prefetched.session_for_end()
    report.warnings += warnings_that_matter(session.info.warnings, report.results)
    xpassed = [r.id for r in report.results if r.xfail and r.status == "pass"]
    report.warnings += [f"{case_id}: listed as xfail but passes (remove it from the xfail file)" for case_id in xpassed]
    try:
        failed = diagnoser is not None and any(result.status == "fail" for result in report.results)
        if failed:  # a mistake is named for a function only where every failing check of it fits
            diagnoser.settle(report.results, selection.run[:len(report.results)], dtype)
        report.diagnosis_summary = (list(diagnoser.summary(report.results)) if failed else []) \
            + summarize_errors(report.results)
    except Exception as error:  # noqa: BLE001 - a summary must never cost the results
        report.warnings.append(f"diagnosis summary unavailable: {type(error).__name__}: {error}")
    return report


#: Ops whose case starts with one call whose arguments are the case's inputs: sent ahead, many in one request.
PREFETCHED_OPS = frozenset({"mini_batches", "momentum.init", "adam.init", "momentum.update", "adam.update",
                            "gd.update", "rmsprop.init", "rmsprop.update", "lr_decay.inverse_time",
                            "lr_decay.scheduled"})
#: Cases whose first calls go in one request.
PREFETCH_CHUNK = 32


class _Prefetcher:
    """Sends the first calls of the coming cases ahead, many in one request, to a session that can take them
    (``call_stream``; in-process sessions are called as before). Each case then takes its answers as if it had
    called, while the program computes the next case's: checking and computing overlap."""

    def __init__(self, session, cases, dtype: str, conventions: dict):
        self.session, self.cases, self.dtype, self.conventions = session, cases, dtype, conventions
        self.streamed = hasattr(session, "call_stream")
        self.pending: _Pending | None = None

    def session_for(self, index: int):
        if not self.streamed or self.cases[index].op not in PREFETCHED_OPS:
            self._drain()
            return self.session
        if self.pending is None or index not in self.pending.owners:
            self._drain()
            self._fetch(index)
        if self.pending is None:  # an op the target lacks: its call raises NotImplementedOp as usual
            return self.session
        return _Answered(self.session, self.cases[index].op, self.pending, index)

    def session_for_end(self) -> None:
        """The run is over (or stopped early): read what was sent ahead, leaving the session free."""
        self._drain()

    def _drain(self) -> None:
        if self.pending is not None:
            self.pending.drain()
            self.pending = None

    def _fetch(self, start: int) -> None:
        """A stream of the first calls of the cases from ``start`` on: a run of prefetched ops, up to a chunk."""
        chosen = []
        for i in range(start, min(start + PREFETCH_CHUNK, len(self.cases))):
            if self.cases[i].op not in PREFETCHED_OPS or self.cases[i].op not in self.session.info.ops:
                break
            chosen.append(i)
        if not chosen:
            return
        calls, owners = [], []
        for i in chosen:
            for args in self._first_calls(self.cases[i]):
                calls.append((self.cases[i].op, args))
                owners.append(i)
        sent = {name: value for op, _ in calls for name, value in for_call(op, self.conventions).items()}
        self.pending = _Pending(self.session.call_stream(calls, sent), owners)

    def _first_calls(self, case) -> list[dict]:
        """The calls a case starts with: one, or for a structural mini-batch case the first it makes when the
        batches are well formed (the same seed twice, then the next seeds; see ``mini_batches.check_mini_batches``)."""
        if case.op != "mini_batches" or "batches" in case.expected:
            return [case_inputs(case, self.dtype)]
        return mini_batch_calls(case, self.dtype)[:CALLS_AHEAD]


class _Pending:
    """The answers of one stream of calls, read as the cases that own them ask for them."""

    def __init__(self, stream, owners: list[int]):
        self.stream, self.owners, self.answers = stream, owners, []

    def take(self, owner: int) -> list:
        """The answers of case ``owner`` (reading the stream up to the last of them)."""
        last = max(k for k, who in enumerate(self.owners) if who == owner)
        while len(self.answers) <= last:
            self.answers.append(next(self.stream))
        return [answer for k, answer in enumerate(self.answers) if self.owners[k] == owner]

    def drain(self) -> None:
        """Read what is left, so that the session is free for other calls."""
        self.answers.extend(self.stream)


class _Answered:
    """A session whose first calls of ``op`` return (or raise) the answers sent ahead; the rest go through."""

    def __init__(self, session, op: str, pending: _Pending, owner: int):
        self.session, self.info, self.op, self.pending = session, session.info, op, pending
        self.answers = None
        self.owner = owner

    def call(self, op: str, args: dict, conventions: dict | None = None):
        if self.answers is None:
            self.answers = self.pending.take(self.owner) if op == self.op else []
        if op == self.op and self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        self.pending.drain()  # a call not sent ahead: the stream must be read to its end first
        return self.session.call(op, args, conventions)


_BINDS = re.compile(r" \[binds ([\w, *]+)\]$")
_UNDEFINED = re.compile(r"name '(\w+)' is not defined")


def warnings_that_matter(load_warnings, results) -> list[str]:
    """The load warnings worth a reader's time, each said once.

    A statement that failed at load time (``import matplotlib``, the course's
    helper modules) matters only where a checked function needed a name it would
    have bound: the warning is then added to the first of those errors (``NameError:
    name 'plt' is not defined``), which the error summary quotes, and kept. A failed star import (``from testCases
    import *``) is named only for an undefined name no other failed statement
    explains. Other warnings (syntax errors, names provided without an import)
    always matter.
    """
    kept, failed = [], []
    for warning in load_warnings:
        binds = _BINDS.search(warning)
        if binds:
            failed.append((warning[:binds.start()], {name.strip() for name in binds.group(1).split(",")}))
        else:
            kept.append(warning)
    used = set()
    for result in results:
        if result.status != "error":
            continue
        for name in _UNDEFINED.findall(result.message):
            culprits = [text for text, names in failed if name in names] or [
                text for text, names in failed if "*" in names]
            for text in culprits:  # said on the first case it explains (and so in the summary), not on every one
                if text not in used:
                    result.message += f" (at load time, {text})"
            used.update(culprits)
    return kept + [text for text, _ in failed if text in used]


_LOAD_NOTE = re.compile(r" \(at load time, .*\)$")


def summarize_errors(results) -> list[str]:
    """One line per kind of error an op raised: "mini_batches: 22 cases error: ValueError: ...".

    Messages that differ only in their numbers (sizes, shapes, ids) are one kind.
    """
    def kind(message: str) -> str:  # the load note said on the first of them only does not make another kind
        return re.sub(r"\d+", "#", _LOAD_NOTE.sub("", message))

    kinds = Counter((r.op, kind(r.message)) for r in results if r.status == "error" and not r.xfail)
    example = {}
    for r in results:
        example.setdefault((r.op, kind(r.message)), r.message)
    return [f"{op}: {count} case{'s' if count != 1 else ''} error: {example[(op, kind)]}"
            for (op, kind), count in kinds.most_common()]
