"""What the cases of a run are worth: points per op or family and per tag, earned in proportion or whole.

The assignment file (:mod:`optconform.harness.grading.assignment`) says what each part is
worth; a report scores its results with it, and the Gradescope and PrairieLearn formats
make one test of each group. Without points, every case is worth one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
                found.append({"group": name, "kind": kind, "points": round(worth * share, 2), "max": worth,
                              "passed": passed, "cases": len(members)})
        return found

    def score(self, results) -> tuple[float, float]:
        groups = self.groups(results)
        return round(sum(g["points"] for g in groups), 2), round(sum(g["max"] for g in groups), 2)

    def as_dict(self) -> dict:
        return {"ops": dict(self.ops), "tags": dict(self.tags), "partial_credit": self.partial_credit}
