"""Checking one case against a session: call, compare, and say what differs.

Each case op has one checker (:data:`CHECKERS`) returning an :class:`~.outcome.Outcome`:
one call compared (:func:`check_single`), a trajectory (here), or mini-batches
(:mod:`.mini_batches`). Calls that fail
(:class:`CallFailed`) become ``error``; ops the target lacks become
``not_implemented``; everything else is ``pass`` or ``fail`` with a message that
names the key, the index, expected and got. Failing value comparisons keep what
the target returned (``got``) so the diagnosis layer can name the mistake.
"""

from __future__ import annotations

import numpy as np

from optconform.harness.target.readonly import frozen_args
from optconform.harness.target.session import CallFailed, NotImplementedOp
from optconform.reference.conventions import for_call

from .compare import compare_case_outputs
from .inputs import case_inputs, cast_inputs
from .mini_batches import check_mini_batches
from .outcome import Outcome, from_comparison, problems_outcome
from .per_case import kept


def _golden_state(case, step: int, keys: tuple, dtype: str) -> dict:
    """The golden state after ``step`` of a trajectory case, in ``dtype``: made once, read-only, shared."""
    return kept(case, "_golden_states", (step, keys, dtype),
                lambda: frozen_args(cast_inputs({k: case.expected["steps"][step][k] for k in keys}, dtype)))


def _golden_start(case, family: str, inputs: dict, dtype: str) -> dict:
    """A trajectory's first state: its parameters and zeros for ``v`` (and ``s``), read-only, made once per case
    and dtype; ``v`` and ``s`` each their own arrays, so that an update working in place never sees them as one."""
    def zeros():
        return {key: np.zeros_like(value) for key, value in case.expected["steps"][0]["v"].items()}

    return kept(case, "_golden_start", dtype, lambda: frozen_args(
        {"parameters": inputs["parameters"], "v": zeros()} | ({"s": zeros()} if family == "adam" else {})))


# ---------------------------------------------------------------- single calls


def check_single(case, session, dtype, conventions) -> Outcome:
    """init and update ops: one call, every output array compared."""
    args = case_inputs(case, dtype)
    got, problems = session.call(case.op, args, conventions)
    comparison = compare_case_outputs(case, got, dtype)
    if problems:
        outcome = problems_outcome(problems, got)
        outcome.comparison = comparison
        return outcome
    return from_comparison(comparison, got)


# ---------------------------------------------------------------- trajectories


def _step_args(case, state, grads, step):
    args = {"parameters": state["parameters"], "grads": grads, "v": state["v"]}
    if case.op == "adam.trajectory":
        args |= {"s": state["s"], "t": step + 1}
        args |= {key: case.inputs[key] for key in ("learning_rate", "beta1", "beta2", "epsilon")}
    else:
        args |= {key: case.inputs[key] for key in ("beta", "learning_rate")}
    return args


def _sent_steps(case, kind: str, dtype: str, make) -> list:
    """A trajectory's calls that every submission is sent alike (``make()``: the teacher-forced steps, or the
    free run's steps less the state it carries), made once per case and dtype, sealed (:func:`frozen_args`)."""
    return kept(case, "_sent_steps", (kind, dtype), lambda: [(op, frozen_args(args)) for op, args in make()])


#: How a trajectory's failure says which run found it, in words a student follows (the teacher-forced run,
#: and the free run from the target's own init).
STEP_BY_STEP = "each step given the reference's state"
IN_A_ROW = "your steps in a row, from your own init"


def check_trajectory(case, session, dtype, conventions) -> Outcome:
    """Teacher-forced (golden state in at every step) and free-running (the target's own state carried).

    Teacher-forced names the first step whose arithmetic is wrong; free-running,
    from the target's own init, catches state carried wrongly between calls. The
    free run's steps are kept whole for the diagnosis.
    """
    family = case.op.split(".")[0]
    update, init = f"{family}.update", f"{family}.init"
    inputs = case_inputs(case, dtype)
    steps, scales = case.expected["steps"], case.tolerance["scale"]["steps"]
    golden_start = _golden_start(case, family, inputs, dtype)

    def teacher_forced_calls():
        calls, state = [], golden_start
        for step, grads in enumerate(inputs["grads"]):
            calls.append((update, _step_args(case, state, grads, step)))
            state = _golden_state(case, step, tuple(state), dtype)
        return calls

    def teacher_forced_answers():
        """Every teacher-forced step's arguments are known before the first call: one request for all."""
        calls = _sent_steps(case, "teacher-forced", dtype, teacher_forced_calls)
        return iter(session.call_many(calls, conventions, sequence=True))  # all read: the session stays free

    def first_wrong(state, mode, feed, answers=None):
        """Run every step; return (failing Outcome or None, the steps returned)."""
        returned, failure = [], None
        for step, grads in enumerate(inputs["grads"]):
            if answers is None:
                got, problems = session.call(update, _step_args(case, state, grads, step), conventions)
            else:
                answer = next(answers, None)
                if answer is None:  # a program that marked its chain's last answer too soon
                    raise CallFailed(f"protocol error: the program stopped the steps after {step}")
                if isinstance(answer, Exception):
                    raise answer
                got, problems = answer
            returned.append(got)
            if failure is None:
                if problems:
                    failure = problems_outcome([f"{mode}, step {step + 1}: {p}" for p in problems])
                else:
                    comparison = compare_case_outputs(case, got, dtype, steps[step], scales[step])
                    if not comparison.ok:
                        failure = from_comparison(comparison, None, f"step {step + 1} of {len(steps)} is the "
                                                   f"first wrong one ({mode}): ")
            state = feed(step, got, state)
        return failure, returned

    golden = lambda step, got, state: _golden_state(case, step, tuple(state), dtype)  # noqa: E731
    own = lambda step, got, state: {k: got[k] for k in state}  # noqa: E731
    batched = hasattr(session, "call_many") and update in session.info.ops
    forced_failure, _ = first_wrong(golden_start, STEP_BY_STEP, golden,
                                    teacher_forced_answers() if batched else None)
    chain = _free_run_in_one_request(case, session, inputs, golden_start, update, init, conventions, dtype)
    try:
        if init not in session.info.ops:
            raise NotImplementedOp(init)
        answer = chain.pop(0) if chain is not None else None
        if isinstance(answer, Exception):
            raise answer
        start, problems = answer or session.call(init, {"parameters": inputs["parameters"]}, conventions)
        if problems:
            return problems_outcome([f"{init}: {p}" for p in problems])
        free_start = {"parameters": inputs["parameters"], **{k: start[k] for k in golden_start if k != "parameters"}}
    except NotImplementedOp:
        free_start = golden_start
    free_failure, free_steps = first_wrong(free_start, IN_A_ROW, own,
                                           iter(chain) if chain is not None else None)
    if forced_failure is None and free_failure is None:
        return Outcome("pass")
    outcome = forced_failure or free_failure
    if forced_failure is None:
        outcome.message += (" (each step is right from the reference's state: the state is carried wrongly from "
                            "one call to the next)")
    outcome.got = {"steps": free_steps}
    return outcome


def _free_run_in_one_request(case, session, inputs, golden_start, update, init, conventions,
                             dtype: str) -> list | None:
    """The free run's answers (its init's first, when the target has one) from one ``chain`` request, or None
    where the session cannot take one (then the run goes a call at a time, as :func:`check_trajectory` does
    by itself). The program carries its own state from step to step, exactly as the harness would."""
    if not hasattr(session, "call_chain") or update not in session.info.ops:
        return None
    carry = list(golden_start)
    has_init = init in session.info.ops
    start = {"parameters": inputs["parameters"]} if has_init else golden_start
    calls = _sent_steps(case, "free", dtype, lambda: [
        (update, {k: v for k, v in _step_args(case, golden_start, grads, step).items() if k not in carry})
        for step, grads in enumerate(inputs["grads"])])
    return session.call_chain(init if has_init else None, start, calls, carry, conventions)


def _multi_row_hint(case, message: str) -> str:
    """What a reshape error on labels of several rows means: the course's (1, m) code under multi_row."""
    if case.conventions.get("mini_batches.y_rows") != "multi_row" or "reshape" not in message:
        return ""
    return ("; this case's Y has several rows and runs only because mini_batches.y_rows=multi_row is in force: "
            "code that reshapes Y to (1, m), as the course does, supports one row only (drop that convention)")


CHECKERS = {
    "mini_batches": check_mini_batches,
    "momentum.init": check_single,
    "adam.init": check_single,
    "momentum.update": check_single,
    "adam.update": check_single,
    "momentum.trajectory": check_trajectory,
    "adam.trajectory": check_trajectory,
    "gd.update": check_single,
    "rmsprop.init": check_single,
    "rmsprop.update": check_single,
    "lr_decay.inverse_time": check_single,
    "lr_decay.scheduled": check_single,
}


def check_case(case, session, dtype: str, conventions: dict) -> Outcome:
    """Run one case; whatever the target does, an Outcome comes back."""
    try:
        return CHECKERS[case.op](case, session, dtype, for_call(case.op, conventions))
    except NotImplementedOp as missing:
        return Outcome("not_implemented", f"{missing} is not implemented")
    except CallFailed as failure:
        return Outcome("error", str(failure) + _multi_row_hint(case, str(failure)), withheld=failure.withheld)
    except KeyError as error:
        return Outcome("fail", f"the result has no {error}")
