"""``optconform selftest``: the vectors prove their own power.

Three checks, each through the harness's own road (an in-process target, the
checker, the comparer), on the vectors in use:

1. **Mutants.** Every mutant of ``reference/ops.py`` (:mod:`.mutants`) is checked
   as a target under each convention set of :data:`CONFIGS`, on the cases of the
   ops whose code it changes. The kill matrix names, for each mutant, the cases
   that kill it. A survivor must be listed in ``equivalent_mutants.txt`` with the
   reason it computes the same thing; a listed mutant that is killed, or no longer
   exists, is a stale entry.
2. **Mistakes.** Every known mistake of the catalogue fails at least one case.
3. **Correct variants** (:mod:`.variants`) pass every case.

Mutants run in parallel worker processes (``--jobs``), in-process within each.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import re
import types
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optconform.harness.checking.checks import check_case
from optconform.harness.checking.selection import select
from optconform.harness.target.session import InProcessSession
from optconform.reference import mistakes as catalogue
from optconform.reference import ops as reference_ops
from optconform.reference.conventions import DEFAULTS

from .mutants import Mutant, mutants
from .variants import correct_variants

EQUIVALENTS = Path(__file__).with_name("equivalent_mutants.txt")

#: Convention sets a mutant is checked under: together they give every value of every family.
CONFIGS = [
    {**DEFAULTS, "mini_batches.rng": "numpy_legacy", "mini_batches.y_rows": "multi_row"},
    {**DEFAULTS, "momentum.form": "heavy_ball", "adam.epsilon": "inside_sqrt", "rmsprop.epsilon": "inside_sqrt",
     "mini_batches.rng": "numpy_legacy", "mini_batches.y_rows": "multi_row"},
    {**DEFAULTS, "momentum.form": "lr_scaled", "adam.epsilon": "epsilon_hat", "mini_batches.rng": "structural",
     "mini_batches.y_rows": "one_row"},
]

#: The ops function of each op, and the course name a target gives it.
OP_FUNCTIONS = {
    "mini_batches": ("mini_batches", "random_mini_batches"),
    "momentum.init": ("momentum_init", "initialize_velocity"),
    "momentum.update": ("momentum_update", "update_parameters_with_momentum"),
    "adam.init": ("adam_init", "initialize_adam"),
    "adam.update": ("adam_update", "update_parameters_with_adam"),
    "gd.update": ("gd_update", "update_parameters_with_gd"),
    "rmsprop.init": ("rmsprop_init", "initialize_rmsprop"),
    "rmsprop.update": ("rmsprop_update", "update_parameters_with_rmsprop"),
    "lr_decay.inverse_time": ("lr_inverse_time", "update_lr"),
    "lr_decay.scheduled": ("lr_scheduled", "schedule_lr_decay"),
}
#: A trajectory case runs the target's init and its step.
TRAJECTORIES = {"momentum.trajectory": {"momentum.init", "momentum.update"},
                "adam.trajectory": {"adam.init", "adam.update"}}


# ---------------------------------------------------------------- targets built from ops-style functions


def course_namespace(functions: dict, conventions: dict) -> types.SimpleNamespace:
    """A target with the course's names over ops-style ``functions`` (``{ops function name: callable}``),
    declaring ``conventions``; the convention arguments (``form``, ``epsilon_placement``) are bound."""
    bound = {"momentum_update": {"form": conventions["momentum.form"]},
             "adam_update": {"epsilon_placement": conventions["adam.epsilon"]},
             "rmsprop_update": {"epsilon_placement": conventions["rmsprop.epsilon"]}}
    namespace = types.SimpleNamespace(OPTCONFORM_CONVENTIONS=dict(conventions))
    for function_name, course_name in OP_FUNCTIONS.values():
        function = functions[function_name]
        if function_name in bound:
            function = functools.update_wrapper(functools.partial(function, **bound[function_name]), function)
        setattr(namespace, course_name, function)
    return namespace


def reference_functions(module=reference_ops) -> dict:
    return {function_name: getattr(module, function_name) for function_name, _ in OP_FUNCTIONS.values()}


def _calls(module=reference_ops) -> dict[str, set[str]]:
    """``{function: functions it calls, directly or not}`` among the module's top-level functions."""
    tree = ast.parse(inspect.getsource(module))
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    direct = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defined}
              for name, node in defined.items()}
    closure = {}
    for name in defined:
        seen, todo = set(), [name]
        while todo:
            for callee in direct[todo.pop()] - seen:
                seen.add(callee)
                todo.append(callee)
        closure[name] = seen | {name}
    return closure


def affected_ops(function: str) -> set[str]:
    """The case ops whose result a change to ``function`` can alter (trajectories with their steps)."""
    calls = _calls()
    ops = {op for op, (entry, _) in OP_FUNCTIONS.items() if function in calls[entry]}
    return ops | {trajectory for trajectory, parts in TRAJECTORIES.items() if ops & parts}


# ---------------------------------------------------------------- the kill matrix


@dataclass
class MutantResult:
    id: str
    function: str
    line: int
    change: str
    default: bool = False
    killed_by: list[str] = field(default_factory=list)
    status: str = "survived"  # killed, survived, equivalent
    reason: str = ""


def _selected(cases, conventions: dict, ops: set[str], dtype: str = "float64"):
    return select(cases, conventions, dtype, sorted(ops), None, None, sorted(ops)).run


#: A worker's memory (bytes) and a mutant's time (seconds): a mutant that asks for more is killed by it.
MUTANT_MEMORY = 2 << 30
MUTANT_SECONDS = 60


class _OutOfTime(Exception):
    pass


def run_mutant(mutant: Mutant, cases, full: bool = False) -> MutantResult:
    """Check one mutant under every convention set; a case that fails or errors kills it.

    The first killing case ends the run unless ``full``, which lists every case that
    kills it. Float32 is tried only on what float64 left alive. Raising, running out
    of memory or out of time (a permutation of ``seed`` columns...) kills a mutant too.
    """
    result = MutantResult(mutant.id, mutant.function, mutant.line, mutant.change, mutant.default)
    try:
        module = mutant.module()
        with np.errstate(all="ignore"):
            _hunt(module, mutant, cases, full, result)
    except (MemoryError, _OutOfTime) as error:
        result.killed_by.append("(out of memory)" if isinstance(error, MemoryError) else "(out of time)")
    except Exception as error:  # noqa: BLE001 - a mutant that does not even load is killed by loading
        result.killed_by.append(f"(load: {type(error).__name__})")
    result.status = "killed" if result.killed_by else "survived"
    return result


def _hunt(module, mutant: Mutant, cases, full: bool, result: MutantResult) -> None:
    ops, done = affected_ops(mutant.function), set()
    for dtype in ("float64", "float32"):
        for conventions in CONFIGS:
            session = InProcessSession(course_namespace(reference_functions(module), conventions), mutant.id)
            for case in _selected(cases, conventions, ops, dtype):
                if (case.id, dtype) in done:
                    continue
                done.add((case.id, dtype))
                if check_case(case, session, dtype, conventions).status != "pass":
                    result.killed_by.append(case.id if dtype == "float64" else f"{case.id} (float32)")
                    if not full:
                        return
        if result.killed_by:
            return


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """``{mutant id: reason}`` from lines ``<mutant id>  -- <reason>`` (``#`` starts a comment line)."""
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        mutant_id, sep, reason = line.partition("  -- ")
        if not sep or not reason.strip():
            raise ValueError(f"{path.name}:{number}: expected '<mutant id>  -- <reason>'")
        entries[mutant_id.strip()] = reason.strip()
    return entries


def _worker_cases(vectors):
    from optconform.vectors import load_suite

    return load_suite(vectors)


_CASES = None


def _start_worker(vectors) -> None:
    """A worker: its memory capped, an alarm that ends a mutant past its time, the cases loaded once."""
    global _CASES
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_DATA, (MUTANT_MEMORY, MUTANT_MEMORY))

    def out_of_time(signum, frame):
        raise _OutOfTime()

    signal.signal(signal.SIGALRM, out_of_time)
    _CASES = _worker_cases(vectors)


def _run_in_worker(mutant: Mutant, full: bool) -> MutantResult:
    import signal

    signal.alarm(MUTANT_SECONDS)
    try:
        return run_mutant(mutant, _CASES, full)
    finally:
        signal.alarm(0)


def kill_matrix(vectors=None, jobs: int | None = None, only: str | None = None,
                full: bool = False, equivalents: Path = EQUIVALENTS) -> list[MutantResult]:
    """Every mutant's result, equivalents marked; ``only`` keeps the mutants whose id matches that regex.

    Mutants run in ``jobs`` worker processes (always out of this process: a mutant may
    ask for all the memory there is), each loading the vectors once.
    """
    found = [m for m in mutants() if only is None or re.search(only, m.id)]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(found)))
    with ProcessPoolExecutor(jobs, initializer=_start_worker, initargs=(vectors,)) as pool:
        results = list(pool.map(_run_in_worker, found, [full] * len(found)))
    return mark_equivalents(results, equivalents)


def mark_equivalents(results: list[MutantResult], equivalents: Path = EQUIVALENTS) -> list[MutantResult]:
    """``results`` with each listed mutant given its reason, and a listed survivor marked equivalent."""
    listed = read_equivalents(equivalents)
    for result in results:
        if result.id in listed:
            result.reason = listed[result.id]
            if result.status == "survived":
                result.status = "equivalent"
    return results


def stale_equivalents(results: list[MutantResult], only: str | None = None,
                      equivalents: Path = EQUIVALENTS) -> list[str]:
    """Entries of the equivalents file that are killed or name no mutant."""
    known = {r.id: r for r in results}
    stale = []
    for mutant_id in read_equivalents(equivalents):
        if only is not None and not re.search(only, mutant_id):
            continue
        if mutant_id not in known:
            stale.append(f"{mutant_id}: no such mutant (the reference changed): remove the entry")
        elif known[mutant_id].status == "killed":
            stale.append(f"{mutant_id}: listed as equivalent but killed by {known[mutant_id].killed_by[0]}")
    return stale


# ---------------------------------------------------------------- mistakes and correct variants


def uncaught_mistakes(cases) -> list[str]:
    """Mistakes of the catalogue that no case fails, each checked as a target under the conventions where
    it is a mistake."""
    missed = []
    for mistake in catalogue.MISTAKES:
        ops = {mistake.op} | {t for t, parts in TRAJECTORIES.items() if mistake.op in parts}
        caught = False
        for conventions in CONFIGS:
            if not mistake.applies(conventions, "float64"):
                continue
            function_name = OP_FUNCTIONS[mistake.op][0]
            functions = {**reference_functions(), function_name: mistake.fn}
            session = InProcessSession(course_namespace(functions, conventions), mistake.name)
            if any(check_case(case, session, "float64", conventions).status != "pass"
                   for case in _selected(cases, conventions, ops)):
                caught = True
                break
        if not caught:
            missed.append(f"{mistake.op}: {mistake.name}")
    return missed


def failing_variants(cases) -> list[str]:
    """Correct variants that fail a case: ``name: case id: message``."""
    failures = []
    for name, (namespace, dtype) in correct_variants().items():
        session = InProcessSession(namespace, name)
        conventions = dict(namespace.OPTCONFORM_CONVENTIONS)
        for case in select(cases, conventions, dtype, None, None, None, session.info.ops).run:
            outcome = check_case(case, session, dtype, conventions)
            if outcome.status not in ("pass", "not_implemented"):
                failures.append(f"{name} ({dtype}): {case.id}: {outcome.message}"[:300])
                break
    return failures
