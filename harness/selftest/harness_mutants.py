"""``optconform selftest --harness``: the harness's own core proves the power of its tests.

The reference's mutants are killed by the vectors; the harness's are killed by its
tests. Each module of :data:`GUARDED` (the comparison, the diagnosis's matching,
hidden-case withholding, the gradebook and its atomic write) is mutated with the same operators
(:mod:`.mutants`). A mutant is installed in a forked worker by swapping the code of
the one function it changes (every name that imported the function sees the change),
and the test files that guard that module run under pytest: a failing test kills it.
A survivor must be listed in ``equivalent_harness_mutants.txt`` with its reason.

It needs a checkout (the tests are not installed) and the dev extras (pytest).
"""

from __future__ import annotations

import importlib
import os
import re
import resource
import signal
import sys
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

from . import MUTANT_MEMORY, MutantResult, mark_equivalents
from .mutants import Mutant, mutants

EQUIVALENTS = Path(__file__).with_name("equivalent_harness_mutants.txt")
NOT_INSTALLED = "(not installed) "
#: A mutant's tests get this long (seconds); a mutant that loops past it is killed by the test it was in.
MUTANT_SECONDS = 120


@dataclass(frozen=True)
class Guarded:
    """A module, the functions of it that are mutated (None: all), and the test files that must kill them."""

    module: str
    tests: tuple[str, ...]
    functions: frozenset | None = None


#: What is mutated: the verdicts, not the wording (a message's phrasing is checked by the report tests).
GUARDED = (
    Guarded("optconform.harness.checking.compare", ("test_compare.py", "test_tolerance_edge.py", "test_series.py"),
            frozenset({
        "Comparison.ok", "Comparison.merge", "Comparison.worst", "elementwise_errors", "compare_arrays",
        "compare_structure", "compare_case_outputs", "_Flat.__init__", "_leaves", "_gathered", "_passes_whole",
        "_compared_whole", "_flat", "_compared_by_leaf", "elementwise_difference", "leaf_errors"})),
    Guarded("optconform.harness.diagnosis.matching", ("test_matching_many.py",),
            frozenset({"failing_against_many", "_stacked"})),
    Guarded("optconform.harness.checking.runner", ("test_withholding.py",), frozenset({"withheld", "_expected_key"})),
    Guarded("optconform.harness.grading.gradebook", ("test_gradebook.py",)),
    Guarded("optconform.harness.grading.atomic", ("test_atomic.py",)),
)


def tests_folder() -> Path:
    """The checkout's ``tests/``, beside the harness's sources (an editable install)."""
    return Path(__file__).resolve().parents[2] / "tests"


def harness_mutants(only: str | None = None) -> list[tuple[Mutant, tuple[str, ...]]]:
    """Every mutant of the guarded code, with the test files that guard it."""
    found = []
    for guarded in GUARDED:
        module = importlib.import_module(guarded.module)
        for mutant in mutants(module, guarded.functions):
            mutant = replace(mutant, id=f"{guarded.module.rsplit('.', 1)[1]}.{mutant.id}")
            if only is None or re.search(only, mutant.id):
                found.append((mutant, guarded.tests))
    return found


def _function(owner, qualified: str):
    """The plain function behind ``qualified`` (``name`` or ``Class.method``; a property's getter)."""
    *classes, name = qualified.split(".")
    for part in classes:
        owner = getattr(owner, part)
    found = vars(owner)[name] if classes else getattr(owner, name)
    if isinstance(found, property):
        return found.fget
    return getattr(found, "__func__", found)


def install(mutant: Mutant) -> None:
    """Put the mutant's code in place of its function's, in this process."""
    original = _function(importlib.import_module(mutant.of), mutant.function)
    replacement = _function(mutant.module(), mutant.function)
    original.__code__ = replacement.__code__
    original.__defaults__, original.__kwdefaults__ = replacement.__defaults__, replacement.__kwdefaults__


class _OutOfTime(BaseException):
    """Raised in the middle of a test that runs past :data:`MUTANT_SECONDS`: the test fails, the mutant dies."""


class _Failures:
    """A pytest plugin that keeps the id of every test that fails or errs."""

    def __init__(self):
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)


def run_tests(tests: tuple[str, ...], folder: Path, mutant: Mutant | None = None) -> list[str]:
    """The guarding tests, against ``mutant`` (None: as the code is); the tests that fail, first one only.

    Runs in a fresh worker: its output goes nowhere, its memory is capped."""
    import pytest

    resource.setrlimit(resource.RLIMIT_DATA, (MUTANT_MEMORY, MUTANT_MEMORY))
    signal.signal(signal.SIGALRM, lambda signum, frame: (_ for _ in ()).throw(_OutOfTime()))
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    try:
        if mutant is not None:
            install(mutant)
    except Exception as error:  # noqa: BLE001 - only function bodies change: a failure here is selftest's own
        return [f"{NOT_INSTALLED}{type(error).__name__}: {error}"]
    plugin = _Failures()
    signal.alarm(MUTANT_SECONDS)
    code = pytest.main([*(str(folder / name) for name in tests), "-x", "-q", "-p", "no:cacheprovider",
                        "-p", "no:randomly", "--rootdir", str(folder.parent), "-o", "addopts="], plugins=[plugin])
    signal.alarm(0)
    if code not in (0, 1) and not plugin.failed:
        return [f"(pytest exit {int(code)})"]
    return plugin.failed


def _preload(folder: Path, found) -> None:
    """Import pytest, its plugins and the guarding test modules here, once, so each fork starts warm (a cold
    pytest with the hypothesis plugin costs a second per mutant). The forks import nothing of this again."""
    import pytest  # noqa: F401

    try:
        import hypothesis  # noqa: F401 - its pytest plugin imports it in every session otherwise
    except ImportError:
        pass
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # where pytest's default import mode would put it
    for name in sorted({name for _, tests in found for name in tests}):
        importlib.import_module(Path(name).stem)


def kill_matrix(jobs: int | None = None, only: str | None = None, equivalents: Path = EQUIVALENTS,
                folder: Path | None = None) -> list[MutantResult]:
    """Every harness mutant's result, equivalents marked. The guarding tests must pass unmutated first."""
    from optconform.errors import UsageError


    folder = folder or tests_folder()
    found = harness_mutants(only)
    missing = sorted({name for _, tests in found for name in tests if not (folder / name).is_file()})
    if missing:
        raise UsageError(f"selftest --harness runs the checkout's tests, and {folder} lacks {', '.join(missing)}")
    _preload(folder, found)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(found) or 1))
    # a fresh fork of this process for each mutant: its code swapped there, never here
    with get_context("fork").Pool(jobs, maxtasksperchild=1) as pool:
        guards = sorted({tests for _, tests in found})
        for failed in pool.starmap(run_tests, [(tests, folder) for tests in guards], chunksize=1):
            if failed:
                raise UsageError(f"the harness's tests fail with no mutant at all ({failed[0]}): fix them first")
        runs = pool.starmap(run_tests, [(tests, folder, mutant) for mutant, tests in found], chunksize=1)
        results = [MutantResult(m.id, m.function, m.line, m.change, m.default, killed_by=failed[:1])
                   for (m, _), failed in zip(found, runs)]
    broken = [f"{m.id}: {failed[0][len(NOT_INSTALLED):]}" for (m, _), failed in zip(found, runs)
              if failed and failed[0].startswith(NOT_INSTALLED)]
    if broken:  # never a mutant counted as killed because it could not be put in place
        raise UsageError(f"{len(broken)} mutant(s) could not be installed, the first: {broken[0]}")
    for result in results:
        result.status = "killed" if result.killed_by else "survived"
    return mark_equivalents(results, equivalents)
