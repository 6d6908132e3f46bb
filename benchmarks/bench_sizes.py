"""Cost against array size: one Adam step on a layer of n x n, checked in-process and through the child.

The cost should grow linearly with the number of elements (n**2): the time per element
stays about flat from n = 256 up. Usage:
    python benchmarks/bench_sizes.py [--sizes 256,1024,2048,4096] [--child-max 2048]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from optconform import reference
from optconform.harness.checking.checks import check_case
from optconform.harness.target.session import InProcessSession, ProcessSession, child_argv
from optconform.reference import ops
from optconform.vectors import load_suite


def big_case(template, n: int):
    """``template`` (an adam.update case) with one n x n layer; expected from the reference, scale |expected|."""
    rng = np.random.default_rng(n)
    parameters = {"W1": rng.standard_normal((n, n)), "b1": rng.standard_normal((n, 1))}
    grads = {"d" + k: rng.standard_normal(a.shape) for k, a in parameters.items()}
    v = {k: 0.1 * rng.standard_normal(a.shape) for k, a in grads.items()}
    s = {k: rng.random(a.shape) for k, a in grads.items()}
    inputs = {"parameters": parameters, "grads": grads, "v": v, "s": s, "t": 3, "learning_rate": 0.01,
              "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    p, v1, s1 = ops.adam_update(parameters, grads, v, s, 3)
    tolerance = {**template.tolerance, "scale": None}
    tolerance.pop("scale")
    return replace(template, id=f"adam.update/size-{n}", inputs=inputs,
                   expected={"parameters": p, "v": v1, "s": s1}, tolerance=tolerance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024,2048,4096")
    parser.add_argument("--child-max", type=int, default=2048, help="largest n sent through the child")
    parser.add_argument("--memory", type=int, default=2048, help="the child's address space, MB (as --memory)")
    args = parser.parse_args()
    template = next(c for c in load_suite() if c.op == "adam.update" and c.conventions.get("adam.epsilon",
                                                                                            "outside_sqrt") == "outside_sqrt")
    in_process = InProcessSession(reference, "reference")
    child = ProcessSession(child_argv("optconform.reference"), "reference", timeout=600, memory_mb=args.memory)
    conventions = dict(reference.OPTCONFORM_CONVENTIONS)
    print(f"{'n':>6} {'elements':>10} {'in-process':>12} {'ns/element':>10} {'child':>10} {'ns/element':>10}")
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            case = big_case(template, n)
            elements = 4 * (n * n + n)
            start = time.perf_counter()
            assert check_case(case, in_process, "float64", conventions).status == "pass"
            local = time.perf_counter() - start
            line = f"{n:>6} {elements:>10} {local:>11.3f}s {local / elements * 1e9:>10.1f}"
            if n <= args.child_max:
                start = time.perf_counter()
                outcome = check_case(case, child, "float64", conventions)
                remote = time.perf_counter() - start
                if outcome.status == "pass":
                    line += f" {remote:>9.3f}s {remote / elements * 1e9:>10.1f}"
                else:  # e.g. the child's memory limit (OPTCONFORM_MEMORY_MB, 2 GiB by default)
                    line += f"  child: {outcome.status}: {outcome.message[:100]}"
            print(line, flush=True)
    finally:
        child.close()


if __name__ == "__main__":
    main()
