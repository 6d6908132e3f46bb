"""Mistakes of ``random_mini_batches``: a batch lost, cut wrong, unshuffled, shuffled apart."""

from __future__ import annotations

import numpy as np

from optconform.reference import ops

from .model import ErrorMistake, Mistake


def _cut(X, Y, size):
    m = X.shape[1]
    return [(X[:, k : k + size].copy(), Y[:, k : k + size].copy()) for k in range(0, m, size)]


def mb_last_dropped(X, Y, mini_batch_size=64, seed=0):
    batches = ops.mini_batches(X, Y, mini_batch_size, seed)
    return batches[:-1] if X.shape[1] % mini_batch_size else batches


def mb_last_misaligned(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    batches = ops.mini_batches(X, Y, mini_batch_size, seed)
    rest = m % mini_batch_size
    if rest:
        perm = ops.permutation(m, seed)
        batches[-1] = (X[:, perm][:, :rest].copy(), Y[:, perm][:, :rest].copy())
    return batches


def mb_different_permutations(X, Y, mini_batch_size=64, seed=0):
    generator = np.random.RandomState(seed)
    first, second = generator.permutation(X.shape[1]), generator.permutation(X.shape[1])
    return list(zip([x for x, _ in _cut(X[:, first], Y, mini_batch_size)],
                    [y for _, y in _cut(X, Y[:, second], mini_batch_size)]))


def mb_unshuffled_x(X, Y, mini_batch_size=64, seed=0):
    perm = ops.permutation(X.shape[1], seed)
    return list(zip([x for x, _ in _cut(X, Y, mini_batch_size)],
                    [y for _, y in _cut(X, Y[:, perm], mini_batch_size)]))


def mb_every_batch_from_start(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    perm = ops.permutation(m, seed)
    Xs, Ys = X[:, perm], Y[:, perm]
    return [(Xs[:, : min(mini_batch_size, m - k)].copy(), Ys[:, : min(mini_batch_size, m - k)].copy())
            for k in range(0, m, mini_batch_size)]


def mb_with_replacement(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    columns = np.random.RandomState(seed).choice(m, m, replace=True)
    return _cut(X[:, columns], Y[:, columns], mini_batch_size)


def mb_default_size_32(X, Y, mini_batch_size=32, seed=0):
    return ops.mini_batches(X, Y, mini_batch_size, seed)


def mb_no_shuffle(X, Y, mini_batch_size=64, seed=0):
    return _cut(X, Y, mini_batch_size)


def mb_seed_ignored(X, Y, mini_batch_size=64, seed=0):
    return ops.mini_batches(X, Y, mini_batch_size, 0)


def mb_other_generator(X, Y, mini_batch_size=64, seed=0):
    perm = np.random.default_rng(seed).permutation(X.shape[1])
    return _cut(X[:, perm], Y[:, perm], mini_batch_size)



def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append
    # mini_batches ------------------------------------------------------------------------------
    op = "mini_batches"
    add(Mistake("last-batch-dropped", op, "last mini-batch dropped",
                "when m is not a multiple of the batch size, the final smaller batch is missing.",
                "after the full batches, append one more with the remaining m % size columns.", mb_last_dropped))
    add(Mistake("last-batch-misaligned", op, "last mini-batch cut at the wrong offset",
                "the final smaller batch is not the last m % size shuffled columns: it starts at the wrong "
                "column (often 0, or a fixed offset) or ends early.",
                "slice the last batch as shuffled_X with columns num_complete * size up to m.", mb_last_misaligned))
    add(Mistake("xy-different-permutations", op, "X and Y shuffled with different permutations",
                "X and Y were each shuffled with their own permutation, so the labels no longer belong to "
                "their examples.",
                "draw one permutation and index both: X of columns permutation, Y of columns permutation.",
                mb_different_permutations))
    add(Mistake("unshuffled-x", op, "batches sliced from the unshuffled X",
                "Y is shuffled but the X batches are cut from the original X, so the pairs are broken.",
                "cut the X batches from shuffled_X, not from X.", mb_unshuffled_x))
    add(Mistake("no-shuffle", op, "no shuffle",
                "the batches are cut from X and Y in their original order.",
                "shuffle first: permutation = np.random.permutation(m), then index X and Y with it.", mb_no_shuffle))
    add(Mistake("every-batch-from-start", op, "every mini-batch cut from the start",
                "each batch repeats the first columns of the shuffled data: the slice does not move with k.",
                "slice batch k as columns k * size up to (k + 1) * size.", mb_every_batch_from_start))
    add(Mistake("with-replacement", op, "columns drawn with replacement",
                "some examples appear twice and others never: the columns were drawn with replacement "
                "(np.random.choice without replace=False, or randint), not permuted.",
                "shuffle with permutation = np.random.permutation(m).", mb_with_replacement))
    add(Mistake("default-size-32", op, "default mini_batch_size of 32",
                "called without a batch size, your function cuts batches of 32; the course's default is 64.",
                "declare mini_batch_size=64 in the signature.", mb_default_size_32))
    add(Mistake("seed-ignored", op, "seed ignored",
                "the batches come out in the order of seed 0 whatever seed is given.",
                "call np.random.seed(seed) with the seed argument, not a fixed number.", mb_seed_ignored))
    add(Mistake("other-generator", op, "shuffled by another random generator",
                "the batches are a valid shuffle, but not the order np.random.seed(seed) then "
                "np.random.permutation(m) gives (unseeded, or another generator such as default_rng).",
                "call np.random.seed(seed) and then np.random.permutation(m), or declare "
                "mini_batches.rng=structural if your generator is meant to differ.", mb_other_generator,
                when=(("mini_batches.rng", "numpy_legacy"),)))

    return mistakes


#: This family's mistakes, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())


ERROR_MISTAKES: tuple[ErrorMistake, ...] = (
    ErrorMistake(
        "last-batch-from-loop-variable", "mini_batches", "last mini-batch sliced with the loop variable",
        "the last batch starts at (k + 1) * size with k left over from the loop; when m is smaller than the batch "
        "size the loop never runs and k does not exist.",
        "start the last batch at num_complete_minibatches * mini_batch_size, which exists whatever m is.",
        r"UnboundLocalError|local variable '?k'? |cannot access local variable|name 'k' is not defined",
        lambda inputs: inputs["X"].shape[1] < inputs["mini_batch_size"]),
)

