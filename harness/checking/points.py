"""What the cases of a run are worth: points per op or family and per tag, earned in proportion or whole, and
credit for a known mistake: a group whose every failing check is that one mistake earns the share the
assignment gives it (epsilon inside the root, a 1e-8 relative difference, may be worth 90% of Adam's points,
where proportion would give it 12%).

The assignment file (:mod:`optconform.harness.grading.assignment`) says what each part is
worth; a report scores its results with it, and the Gradescope and PrairieLearn formats
make one test of each group. Without points, every case is worth one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .results import mistake_names

PARTIAL_CREDIT = ("proportional", "all_or_nothing")


def group_members(results, kind: str, name: str) -> list:
    """The results a points group covers: an op's or a family's (``kind`` "op"), or a tag's (``kind`` "tag")."""
    if kind == "op":
        return [r for r in results if r.op == name or r.op.startswith(name + ".")]
    return [r for r in results if name in r.tags]


@dataclass(frozen=True)
class Points:
    """``ops`` and ``tags`` map a group's name to its points; ``partial_credit`` is one of :data:`PARTIAL_CREDIT`."""

    ops: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    partial_credit: str = "proportional"
    #: ``{mistake name: share of a group's points}`` earned where that mistake is all a group gets wrong
    mistakes: dict = field(default_factory=dict)

    def groups(self, results) -> list[dict]:
        """Each op and tag group that has cases: its points earned and its maximum."""
        found = []
        for kind, table in (("op", self.ops), ("tag", self.tags)):
            for name, worth in table.items():
                members = group_members(results, kind, name)
                if not members:
                    continue
                passed = sum(r.status == "pass" for r in members)
                share = passed / len(members) if self.partial_credit == "proportional" else float(
                    passed == len(members))
                group = {"group": name, "kind": kind, "points": round(worth * share, 2), "max": worth,
                         "passed": passed, "cases": len(members)}
                mistake = self._only_mistake(members)
                if mistake is not None and self.mistakes[mistake] > share:
                    group["points"] = round(worth * self.mistakes[mistake], 2)
                    group["credit"] = (f"{mistake}: the one mistake here, worth {self.mistakes[mistake]:.0%} of "
                                       "these points")
                found.append(group)
        return found

    def _only_mistake(self, members) -> str | None:
        """The mistake every failing (or erring) check of a group is, where the assignment credits it."""
        wrong = [r for r in members if r.status != "pass"]
        if not wrong or not self.mistakes:
            return None
        names = {tuple(mistake_names(r.diagnosis)) for r in wrong}
        if len(names) != 1:
            return None
        (named,) = names
        return named[0] if len(named) == 1 and named[0] in self.mistakes else None

    def score(self, results) -> tuple[float, float]:
        groups = self.groups(results)
        return round(sum(g["points"] for g in groups), 2), round(sum(g["max"] for g in groups), 2)

    def as_dict(self) -> dict:
        return {"ops": dict(self.ops), "tags": dict(self.tags), "partial_credit": self.partial_credit,
                "mistakes": dict(self.mistakes)}
