"""Per op, what a run's failing cases are consistent with: said once, not on every case."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from optconform.harness.checking.results import mistake_names
from optconform.reference.mistakes import get


def _label(op: str, diagnosis: str | None) -> frozenset:
    """What a failing case is consistent with: mistake titles for a whole match, the head of a partial one."""
    if not diagnosis or diagnosis.startswith("no known mistake"):
        return frozenset()
    if diagnosis.startswith("matches "):
        labels = []
        for name in mistake_names(diagnosis):
            try:
                labels.append(" and ".join(get(op, part).title for part in name.split("+")))
            except KeyError:
                labels.append(name)
        return frozenset(labels)
    return frozenset([re.split(r" \(| \[", diagnosis, maxsplit=1)[0]])


def summarize(results) -> list[str]:
    """Per op, what its failing cases are consistent with.

    ``["adam.update: 14 cases fail, all consistent with: no bias correction", ...]``;
    ops without failures give no line.
    """
    by_op: dict[str, list] = defaultdict(list)
    first_unmatched = {}
    for result in results:
        if getattr(result, "status", None) == "fail":
            label = _label(result.op, getattr(result, "diagnosis", None))
            by_op[result.op].append(label)
            if not label:
                first_unmatched.setdefault(result.op, result)
    lines = []
    for op, labels in by_op.items():
        count = len(labels)
        cases = f"{count} case{'s' if count != 1 else ''} fail{'s' if count == 1 else ''}"
        common = frozenset.intersection(*labels) if labels else frozenset()
        if common:
            lines.append(f"{op}: {cases}, all consistent with: {' or '.join(sorted(common))}")
            continue
        tally = Counter(label for group in labels for label in group)
        undiagnosed = sum(1 for group in labels if not group)
        parts = [f"{n} consistent with: {label}" for label, n in tally.most_common(3)]
        if undiagnosed:
            first = first_unmatched[op]
            parts.append(f"{undiagnosed} not matched to any known mistake (first: {first.id}: "
                         f"{first.message.split('; ')[0][:200]})")
        lines.append(f"{op}: {cases}; " + "; ".join(parts))
    return lines

