"""How much the harness costs over the work it checks, measured in one run.

(a) the full suite against the reference, in-process (InProcessSession);
(b) the same through the child process (the wire protocol; version 2, base64 arrays),
    once started: the per-case cost of the process boundary;
(s) starting that child (a fixed cost per target);
(c) a bare loop that only calls the reference on each case's inputs: the floor.

Prints the times (best of --repeat) and the ratios a/c, b/a and (b+s)/a. Usage:
    python benchmarks/bench_check.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from optconform import reference
from optconform.harness.checking.inputs import cast_inputs
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import select
from optconform.harness.target.adapter import ARGUMENTS, FUNCTION_NAMES
from optconform.harness.target.session import InProcessSession, ProcessSession, child_argv
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite


def bare_loop(cases) -> None:
    """Only the reference's own work: call each op's course function on the case's inputs."""
    for case in cases:
        inputs = cast_inputs(case.full_inputs, "float64")
        if case.op not in ("momentum.trajectory", "adam.trajectory"):
            function = getattr(reference, FUNCTION_NAMES[case.op][0])
            function(*(inputs[name] for name in ARGUMENTS[case.op] if name in inputs))
            continue
        for _ in range(2):  # every step from init, teacher-forced and free-running: twice
            parameters, state = inputs["parameters"], reference.initialize_velocity(inputs["parameters"])
            s = reference.initialize_velocity(inputs["parameters"])
            for t, grads in enumerate(inputs["grads"], start=1):
                if case.op == "momentum.trajectory":
                    parameters, state = reference.update_parameters_with_momentum(
                        parameters, grads, state, inputs["beta"], inputs["learning_rate"])
                else:
                    parameters, state, s = reference.update_parameters_with_adam(
                        parameters, grads, state, s, t, inputs["learning_rate"], inputs["beta1"],
                        inputs["beta2"], inputs["epsilon"])


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = load_suite()
    conventions = resolve(reference.OPTCONFORM_CONVENTIONS)
    selection = select(cases, conventions, "float64")

    def in_process():
        report = run_cases(InProcessSession(reference, "reference"), selection, "float64", conventions, "reference")
        assert report.conforms

    session = ProcessSession(child_argv("optconform.reference"), "reference", timeout=60)

    def child():
        assert run_cases(session, selection, "float64", conventions, "reference").conforms

    def start():
        ProcessSession(child_argv("optconform.reference"), "reference", timeout=60).close()

    results = {}
    try:
        for name, function in (("bare", lambda: bare_loop(selection.run)), ("in_process", in_process),
                               ("child", child), ("start", start)):
            results[name] = min(timed(function) for _ in range(args.repeat))
    finally:
        session.close()
    a, b, c, start_cost = results["in_process"], results["child"], results["bare"], results["start"]
    print(f"cases: {len(selection.run)} (best of {args.repeat})")
    print(f"(c) bare reference loop : {c * 1000:8.1f} ms")
    print(f"(a) in-process harness  : {a * 1000:8.1f} ms")
    print(f"(b) child process       : {b * 1000:8.1f} ms  (once started)")
    print(f"(s) child start         : {start_cost * 1000:8.1f} ms")
    print(f"a/c = {a / c:.1f}   (harness overhead over the bare work)")
    print(f"b/a = {b / a:.1f}   (cost of the process boundary and the wire protocol, per case)")
    print(f"(b+s)/a = {(b + start_cost) / a:.1f}   (the same, with the start)")


if __name__ == "__main__":
    main()
