"""Naming a known mistake that shows as an exception on a case's inputs."""

from __future__ import annotations

import re

from optconform.reference.mistakes import ERROR_MISTAKES


def diagnose_error(case, message: str) -> str | None:
    """A known mistake that shows as this error on this case (the loop variable used after a loop that never
    ran, say), as a ``matches ...`` line; None otherwise."""
    inputs = case.full_inputs
    for mistake in ERROR_MISTAKES:
        if mistake.op == case.op and re.search(mistake.pattern, message) and mistake.raises_on(inputs):
            return f"matches {mistake.describe()}"
    return None
