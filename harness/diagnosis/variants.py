"""A known mistake's own outputs on a case: what a target that made it would return.

Each mistake of :mod:`optconform.reference.mistakes` is run on the case's inputs,
under the case's conventions; a trajectory step by step, free-running and
teacher-forced. Outputs are remembered per case and mistake.
"""

from __future__ import annotations

import numpy as np

from optconform.harness.checking.per_case import kept
from optconform.harness.target.adapter import ARGUMENTS
from optconform.reference import ops
from optconform.reference.conventions import resolve
from optconform.reference.mistakes import Mistake, step_op


def _copy(value):
    """Fresh containers around the same arrays (neither the reference nor a variant writes into arrays)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _step(op: str, fn, inputs: dict, conventions: dict) -> dict:
    """One call of ``fn`` (a reference op or a mistake's variant) in the vectors' output shape.

    Arguments a case leaves out are left out of the call, so ``fn``'s own defaults apply.
    """
    i = _copy(inputs)
    given = {name: i[name] for name in ARGUMENTS[op] if name in i}
    if op == "mini_batches":
        return {"batches": [[x, y] for x, y in fn(**given)]}
    if op == "momentum.init":
        return {"v": fn(**given)}
    if op == "adam.init":
        v, s = fn(**given)
        return {"v": v, "s": s}
    if op == "momentum.update":
        parameters, v = fn(**given, form=conventions["momentum.form"])
        return {"parameters": parameters, "v": v}
    if op == "adam.update":
        parameters, v, s = fn(**given, epsilon_placement=conventions["adam.epsilon"])
        return {"parameters": parameters, "v": v, "s": s}
    if op == "gd.update":
        return {"parameters": fn(**given)}
    if op == "rmsprop.init":
        return {"s": fn(**given)}
    if op == "rmsprop.update":
        parameters, s = fn(**given, epsilon_placement=conventions["rmsprop.epsilon"])
        return {"parameters": parameters, "s": s}
    if op in ("lr_decay.inverse_time", "lr_decay.scheduled"):
        return {"learning_rate": np.asarray(fn(**given), dtype=np.float64)}
    raise ValueError(f"no step for op {op!r}")


REFERENCE = {
    "mini_batches": ops.mini_batches,
    "momentum.init": ops.momentum_init,
    "adam.init": ops.adam_init,
    "momentum.update": ops.momentum_update,
    "adam.update": ops.adam_update,
    "gd.update": ops.gd_update,
    "rmsprop.init": ops.rmsprop_init,
    "rmsprop.update": ops.rmsprop_update,
    "lr_decay.inverse_time": ops.lr_inverse_time,
    "lr_decay.scheduled": ops.lr_scheduled,
}


def _trajectory(case, fn, conventions: dict, teacher_forced: bool) -> dict:
    inputs = case.inputs
    adam = case.op == "adam.trajectory"
    step_op = "adam.update" if adam else "momentum.update"
    hyper = ("learning_rate", "beta1", "beta2", "epsilon") if adam else ("beta", "learning_rate")
    parameters = inputs["parameters"]
    state = dict(zip(("v", "s"), ops.adam_init(parameters))) if adam else {"v": ops.momentum_init(parameters)}
    golden = case.expected.get("steps", []) if isinstance(case.expected, dict) else []
    steps = []
    for index, grads in enumerate(inputs["grads"]):
        if teacher_forced and index > 0 and index - 1 < len(golden):
            previous = golden[index - 1]
            parameters = previous["parameters"]
            state = {key: value for key, value in previous.items() if key != "parameters"}
        step_inputs = {"parameters": parameters, "grads": grads, **state, **{k: inputs[k] for k in hyper}}
        if adam:
            step_inputs["t"] = index + 1
        outputs = _step(step_op, fn, step_inputs, conventions)
        steps.append(outputs)
        parameters = outputs["parameters"]
        state = {key: value for key, value in outputs.items() if key != "parameters"}
    return {"steps": steps}


def variant_outputs(case, mistake: Mistake | None = None) -> list[dict]:
    """What ``mistake`` (or the reference, for None) returns on ``case``'s inputs, in the vectors' shape.

    One output for a single-step case; two for a trajectory (free-running, then
    teacher-forced). ``mini_batches`` variants use the legacy NumPy generator.
    They depend only on the case: each is computed once per process and kept with
    the case, so the diagnosis of every later submission finds it ready.
    """
    key = None if mistake is None else (mistake.op, mistake.name)
    return kept(case, "_variant_outputs", key, lambda: _compute_variant_outputs(case, mistake))


def _compute_variant_outputs(case, mistake: Mistake | None) -> list[dict]:
    conventions = resolve(case.conventions)
    with np.errstate(all="ignore"):
        if case.op in ("momentum.trajectory", "adam.trajectory"):
            fn = mistake.fn if mistake else REFERENCE[step_op(case.op)]
            return [_trajectory(case, fn, conventions, False), _trajectory(case, fn, conventions, True)]
        fn = mistake.fn if mistake else REFERENCE[case.op]
        return [_step(case.op, fn, case.inputs, conventions)]


def variant_output(case, mistake: Mistake | None = None) -> dict:
    """The (free-running) output of ``mistake`` or the reference on ``case``'s inputs."""
    return variant_outputs(case, mistake)[0]

