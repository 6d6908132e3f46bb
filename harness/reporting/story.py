"""A student's story, built once from a report and rendered by every format, so that no two disagree.

A :class:`Story` holds a :class:`Part` per function the student wrote (as the course
names it): how many of its checks pass, the mistake it makes where one is named, an
example of what differs, its errors, and why it was not found (a syntax error in its
block, an import that failed) where it was not. The feedback text, the Markdown and HTML
pages, Gradescope's and PrairieLearn's results all read these parts.

**Never confidently wrong.** A mistake is named for a function only when every one of its
failing checks is explained by that mistake (:mod:`optconform.harness.diagnosis.settle`,
which a run applies to its results too): a name that fits some checks and not others is
a coincidence the student would chase, so the part says instead that no known mistake
explains all its failing checks, and shows the first. A function that gives one value
whatever its inputs is said to, whatever a check's diagnosis matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from optconform.harness.checking.results import CaseResult, RunReport, mistake_names
from optconform.harness.diagnosis.settle import common_mistake, constant_value, failing, function_of
from optconform.harness.reporting.text import mistake_said, one_line

_DEFINES = re.compile(r" \[defines ([\w, ]+)\]$")


@dataclass
class Part:
    """One of the student's functions, and what its checks found."""

    function: str
    ops: list[str] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)
    mistake: str | None = None        # the named mistake, in the catalogue's words (title [name]: why Fix: how)
    unexplained: str | None = None    # no known mistake explains all failing checks: said so
    constant: str | None = None       # returns one value whatever the inputs
    load_problem: str | None = None   # why the function was not found: its block's syntax error, a failed import

    def count(self, status: str) -> int:
        return sum(case.status == status and not (case.xfail and status in ("fail", "error"))
                   for case in self.cases)

    @property
    def checks(self) -> int:
        return len(self.cases)

    @property
    def verdict(self) -> str:
        """``right``, ``mistake``, ``wrong``, ``error`` or ``missing``: the worst thing its checks found."""
        if self.count("not_implemented"):
            return "missing"
        if self.count("fail"):
            return "mistake" if self.mistake else "wrong"
        if self.count("error"):
            return "error"
        return "right"

    @property
    def example(self) -> CaseResult | None:
        """The first failing check (the first erring one where none fails)."""
        return next((c for c in self.cases if c.status == "fail" and not c.xfail), None) or \
            next((c for c in self.cases if c.status == "error" and not c.xfail), None)

    @property
    def first_error(self) -> CaseResult | None:
        return next((c for c in self.cases if c.status == "error" and not c.xfail), None)

    def sentence(self) -> str:
        """What to tell the student about this function, in one or two sentences."""
        fails, errors, total = self.count("fail"), self.count("error"), self.checks
        if self.verdict == "missing":
            if self.load_problem:
                return (f"The grader could not load {self.function} ({self.count('not_implemented')} checks scored "
                        f"0): {self.load_problem}. Fix that and submit again.")
            return (f"The grader could not find {self.function} in your submission ({self.count('not_implemented')} "
                    "checks scored 0). Check that it is defined at the top level, with the name and arguments the "
                    "assignment asks for.")
        said = []
        if fails:
            head = f"Your {self.function} gives wrong results in {fails} of {total} checks"
            if self.constant:
                said.append(f"{head}: it {self.constant}.")
            elif self.mistake and self.unexplained:
                said.append(f"{head}; most of them match a known mistake: {self.mistake} {self.unexplained}")
            elif self.mistake:
                said.append(f"{head}, and they all match a known mistake: {self.mistake}")
            else:
                said.append(f"{head}. {self.unexplained}")
        if errors:
            said.append(f"Your {self.function} raised an error, took too long or returned something the grader could "
                        f"not read in {errors} of {total} checks: {one_line(self.first_error.message, 240)}")
        return " ".join(said) or f"Your {self.function} passes every check."


@dataclass
class Story:
    parts: list[Part]
    load_notes: list[str]

    @property
    def required(self) -> list[str]:
        return [part.function for part in self.parts]

    def first_look(self) -> list[Part]:
        """The parts that need work, most important first: named mistakes, wrong results, errors, missing."""
        rank = {"mistake": 0, "wrong": 1, "error": 2, "missing": 3}
        return sorted((p for p in self.parts if p.verdict != "right"), key=lambda p: (rank[p.verdict], -p.checks))


def _unexplained(rest: list[CaseResult], failing: int, named: bool) -> str:
    """The failing checks no mistake explains: how many, and the first."""
    first = rest[0]
    where = "" if first.hidden else f" The first: {one_line(first.message, 240)}"
    if named:
        return f"{len(rest)} of the {failing} differ in another way too.{where}"
    return f"No known mistake explains all {failing} of them: compare your code with the formula step by step.{where}"


def _load_problem(function: str, warnings: list[str]) -> str | None:
    for warning in warnings:
        defines = _DEFINES.search(warning)
        if defines and function in {name.strip() for name in defines.group(1).split(",")}:
            return warning[:defines.start()]
    return None


def build_story(report: RunReport) -> Story:
    """The story of ``report`` (see the module's docstring), made once per report: the gradebook row, its
    headline, the feedback text and the pages of one student all read the same one."""
    if "_story" not in report.__dict__:
        report.__dict__["_story"] = _told(report)
    return report.__dict__["_story"]


def _told(report: RunReport) -> Story:
    parts: dict[str, Part] = {}
    for case in report.results:
        part = parts.setdefault(function_of(case.op), Part(function_of(case.op)))
        part.cases.append(case)
        if case.op not in part.ops:
            part.ops.append(case.op)
    for part in parts.values():
        wrong = failing(part.cases)
        if wrong:
            value = constant_value(wrong)
            if value is not None:
                part.constant = (f"returns the same value{' ' + value if value else ''} whatever the inputs (it does "
                                 "not compute the schedule from them)")
            else:
                common = common_mistake(wrong)
                part.mistake = mistake_said(common) if common else None
                rest = [c for c in wrong if not (common and mistake_names(c.diagnosis))]
                part.unexplained = _unexplained(rest, len(wrong), bool(common)) if rest else None
        if part.count("not_implemented"):
            part.load_problem = _load_problem(part.function, report.warnings)
    notes = [_DEFINES.sub("", w) for w in report.warnings if "skipped" in w or "syntax error" in w]
    return Story(list(parts.values()), list(dict.fromkeys(notes)))


def story_lines(story: Story, limit: int = 4) -> list[str]:
    """The story as a reader takes it in first: what to look at, most important first, and what of the file
    could not be loaded; the same sentences in every format."""
    need = story.first_look()
    if not need:
        lines = ["Everything that was checked matches the reference. Well done!"]
    else:
        lines = ["What to look at first:"] + [f"  - {part.sentence()}" for part in need[:limit]]
        if len(need) > limit:
            lines.append(f"  - ... and {len(need) - limit} more: see the full report below.")
    if story.load_notes:
        lines += ["", "Parts of your file could not be loaded (and were left out):"]
        lines += [f"  - {one_line(w, 240)}" for w in story.load_notes[:5]]
    return lines


def with_story(summary: str, story: Story) -> str:
    """A text summary with the story after its first line (the verdict): how Gradescope and PrairieLearn say it."""
    verdict, _, rest = summary.partition("\n")
    return "\n".join([verdict, "", *story_lines(story), "", rest.lstrip("\n")])
