"""Which cases run: by op, by convention, by dtype, and by skip and xfail lists."""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from optconform.harness.target.adapter import FUNCTION_NAMES
from optconform.reference.conventions import CONVENTIONS, ConventionError, parse_assignment

#: Case ops and the target ops each needs. A trajectory needs the update (and uses the init).
CASE_OPS = {
    "mini_batches": ("mini_batches",),
    "momentum.init": ("momentum.init",),
    "adam.init": ("adam.init",),
    "momentum.update": ("momentum.update",),
    "adam.update": ("adam.update",),
    "momentum.trajectory": ("momentum.update", "momentum.init"),
    "adam.trajectory": ("adam.update", "adam.init"),
    "gd.update": ("gd.update",),
    "rmsprop.init": ("rmsprop.init",),
    "rmsprop.update": ("rmsprop.update",),
    "lr_decay.inverse_time": ("lr_decay.inverse_time",),
    "lr_decay.scheduled": ("lr_decay.scheduled",),
}


def course_functions(case_op: str) -> list[str]:
    """The course functions a case calls, by their course names (a trajectory: update, then init)."""
    return [FUNCTION_NAMES[op][0] for op in CASE_OPS.get(case_op, ())] or [case_op]


#: A target whose convention is the key also satisfies cases assuming the values.
SATISFIES = {("mini_batches.rng", "numpy_legacy"): {"structural"}}


class SelectionError(ValueError):
    """A bad --ops, --convention, --skip or --xfail; the message is one line."""


def parse_ops(text: str | None) -> list[str] | None:
    """``"adam,mini_batches"`` -> the names, each a case op or a family (``adam``, ``momentum``)."""
    if not text:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    families = {op.split(".")[0] for op in CASE_OPS}
    for name in names:
        if name not in CASE_OPS and name not in families:
            raise SelectionError(f"unknown op {name!r}; known: {', '.join(sorted(set(CASE_OPS) | families))}")
    return names


def op_selected(case_op: str, wanted: list[str] | None) -> bool:
    if wanted is None:
        return True
    family = case_op.split(".")[0]
    return any(name in (case_op, family) or name == CASE_OPS[case_op][0] for name in wanted)


def parse_conventions(assignments: list[str]) -> dict:
    try:
        return dict(parse_assignment(text) for text in assignments)
    except ConventionError as error:
        raise SelectionError(str(error)) from None


def conventions_match(case_conventions: dict, conventions: dict) -> bool:
    """Does a target with ``conventions`` share every assumption of the case?"""
    for name, value in case_conventions.items():
        mine = conventions.get(name)
        if mine != value and value not in SATISFIES.get((name, mine), ()):
            return False
    return True


@dataclass
class CaseIdList:
    """Case ids from a --skip or --xfail file, each exact, or a glob where written as one
    (``adam.update/*/subnormal*``, :mod:`fnmatch`); remembers which entries were used.

    Exact by default: ``adam.update/outside_sqrt/t-1`` must not also cover ``t-10``, or an
    xfail list could hide a regression.
    """

    source: str
    entries: list[str] = field(default_factory=list)
    used: set = field(default_factory=set)

    @classmethod
    def read(cls, path: str | None) -> "CaseIdList":
        if not path:
            return cls("")
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise SelectionError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})") from None
        entries = [line.split("#", 1)[0].strip() for line in lines]
        return cls(path, [entry for entry in entries if entry])

    def matches(self, case_id: str) -> bool:
        hits = [entry for entry in self.entries
                if entry == case_id or (_GLOB.search(entry) and fnmatch.fnmatchcase(case_id, entry))]
        self.used.update(hits)
        return bool(hits)

    def unused_warnings(self) -> list[str]:
        return [f"{self.source}: {entry!r} matches no case" for entry in self.entries if entry not in self.used]


_GLOB = re.compile(r"[*?\[]")


@dataclass
class Selection:
    """The cases to run and, apart, the ones not run and why."""

    run: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    xfail: set = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


#: The contract's five ops (and their trajectories) are always required. The rest of the assignment and
#: RMSprop came later, and not every course version has them: for ``check``, unless named in --ops, a case of
#: one of these runs only when the target implements its function, and is otherwise skipped, saying so.
EXTENDED_OPS = ("gd.update", "rmsprop.init", "rmsprop.update", "lr_decay.inverse_time", "lr_decay.scheduled")
#: RMSprop is no function of the course assignment: ``grade`` requires the rest, and RMSprop only if asked.
NOT_IN_ASSIGNMENT = ("rmsprop.init", "rmsprop.update")
#: The ops each version of the course assignment has: 2017 and 2018 stop at Adam, 2021+ adds gradient
#: descent and the learning-rate decays. ``grade`` holds a class to the version its assignment file names.
COURSE_VERSIONS = {"2017": ("mini_batches", "momentum", "adam"), "2018": ("mini_batches", "momentum", "adam"),
                   "2021": ("mini_batches", "momentum", "adam", "gd", "lr_decay")}
DEFAULT_COURSE = "2021"


def required_functions(case_ops) -> list[str]:
    """The course functions a set of case ops calls, each once, in the course's order."""
    wanted, found = set(case_ops), []
    for op in CASE_OPS:
        if op in wanted:
            found += [name for name in course_functions(op) if name not in found]
    return found


#: Why a subnormal case is not run on a target that declares platform.subnormals=flushed.
FLUSHED_PLATFORM = "not run: the target declares platform.subnormals=flushed (its platform flushes subnormals to zero)"

#: What a float32 run cannot see, said in its report.
FLOAT32_BLIND = ("at float32, epsilon inside or outside the square root (adam.epsilon) changes many Adam results by "
                 "less than float32's tolerance (an Adam with it inside passes about 60% of the outside cases), so "
                 "this run cannot tell them apart on those: check at float64 (the default) where the "
                 "implementation can")


def select(cases, conventions: dict, dtype: str, ops: list[str] | None = None,
           skip: CaseIdList | None = None, xfail: CaseIdList | None = None,
           target_ops: list[str] | None = None, optional: tuple[str, ...] = EXTENDED_OPS) -> Selection:
    """Cases of the wanted ops that assume the target's conventions and run at ``dtype``.

    ``target_ops`` (the ops the target implements), with no ``ops`` given, skips the
    ``optional`` ops the target lacks.
    """
    skip, xfail = skip or CaseIdList(""), xfail or CaseIdList("")
    selection = Selection()
    lacking = set()
    for case in cases:
        if not op_selected(case.op, ops) or not conventions_match(case.conventions, conventions):
            continue
        if ops is None and target_ops is not None and case.op in optional and case.op not in target_ops:
            lacking.add(case.op)
            continue
        matched_skip = skip.matches(case.id)
        matched_xfail = xfail.matches(case.id)
        if matched_skip:
            selection.skipped.append(f"{case.id}: in {skip.source}")
        elif "subnormal" in case.tags and conventions.get("platform.subnormals") == "flushed":
            selection.skipped.append(f"{case.id}: {FLUSHED_PLATFORM}")
        elif not case.runs_at(dtype):
            selection.skipped.append(f"{case.id}: {case.float64_only}")
        else:
            selection.run.append(case)
            if matched_xfail:
                selection.xfail.add(case.id)
    selection.warnings = skip.unused_warnings() + xfail.unused_warnings()
    if dtype == "float32" and any(case.op.startswith("adam.") for case in selection.run):
        selection.warnings.append(FLOAT32_BLIND)
    if lacking:
        names = ", ".join(course_functions(op)[0] for op in sorted(lacking, key=EXTENDED_OPS.index))
        selection.warnings.append(f"not checked (not in every course version, and not defined here): {names}; "
                                  "name them in --ops to require them")
    return selection


def list_suite(vectors: str | None = None, ops: str | None = None, fmt: str = "text",
               allow_modified: bool = False) -> str:
    """What ``optconform list`` prints: ops, conventions, tags and the cases, as text or (``fmt`` "json") JSON."""
    import json

    from optconform.vectors import load_suite

    cases = load_suite(vectors, allow_modified=allow_modified)
    wanted = parse_ops(ops)
    cases = [case for case in cases if op_selected(case.op, wanted)]
    if fmt == "json":
        return json.dumps({
            "ops": {op: {"cases": sum(case.op == op for case in cases), "functions": course_functions(op)}
                    for op in CASE_OPS if any(case.op == op for case in cases)},
            "conventions": {name: {"values": list(spec["values"]), "default": spec["values"][0], "help": spec["help"]}
                            for name, spec in CONVENTIONS.items()},
            "tags": dict(sorted(Counter(tag for case in cases for tag in case.tags).items())),
            "cases": [{"id": case.id, "op": case.op, "description": case.description, "why": case.why,
                       "tags": list(case.tags), "conventions": case.conventions,
                       "float64_only": case.float64_only} for case in cases],
        }, indent=2)
    lines = ["ops:"]
    per_op = Counter(case.op for case in cases)
    lines += [f"  {op:<22} {per_op[op]:>4} cases  {', '.join(course_functions(op))}" for op in CASE_OPS if per_op[op]]
    lines.append("conventions (first value is the default):")
    lines += [f"  {name}={'|'.join(spec['values'])}\n      {spec['help']}" for name, spec in CONVENTIONS.items()]
    tags = Counter(tag for case in cases for tag in case.tags)
    lines.append("tags: " + ", ".join(f"{tag} ({n})" for tag, n in sorted(tags.items())))
    lines.append(f"cases ({len(cases)}):")
    lines += [f"  {case.id:<52} {case.description}" for case in cases]
    return "\n".join(lines)
