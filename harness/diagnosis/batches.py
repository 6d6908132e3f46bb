"""Naming the mistake of failing mini-batches: exactly under ``mini_batches.rng=numpy_legacy``, by their
structure under ``structural`` (batch sizes, one permutation of the columns for X and for Y, paired, shuffled,
where each batch starts in the recovered column order)."""

from __future__ import annotations

import numpy as np

from optconform.reference.mistakes import mistakes_for

from .matching import Diagnosis, Flat, failing_leaves, match_text
from .variants import variant_output

#: Below this many examples, an unshuffled order is not evidence of a missing shuffle.
MIN_M_FOR_SHUFFLE = 8

# ---------------------------------------------------------------- mini-batches


def _recover(got, X, Y):
    """The column indices of every returned batch, ``(x_batches, y_batches)``; None if a batch is unreadable."""
    batches = got.get("batches") if isinstance(got, dict) else got
    if not isinstance(batches, (list, tuple)):
        return None
    columns_x = {tuple(X[:, j]): j for j in range(X.shape[1])}
    columns_y = {tuple(Y[:, j]): j for j in range(Y.shape[1])}
    x_batches, y_batches = [], []
    for pair in batches:
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            return None
        try:
            xb, yb = np.asarray(pair[0], dtype=np.float64), np.asarray(pair[1], dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if xb.ndim != 2 or yb.ndim != 2 or xb.shape[0] != X.shape[0] or yb.shape[0] != Y.shape[0]:
            return None
        for block, lookup, found in ((xb, columns_x, x_batches), (yb, columns_y, y_batches)):
            indices = [lookup.get(tuple(block[:, j])) for j in range(block.shape[1])]
            if None in indices:
                return None
            found.append(indices)
    return x_batches, y_batches


def _signature(got, X, Y):
    """The structure of a list of batches: sizes, permutation, pairing, shuffling; None if unreadable."""
    recovered = _recover(got, X, Y)
    if recovered is None:
        return None
    x_batches, y_batches = recovered
    order_x = [j for batch in x_batches for j in batch]
    order_y = [j for batch in y_batches for j in batch]
    m = X.shape[1]
    every = list(range(m))
    shuffled = lambda order: (order != sorted(order)) if m >= MIN_M_FOR_SHUFFLE else None  # noqa: E731
    return (tuple(len(b) for b in x_batches), tuple(len(b) for b in y_batches), sorted(order_x) == every,
            sorted(order_y) == every, order_x == order_y, shuffled(order_x), shuffled(order_y))


def _last_batch_astray(x_batches, sizes, m, size) -> bool:
    """The full batches are right (the expected sizes, no column twice) but the last, smaller batch is not the
    columns they leave: it starts at the wrong offset, or ends early, or is empty."""
    if not sizes or sizes[-1] >= size or len(x_batches) != len(sizes):
        return False
    full = x_batches[:-1]
    used = [j for batch in full for j in batch]
    if [len(b) for b in full] != sizes[:-1] or len(set(used)) != len(used):
        return False
    last = x_batches[-1]
    return len(set(last)) == len(last) and sorted(last) != sorted(set(range(m)) - set(used))


def _story(got, X, Y, sizes: list[int], size: int) -> list[str]:
    """What a wrong set of batches did, read from the recovered column order and the batch boundaries.

    Returns the names of the mistakes that story is (several where the case cannot tell them apart).
    """
    recovered = _recover(got, X, Y)
    if recovered is None:
        return []
    x_batches, y_batches = recovered
    got_sizes = [len(b) for b in x_batches]
    m = X.shape[1]
    if got_sizes == sizes[:-1] and len(sizes) > 1 and sizes[-1] < size:
        return ["last-batch-dropped"]
    # each full slice restarts at column 0, whatever its end (the last, partial batch may be right)
    leading = x_batches[:-1] if m % size and len(x_batches) > 2 else x_batches
    longest = max(leading, key=len) if leading else []
    if (got_sizes != sizes and len(leading) >= 2 and all(leading)
            and all(batch == longest[:len(batch)] for batch in leading)):
        return ["every-batch-from-start"]
    if _last_batch_astray(x_batches, sizes, m, size):
        return ["last-batch-misaligned"]
    if got_sizes != sizes:
        return []
    order = [j for batch in x_batches for j in batch]
    full = [b for b in x_batches if len(b) == size]
    rest = m % size
    names = []
    if len(full) >= 2 and all(b == full[0] for b in full):
        names.append("every-batch-from-start")
    if rest and full and x_batches[-1] == order[:rest] and len(set(order[:m - rest])) == m - rest:
        names.append("last-batch-misaligned")
    if len(full) == 1 and rest and x_batches[-1] == full[0][:rest]:
        names += [name for name in ("every-batch-from-start", "last-batch-misaligned") if name not in names]
    if names:
        return names
    order_y = [j for batch in y_batches for j in batch]
    if len(set(order)) < m:
        return ["with-replacement"] if order == order_y else []
    if order == order_y:
        return ["no-shuffle"] if m >= MIN_M_FOR_SHUFFLE and order == sorted(order) else []
    if order == sorted(order):
        return ["unshuffled-x"]
    return ["xy-different-permutations"] if len(set(order_y)) == m else []


def _valid_signature(signature, sizes) -> bool:
    sizes_x, sizes_y, perm_x, perm_y, paired, shuffled_x, shuffled_y = signature
    return (sizes_x == sizes_y == tuple(sizes) and perm_x and perm_y and paired
            and shuffled_x is not False and shuffled_y is not False)


def _diagnose_batches(case, got, dtype, conventions) -> Diagnosis | None:
    X, Y = case.inputs["X"], case.inputs["Y"]
    legacy = conventions["mini_batches.rng"] == "numpy_legacy"
    reference = variant_output(case)
    sizes = [x.shape[1] for x, _ in reference["batches"]]
    signature = _signature(got, X, Y)
    flat = Flat(got, reference)
    if legacy:
        if not failing_leaves(case, flat, dtype, expected=reference):
            return None
    elif signature is not None and _valid_signature(signature, sizes):
        # A valid shuffle; wrong only if it is exactly seed 0's order for another seed (the seed ignored).
        if X.shape[1] < MIN_M_FOR_SHUFFLE or case.full_inputs["seed"] == 0:
            return None
        ignored = [m for m in mistakes_for(case.op, conventions, dtype) if m.name == "seed-ignored"]
        if ignored and not failing_leaves(case, flat, dtype, expected=variant_output(case, ignored[0])):
            return Diagnosis("match", ignored, match_text(ignored))
        return None
    candidates = mistakes_for(case.op, conventions, dtype)
    exact = [m for m in candidates if not failing_leaves(case, flat, dtype, expected=variant_output(case, m))]
    if exact:
        return Diagnosis("match", exact, match_text(exact))
    if signature is None:
        return None
    if _valid_signature(signature, sizes):  # legacy: a valid shuffle, in another order
        other = [m for m in candidates if m.name == "other-generator"]
        return Diagnosis("match", other, match_text(other)) if other else None
    told = _story(got, X, Y, sizes, case.full_inputs["mini_batch_size"])
    structural = [m for name in told for m in candidates if m.name == name]
    if structural:
        return Diagnosis("match", structural, match_text(structural))
    return None

