"""``optconform selftest``: run the three checks, print the kill matrix, exit 0 only when all hold."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import EQUIVALENTS, failing_variants, kill_matrix, read_equivalents, stale_equivalents, uncaught_mistakes
from .mutants import mutants


def run_selftest(vectors: str | None = None, jobs: int | None = None, only: str | None = None, full: bool = False,
                 equivalents_file: str | None = None, fmt: str = "text", output: str | None = None,
                 verbose: bool = False, harness: bool = False) -> int:
    """The three checks; exit 0 only when every mutant is killed or listed, every mistake caught, every
    correct variant passes. ``only`` (a regular expression) runs the matching mutants alone. ``harness``:
    the harness's guarded code is mutated instead, and its tests kill the mutants."""
    from optconform.errors import EXIT_NONCONFORMING, EXIT_OK, UsageError
    from optconform.vectors import load_suite

    from . import harness_mutants

    equivalents = Path(equivalents_file) if equivalents_file else (
        harness_mutants.EQUIVALENTS if harness else EQUIVALENTS)
    try:
        read_equivalents(equivalents)
    except (OSError, ValueError) as error:
        raise UsageError(f"equivalents file: {error}") from None
    if harness:
        results = harness_mutants.kill_matrix(jobs, only, equivalents)
    else:
        cases = load_suite(vectors)
        results = kill_matrix(vectors, jobs, only, full, equivalents)
    if not results:
        raise UsageError(f"no mutant matches --only {only!r}")
    stale = stale_equivalents(results, only, equivalents)
    missed = [] if only or harness else uncaught_mistakes(cases)
    broken = [] if only or harness else failing_variants(cases)
    survivors = [r for r in results if r.status == "survived"]
    ok = not (survivors or stale or missed or broken)
    if fmt == "json":
        text = json.dumps({"ok": ok, "mutants": [vars(r) for r in results], "stale_equivalents": stale,
                           "uncaught_mistakes": missed, "failing_variants": broken}, indent=1)
    else:
        text = _text(results, stale, missed, broken, verbose, only or harness, harness)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        print(text.splitlines()[0])
    else:
        sys.stdout.write(text + "\n")
    return EXIT_OK if ok else EXIT_NONCONFORMING


def _text(results, stale, missed, broken, verbose: bool, only, harness: bool = False) -> str:
    from optconform.reference import mistakes as catalogue

    from .variants import correct_variants

    count = {status: sum(r.status == status for r in results) for status in ("killed", "equivalent", "survived")}
    mutated = "the harness's comparison, diagnosis matching, withholding and gradebook" if harness else "reference/ops.py"
    lines = [f"optconform selftest: {len(results)} mutants of {mutated}: {count['killed']} killed, "
             f"{count['equivalent']} equivalent, {count['survived']} survived"]
    if not only:
        lines.append(f"known mistakes: {len(catalogue.MISTAKES) - len(missed)} of {len(catalogue.MISTAKES)} "
                     "fail at least one case")
        lines.append(f"correct variants: {len(correct_variants()) - len(broken)} of {len(correct_variants())} conform")
    for result in results:
        if result.status == "survived":
            killer = "test" if harness else "case"
            lines.append(f"SURVIVED  {result.id} (line {result.line}): no {killer} kills it; add a {killer} that "
                         "does, or list it as equivalent, with the reason")
        elif verbose and result.status == "killed":
            lines.append(f"killed    {result.id} by {', '.join(result.killed_by[:3])}"
                         + (f" (+{len(result.killed_by) - 3})" if len(result.killed_by) > 3 else ""))
        elif verbose:
            lines.append(f"equivalent {result.id}: {result.reason}")
    lines += [f"STALE     {entry}" for entry in stale]
    lines += [f"UNCAUGHT  {entry}: no case fails it" for entry in missed]
    lines += [f"REJECTED  {entry}" for entry in broken]
    return "\n".join(lines)


__all__ = ["run_selftest", "mutants"]
