"""Checking one case against a session: call, compare, and say what differs.

Each case op has one checker returning an :class:`Outcome`. Calls that fail
(:class:`CallFailed`) become ``error``; ops the target lacks become
``not_implemented``; everything else is ``pass`` or ``fail`` with a message that
names the key, the index, expected and got. Failing value comparisons keep what
the target returned (``got``) so the diagnosis layer can name the mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optconform.harness.target.readonly import frozen
from optconform.harness.target.session import CallFailed, NotImplementedOp
from optconform.reference.conventions import for_call

from .compare import Comparison, compare_case_outputs

#: Structural mini-batch checks on shuffling need enough columns to be sure by chance (8! > 40000).
SHUFFLE_MIN_COLUMNS = 8
#: How many seeds (the case's and the next ones) a structural case shuffles under, to see what never moves.
SEEDS_COMPARED = 6
#: A column that sits at one position under every seed is a biased shuffle only with this many columns: a fair
#: one leaves some column in place under all 6 seeds with probability m**-4 (1.5e-5 at 16 columns).
STUCK_MIN_COLUMNS = 16


def shuffle_seeds(case) -> list[int]:
    """The seeds a structural mini-batch case calls with after its own seed (twice): the next few, when it has
    columns enough for a shuffle to be told from none."""
    if case.inputs["X"].shape[1] < SHUFFLE_MIN_COLUMNS:
        return []
    seed = case.full_inputs["seed"]
    return [seed + k for k in range(1, SEEDS_COMPARED)]


@dataclass
class Outcome:
    status: str
    message: str = ""
    comparison: Comparison | None = None
    got: dict | None = None
    details: list[str] = field(default_factory=list)
    #: an error said for a hidden case: the grader's words, nothing the target wrote (CallFailed.withheld)
    withheld: str = ""


def cast_inputs(value, dtype: str):
    """Inputs in the working dtype: arrays (also inside dicts and lists) cast, scalars kept."""
    if isinstance(value, np.ndarray):
        return value.astype(dtype)
    if isinstance(value, dict):
        return {key: cast_inputs(item, dtype) for key, item in value.items()}
    if isinstance(value, list):
        return [cast_inputs(item, dtype) for item in value]
    return value


def case_inputs(case, dtype: str) -> dict:
    """The case's inputs in ``dtype``, made once per case and dtype and shared by every target checked in
    this process: read-only (a session copies before a target may touch them), so that their wire
    encoding can be kept too (``codec.encode_array``)."""
    cache = case.__dict__.setdefault("_inputs", {})
    if dtype not in cache:
        cache[dtype] = frozen(cast_inputs(case.inputs, dtype))
    return cache[dtype]


def _golden_state(case, step: int, keys: tuple, dtype: str) -> dict:
    """The golden state after ``step`` of a trajectory case, in ``dtype``: made once, read-only, shared."""
    cache = case.__dict__.setdefault("_golden_states", {})
    key = (step, keys, dtype)
    if key not in cache:
        cache[key] = frozen(cast_inputs({k: case.expected["steps"][step][k] for k in keys}, dtype))
    return cache[key]


def _golden_start(case, family: str, inputs: dict, dtype: str) -> dict:
    """A trajectory's first state: its parameters and zeros for ``v`` (and ``s``), read-only, made once per case
    and dtype; ``v`` and ``s`` each their own arrays, so that an update working in place never sees them as one."""
    cache = case.__dict__.setdefault("_golden_start", {})
    if dtype not in cache:
        def zeros():
            return {key: np.zeros_like(value) for key, value in case.expected["steps"][0]["v"].items()}

        cache[dtype] = frozen({"parameters": inputs["parameters"], "v": zeros()}
                               | ({"s": zeros()} if family == "adam" else {}))
    return cache[dtype]


def _problems_outcome(problems: list[str], got=None) -> Outcome:
    return Outcome("fail", "; ".join(problems), got=got, details=list(problems))


def _from_comparison(comparison: Comparison, got, prefix: str = "") -> Outcome:
    if comparison.ok:
        return Outcome("pass", comparison=comparison, got=got)
    details = [m.describe() for m in sorted(comparison.mismatches, key=lambda m: -m.excess)[:10]]
    return Outcome("fail", prefix + comparison.message(), comparison, got, details)


# ---------------------------------------------------------------- single calls


def check_single(case, session, dtype, conventions) -> Outcome:
    """init and update ops: one call, every output array compared."""
    args = case_inputs(case, dtype)
    got, problems = session.call(case.op, args, conventions)
    comparison = compare_case_outputs(case, got, dtype)
    if problems:
        outcome = _problems_outcome(problems, got)
        outcome.comparison = comparison
        return outcome
    return _from_comparison(comparison, got)


# ---------------------------------------------------------------- mini-batches


def check_mini_batches(case, session, dtype, conventions) -> Outcome:
    args = case_inputs(case, dtype)
    seed = case.full_inputs["seed"]
    got, problems = session.call("mini_batches", args, conventions)
    if problems:
        return _problems_outcome(problems, got)
    if "batches" in case.expected:  # numpy_legacy: exactly these batches
        comparison = compare_case_outputs(case, got, dtype)
        if not comparison.ok and _same_structure_other_order(case, got):
            return Outcome("fail", "batches are well formed but not in np.random.permutation order after "
                           f"np.random.seed({seed}) (" + comparison.message() + ")",
                           comparison, got)
        return _from_comparison(comparison, got)
    sizes = case.expected["batch_sizes"]
    order, problems = read_batches(case.inputs, sizes, got["batches"])
    if not problems:
        again, _ = session.call("mini_batches", args, conventions)
        if not _same_batches(got["batches"], again["batches"]):
            problems.append(f"the same seed {seed} gave different batches on a second call")
        orders = [order]
        for other_seed in shuffle_seeds(case):
            other, _ = session.call("mini_batches", {**args, "seed": other_seed}, conventions)
            if other_seed == seed + 1 and _same_batches(got["batches"], other["batches"]):
                problems.append(f"seeds {seed} and {seed + 1} gave the same order: the seed is ignored")
                break
            order, trouble = read_batches(case.inputs, sizes, other["batches"])
            if trouble:
                problems.append(f"seed {other_seed}: {trouble[0]}")
                break
            orders.append(order)
        else:
            problems += _never_moved(orders, sizes, seed)
    if problems:
        return Outcome("fail", problems[0], got=got, details=problems[1:])
    return Outcome("pass", got=got)


def _never_moved(orders: list[list[int]], sizes: list[int], seed: int) -> list[str]:
    """What a fair shuffle moves but these did not, across the seeds: the columns each batch holds (fixed
    batches, shuffled only inside), or a column's position (a biased permutation)."""
    if len(orders) < 2:
        return []
    seeds = f"seeds {seed} to {seed + len(orders) - 1}"
    bounds = np.cumsum([0, *sizes])
    if len(sizes) > 1 and max(sizes) > 1:
        members = [[frozenset(order[a:b]) for a, b in zip(bounds, bounds[1:])] for order in orders]
        if all(m == members[0] for m in members):
            return [f"each batch holds the same columns under {seeds} (batch 0: columns "
                    f"{sorted(members[0][0])[:6]}...): the examples never move from one batch to another "
                    "(are they shuffled only inside fixed batches?)"]
    if len(orders[0]) >= STUCK_MIN_COLUMNS:
        stuck = [p for p in range(len(orders[0])) if len({order[p] for order in orders}) == 1]
        if stuck:
            p = stuck[0]
            return [f"column {orders[0][p]} of X is at position {p} under every one of {seeds}: "
                    "the shuffle never moves it"]
    return []


def _same_batches(first, second) -> bool:
    return len(first) == len(second) and all(
        np.array_equal(x1, x2) and np.array_equal(y1, y2) for (x1, y1), (x2, y2) in zip(first, second))


def _same_structure_other_order(case, got) -> bool:
    sizes = [x.shape[1] for x, _ in case.expected["batches"]]
    return not structural_problems(case.inputs, sizes, got.get("batches", []), require_shuffle=False)


def structural_problems(inputs, sizes, batches, require_shuffle=True) -> list[str]:
    """What is wrong with ``batches`` as a shuffled partition of the columns of X and Y (see :func:`read_batches`)."""
    return read_batches(inputs, sizes, batches, require_shuffle)[1]


def read_batches(inputs, sizes, batches, require_shuffle=True) -> tuple[list[int], list[str]]:
    """``(the columns of X the batches hold, in order; what is wrong with them as a shuffled partition of the
    columns of X and Y)``.

    Each column of the case's X is distinct, so every returned column is looked
    up to recover the permutation: the batches must use each column once, keep
    each Y column with its X column, have the expected sizes, and (for enough
    columns) not be in the original order.
    """
    X, Y = inputs["X"], inputs["Y"]
    m = X.shape[1]
    if len(batches) != len(sizes):
        hint = " (is the last, partial batch dropped?)" if len(batches) == len(sizes) - 1 else ""
        return [], [f"{len(batches)} batches, expected {len(sizes)} of sizes {sizes}{hint}"]
    known, position = _columns_sorted(X)
    order, problems = [], []
    for index, ((xb, yb), size) in enumerate(zip(batches, sizes)):
        xb, yb = np.asarray(xb, dtype=X.dtype), np.asarray(yb, dtype=Y.dtype)
        if xb.shape != (X.shape[0], size) or yb.shape != (Y.shape[0], size):
            return order, [f"batch {index}: X shape {xb.shape}, Y shape {yb.shape}; expected ({X.shape[0]}, {size}) "
                    f"and ({Y.shape[0]}, {size})"]
        wanted = _column_keys(xb)
        at = np.minimum(np.searchsorted(known, wanted), m - 1) if m else np.zeros(size, dtype=np.intp)
        missing = np.flatnonzero(known[at] != wanted) if m else np.arange(size)
        if missing.size:
            column = int(missing[0])
            return order, [f"batch {index} column {column}: X column {xb[:, column][:4].tolist()}... is not a "
                           "column of X"]
        found = position[at]
        unpaired = np.flatnonzero(~(yb == Y[:, found]).all(axis=0))  # one comparison for the whole batch
        if unpaired.size:
            column = int(unpaired[0])
            return order, [f"batch {index} column {column}: X is column {found[column]} of the input but Y is not "
                    f"Y[:, {found[column]}]: X and Y are no longer paired"]
        order += found.tolist()
    if sorted(order) != list(range(m)):
        repeated = len(order) - len(set(order))
        problems.append(f"the batches are not a permutation of the {m} columns ({repeated} repeated)")
    elif require_shuffle and m >= SHUFFLE_MIN_COLUMNS and order == list(range(m)):
        problems.append("the columns are in their original order: the examples were not shuffled")
    return order, problems


def _column_keys(X: np.ndarray) -> np.ndarray:
    """Each column of ``X`` as one value of its bytes: equal exactly when the columns are bit for bit."""
    columns = np.ascontiguousarray(X.T)
    if not columns.shape[1]:  # columns of no rows: all equal
        return np.zeros(columns.shape[0], dtype=np.dtype((np.void, 1)))
    return columns.view(np.dtype((np.void, columns.itemsize * columns.shape[1]))).ravel()


def _columns_sorted(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(the columns' keys, sorted; the column each sorted key is)``: a batch's columns are then found with one
    ``searchsorted``, however many there are."""
    keys = _column_keys(X)
    position = np.argsort(keys, kind="stable")
    return keys[position], position


# ---------------------------------------------------------------- trajectories


def _step_args(case, state, grads, step):
    args = {"parameters": state["parameters"], "grads": grads, "v": state["v"]}
    if case.op == "adam.trajectory":
        args |= {"s": state["s"], "t": step + 1}
        args |= {key: case.inputs[key] for key in ("learning_rate", "beta1", "beta2", "epsilon")}
    else:
        args |= {key: case.inputs[key] for key in ("beta", "learning_rate")}
    return args


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

    def teacher_forced_answers():
        """Every teacher-forced step's arguments are known before the first call: one request for all."""
        calls, state = [], golden_start
        for step, grads in enumerate(inputs["grads"]):
            calls.append((update, _step_args(case, state, grads, step)))
            state = _golden_state(case, step, tuple(state), dtype)
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
                    failure = _problems_outcome([f"{mode}, step {step + 1}: {p}" for p in problems])
                else:
                    comparison = compare_case_outputs(case, got, dtype, steps[step], scales[step])
                    if not comparison.ok:
                        failure = _from_comparison(comparison, None, f"step {step + 1} of {len(steps)} is the "
                                                   f"first wrong one ({mode}): ")
            state = feed(step, got, state)
        return failure, returned

    golden = lambda step, got, state: _golden_state(case, step, tuple(state), dtype)  # noqa: E731
    own = lambda step, got, state: {k: got[k] for k in state}  # noqa: E731
    batched = hasattr(session, "call_many") and update in session.info.ops
    forced_failure, _ = first_wrong(golden_start, STEP_BY_STEP, golden,
                                    teacher_forced_answers() if batched else None)
    chain = _free_run_in_one_request(case, session, inputs, golden_start, update, init, conventions)
    try:
        if init not in session.info.ops:
            raise NotImplementedOp(init)
        answer = chain.pop(0) if chain is not None else None
        if isinstance(answer, Exception):
            raise answer
        start, problems = answer or session.call(init, {"parameters": inputs["parameters"]}, conventions)
        if problems:
            return _problems_outcome([f"{init}: {p}" for p in problems])
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


def _free_run_in_one_request(case, session, inputs, golden_start, update, init, conventions) -> list | None:
    """The free run's answers (its init's first, when the target has one) from one ``chain`` request, or None
    where the session cannot take one (then the run goes a call at a time, as :func:`check_trajectory` does
    by itself). The program carries its own state from step to step, exactly as the harness would."""
    if not hasattr(session, "call_chain") or update not in session.info.ops:
        return None
    carry = list(golden_start)
    has_init = init in session.info.ops
    start = {"parameters": inputs["parameters"]} if has_init else golden_start
    calls = [(update, {k: v for k, v in _step_args(case, golden_start, grads, step).items() if k not in carry})
             for step, grads in enumerate(inputs["grads"])]
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
