"""What a run found: one :class:`CaseResult` per case, gathered in a :class:`RunReport`.

This is the narrow interface between checking and reporting: the report formats
read these and nothing else.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, fields

_NAME = re.compile(r"\[([a-z0-9][a-z0-9.+\-]*)\]")


def mistake_names(diagnosis: str | None) -> list[str]:
    """The mistake names a diagnosis line marks as matched (``[name]``), in order."""
    return _NAME.findall(diagnosis or "")

STATUSES = ("pass", "fail", "error", "not_implemented")


@dataclass
class CaseResult:
    """The outcome of one case.

    ``status`` is one of :data:`STATUSES`. ``message`` says what differs (key,
    index, expected vs got) or what went wrong; ``diagnosis`` names the likely
    mistake when the output matches a known one. ``xfail`` marks a case listed in
    the ``--xfail`` file: its failure does not fail the run.
    """

    id: str
    op: str
    status: str
    message: str = ""
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    diagnosis: str | None = None
    description: str = ""
    why: str = ""
    details: list[str] = field(default_factory=list)
    xfail: bool = False
    #: A hidden case: its message names what kind of thing went wrong, never a value.
    hidden: bool = False
    #: Wall-clock seconds the case took (its calls, comparison and diagnosis).
    seconds: float = 0.0
    #: The case's tags (what the assignment file's [points.tags] give points to).
    tags: tuple = ()
    #: A failing trajectory: one element over the steps, ``{"where", "expected", "got", "first_wrong"}``
    #: (the student's free run against the reference), for a plot; None elsewhere and for hidden cases.
    series: dict | None = None

    @property
    def counts_as_failure(self) -> bool:
        """A failure, an error, or a missing op (a port that drops an op must fail CI; use --ops to narrow)."""
        return self.status in ("fail", "error", "not_implemented") and not self.xfail

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "op": self.op,
            "status": self.status,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "message": self.message,
            "diagnosis": self.diagnosis,
            "xfail": self.xfail,
            "hidden": self.hidden,
            "seconds": round(self.seconds, 6),
            "description": self.description,
            "why": self.why,
            "details": self.details,
            "tags": list(self.tags),
            "series": self.series,
        }


@dataclass
class RunReport:
    """All results of one run against one target."""

    target: str
    dtype: str
    conventions: dict
    results: list[CaseResult] = field(default_factory=list)
    target_name: str = ""
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Summary lines such as "adam.update: 14 cases fail, all consistent with: no bias correction".
    diagnosis_summary: list[str] = field(default_factory=list)
    #: Which vector set was checked: its directory, seed, visibility and manifest's sha256.
    vectors: dict = field(default_factory=dict)
    #: What the parts are worth (``assignment.Points``); None: one point a case.
    points: object = None

    def counts(self) -> Counter:
        return Counter(result.status for result in self.results)

    @property
    def conforms(self) -> bool:
        """True when every case passes (xfail cases aside); select ops with --ops to check a partial port."""
        return not any(result.counts_as_failure for result in self.results)

    def summary(self) -> dict:
        counts = self.counts()
        return {
            "passed": counts["pass"],
            "failed": sum(1 for r in self.results if r.status == "fail" and not r.xfail),
            "errors": sum(1 for r in self.results if r.status == "error" and not r.xfail),
            "not_implemented": counts["not_implemented"],
            "skipped": len(self.skipped),
            "xfailed": sum(1 for r in self.results if r.xfail and r.status != "pass"),
            **self._score(counts),
        }

    def _score(self, counts) -> dict:
        if self.points is None:
            return {"score": counts["pass"], "max_score": len(self.results)}
        score, max_score = self.points.score(self.results)
        return {"score": score, "max_score": max_score, "points": self.points.groups(self.results)}

    def to_json(self) -> dict:
        from optconform import __version__

        return {
            "optconform_version": __version__,
            "vectors": self.vectors,
            "target": self.target,
            "target_name": self.target_name,
            "dtype": self.dtype,
            "conventions": self.conventions,
            "conforms": self.conforms,
            "summary": self.summary(),
            "diagnosis_summary": self.diagnosis_summary,
            "warnings": self.warnings,
            "skipped": self.skipped,
            "cases": [result.to_json() for result in self.results],
        }

    @classmethod
    def from_json(cls, document: dict) -> "RunReport":
        """The report :meth:`to_json` wrote (a resumed grading run reads its earlier results back)."""
        names = {f.name for f in fields(CaseResult)}

        def case(entry: dict) -> CaseResult:
            values = {key: value for key, value in entry.items() if key in names}
            for key in ("max_abs_err", "max_rel_err"):
                if isinstance(values.get(key), str):  # "nan", "inf" as JSON writes them
                    values[key] = float(values[key])
            values["tags"] = tuple(values.get("tags", ()))
            return CaseResult(**values)

        return cls(target=document["target"], dtype=document["dtype"], conventions=document["conventions"],
                   results=[case(entry) for entry in document["cases"]], target_name=document.get("target_name", ""),
                   skipped=list(document.get("skipped", [])), warnings=list(document.get("warnings", [])),
                   diagnosis_summary=list(document.get("diagnosis_summary", [])),
                   vectors=dict(document.get("vectors", {})))
