"""Checking ``mini_batches``: exactly the reference's batches (numpy_legacy), or a shuffled partition of the
columns of X and Y, told from no shuffle, a seed ignored, and a biased or partial shuffle over a few seeds."""

from __future__ import annotations

import numpy as np

from optconform.harness.target.readonly import FrozenArgs, FrozenResult, frozen_args

from .compare import compare_case_outputs
from .inputs import case_inputs
from .outcome import Outcome, from_comparison, problems_outcome
from .per_case import kept

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


#: How many of a structural case's calls are worth sending ahead: its seed twice and the next two. A fair shuffle
#: has settled by then (:func:`_settled`) but for about one case in m; the rest are made only when needed.
CALLS_AHEAD = 4


def mini_batch_calls(case, dtype: str) -> list[FrozenArgs]:
    """The arguments of the calls a structural mini-batch case may make when its batches are well formed: its own
    seed twice, then the next seeds (:func:`shuffle_seeds`); made once per case and dtype."""
    def make():
        args = case_inputs(case, dtype)
        return [args, args, *(frozen_args({**args, "seed": seed}) for seed in shuffle_seeds(case))]

    return kept(case, "_mini_batch_calls", dtype, make)


def check_mini_batches(case, session, dtype, conventions) -> Outcome:
    args = case_inputs(case, dtype)
    seed = case.full_inputs["seed"]
    got, problems = session.call("mini_batches", args, conventions)
    if problems:
        return problems_outcome(problems, got)
    if "batches" in case.expected:  # numpy_legacy: exactly these batches
        comparison = compare_case_outputs(case, got, dtype)
        if not comparison.ok and _same_structure_other_order(case, got):
            return Outcome("fail", "batches are well formed but not in np.random.permutation order after "
                           f"np.random.seed({seed}) (" + comparison.message() + ")",
                           comparison, got)
        return from_comparison(comparison, got)
    sizes = case.expected["batch_sizes"]
    order, problems = _read(case, sizes, got)
    if not problems:
        calls = mini_batch_calls(case, dtype)
        again, _ = session.call("mini_batches", calls[1], conventions)
        if not _same_batches(got["batches"], again["batches"]):
            problems.append(f"the same seed {seed} gave different batches on a second call")
        orders = [order]
        for other_args in calls[2:]:
            if _settled(orders, sizes):  # nothing can be found never moving: more seeds would say nothing
                break
            other_seed = other_args["seed"]
            other, _ = session.call("mini_batches", other_args, conventions)
            if other_seed == seed + 1 and _same_batches(got["batches"], other["batches"]):
                problems.append(f"seeds {seed} and {seed + 1} gave the same order: the seed is ignored")
                break
            order, trouble = _read(case, sizes, other)
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
    members = _fixed_members(orders, sizes)
    if members is not None:
        return [f"each batch holds the same columns under {seeds} (batch 0: columns "
                f"{sorted(members[0])[:6]}...): the examples never move from one batch to another "
                "(are they shuffled only inside fixed batches?)"]
    stuck = _stuck_columns(orders)
    if stuck.size:
        p = int(stuck[0])
        return [f"column {orders[0][p]} of X is at position {p} under every one of {seeds}: "
                "the shuffle never moves it"]
    return []


def _fixed_members(orders: list[list[int]], sizes: list[int]) -> list[frozenset] | None:
    """The columns each batch holds, when they are the same in every order (and a batch can change them)."""
    if len(sizes) < 2 or max(sizes) < 2:
        return None
    bounds = np.cumsum([0, *sizes])
    members = [[frozenset(order[a:b]) for a, b in zip(bounds, bounds[1:])] for order in orders]
    return members[0] if all(m == members[0] for m in members) else None


def _stuck_columns(orders: list[list[int]]) -> np.ndarray:
    """The positions whose column is the same in every order (with columns enough for that to be telling)."""
    if len(orders[0]) < STUCK_MIN_COLUMNS:
        return np.zeros(0, dtype=np.intp)
    table = np.array(orders)
    return np.flatnonzero((table == table[0]).all(axis=0))


def _settled(orders: list[list[int]], sizes: list[int]) -> bool:
    """Whether :func:`_never_moved` is empty now and whatever more orders come: both of what it looks for must
    hold in every order, so one pair of orders in which batches and columns moved rules them out for good."""
    return len(orders) >= 2 and _fixed_members(orders, sizes) is None and not _stuck_columns(orders).size


#: How many shared answers (:class:`~optconform.harness.target.readonly.FrozenResult`) each case remembers the
#: reading of: a class's correct submissions mostly send the same batches, for each of a case's seeds.
_READ_PER_CASE = 16


def _read(case, sizes: list[int], got) -> tuple[list[int], list[str]]:
    """:func:`read_batches` of an answer's batches; for an answer the grading process shares, read once per case
    (reading is a pure function of the answer, and a shared one never changes)."""
    if type(got) is not FrozenResult:
        return read_batches(case.inputs, sizes, got["batches"])
    memo = case.__dict__.setdefault("_read_batches", {})
    seen = memo.get(id(got))
    if seen is None or seen[0] is not got:  # the answer kept with its reading, so that no other takes its id
        seen = memo[id(got)] = (got, read_batches(case.inputs, sizes, got["batches"]))
        if len(memo) > _READ_PER_CASE:
            try:  # the oldest goes; Dask may grade in threads, and another may just have taken it
                memo.pop(next(iter(memo)), None)
            except (RuntimeError, StopIteration):
                pass
    order, problems = seen[1]
    return list(order), list(problems)


def _same_batches(first, second) -> bool:
    return first is second or len(first) == len(second) and all(
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
