"""Comparing a target's output with a mistake's, leaf by leaf, within the case's (widened) tolerance."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from optconform.harness.checking.compare import elementwise_difference, elementwise_errors
from optconform.reference.mistakes import Mistake

#: A matching mistake's own magnitude widens the case's error scale by this much,
#: so that an implementation of the mistake evaluated in another order still matches.
WIDEN = 8.0


@dataclass
class Diagnosis:
    """A diagnosis: its kind (``match``, ``partial``, ``nearest``), the mistakes named, its one line."""

    kind: str
    mistakes: list[Mistake] = field(default_factory=list)
    text: str = ""
    keys: list[str] = field(default_factory=list)


def match_text(matched: list[Mistake]) -> str:
    first = matched[0]
    text = f"matches {first.title} [{first.name}]"
    if len(matched) > 1:
        text += " (also consistent with " + ", ".join(f"{m.title} [{m.name}]" for m in matched[1:]) + ")"
    return f"{text}: {first.explanation} Fix: {first.fix}"


# ---------------------------------------------------------------- comparing


def _widen(scale, expected):
    """The case's error scale, raised to ``WIDEN * |expected|`` where the mistake's values are larger."""
    if isinstance(expected, dict):
        return {k: _widen(scale.get(k) if isinstance(scale, dict) else None, v) for k, v in expected.items()}
    if isinstance(expected, (list, tuple)):
        return [_widen(scale[i] if isinstance(scale, list) and i < len(scale) else None, e)
                for i, e in enumerate(expected)]
    values = np.asarray(expected, dtype=np.float64)
    with np.errstate(all="ignore"):
        own = np.where(np.isfinite(values), WIDEN * np.abs(values), 0.0)
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        if scale.shape == own.shape:
            return np.maximum(np.where(np.isfinite(scale), scale, 0.0), own)
    return own


def failing_against(case, got, dtype: str, expected) -> set[str]:
    """Where ``got`` differs from a mistake's output, within the case's tolerance widened by the mistake's values."""
    scale = case.tolerance.get("scale")
    if scale is None:
        return failing_leaves(case, got, dtype, expected=expected)
    want = flatten(expected)
    base = flatten(scale)
    if base.keys != want.keys or base.shapes != want.shapes:
        return failing_leaves(case, got, dtype, expected=expected, scale=_widen(scale, expected))
    widened = copy.copy(base)
    with np.errstate(all="ignore"):
        own = np.where(np.isfinite(want.values), WIDEN * np.abs(want.values), 0.0)
        widened.values = np.maximum(np.where(np.isfinite(base.values), base.values, 0.0), own)
    return failing_leaves(case, got, dtype, expected=want, scale=widened)


#: Outputs are compared all at once up to this many numbers (outputs x elements); past it, one at a time (a
#: layer of millions of numbers would otherwise need gigabytes).
STACK_NUMBERS = 1 << 22
#: The most bytes of stacked outputs (and their allowed errors) a process keeps with its cases.
STACKED_BYTES = 128 << 20
_stacked_bytes = 0


def failing_against_many(case, got, dtype: str, outputs: list) -> list[set[str]]:
    """:func:`failing_against` for each of ``outputs`` (the mistakes' outputs on ``case``), decided for all of
    them in one comparison where they share the golden outputs' structure (the mistakes' outputs always do);
    any other is compared on its own."""
    have = got if isinstance(got, Flat) else Flat(got, case.expected)
    want = flatten(case.expected)
    found: list = [None] * len(outputs)
    if have.keys == want.keys and have.shapes == want.shapes and None not in want.shapes:
        stacked = _stacked(case, dtype, outputs, want)
        if stacked is not None:
            rows, values, allowed = stacked
            with np.errstate(all="ignore"):  # each element's allowed error was kept with the stacked outputs
                finiteness, _, error = elementwise_difference(values, have.values[None, :])
            bad = finiteness | (error > allowed)
            counts = np.add.reduceat(np.concatenate([bad, np.zeros((len(rows), 1), bool)], axis=1),
                                     want.offsets[:-1], axis=1)  # the last column: an empty leaf at the end
            sized = np.diff(want.offsets) > 0  # reduceat gives an empty leaf its next element: not counted
            for row, index in enumerate(rows):
                found[index] = {key for key, count, size in zip(want.keys, counts[row], sized) if size and count}
    return [known if known is not None else failing_against(case, have, dtype, out)
            for known, out in zip(found, outputs)]


def _stacked(case, dtype: str, outputs: list, want: Flat):
    """:func:`_stack` of ``outputs``, kept with the case while the process's :data:`STACKED_BYTES` last (the
    entry holds the outputs, so no other object can take their ids)."""
    global _stacked_bytes
    cache = case.__dict__.setdefault("_stacked_outputs", {})
    key = (dtype, tuple(id(out) for out in outputs))
    if key in cache:
        return cache[key][1]
    stacked = _stack(case, dtype, outputs, want)
    size = 0 if stacked is None else stacked[1].nbytes + stacked[2].nbytes
    if _stacked_bytes + size <= STACKED_BYTES:
        _stacked_bytes += size
        cache[key] = (list(outputs), stacked)
    return stacked


def _stack(case, dtype: str, outputs: list, want: Flat):
    """``(which outputs, their values as rows, the error each element of each may have)``, for the outputs whose
    leaves are the golden outputs' (None where there are none, too many numbers, or a scale of other leaves)."""
    scale = case.tolerance.get("scale")
    base = flatten(scale) if scale is not None else None
    if base is not None and (base.keys != want.keys or base.shapes != want.shapes):
        return None
    rows = [index for index, out in enumerate(outputs)
            if flatten(out).keys == want.keys and flatten(out).shapes == want.shapes]
    if not rows or len(rows) * want.values.size > STACK_NUMBERS:
        return None
    values = np.vstack([flatten(outputs[index]).values for index in rows])
    tolerance = case.tolerance[dtype]
    with np.errstate(all="ignore"):
        if base is None:  # no case scale: each mistake's own values are the scale (as failing_leaves takes them)
            scale_rows = np.abs(values)
        else:  # as failing_against widens the case's scale by the mistake's own values
            own = np.where(np.isfinite(values), WIDEN * np.abs(values), 0.0)
            scale_rows = np.maximum(np.where(np.isfinite(base.values), base.values, 0.0)[None, :], own)
        allowed = tolerance["rtol"] * np.where(np.isfinite(scale_rows), scale_rows, 0.0) + tolerance["atol"]
    return rows, values, allowed


_ANY = object()


def _leaves(tree, where: str = "", like=_ANY) -> dict:
    """``{path: array}`` with the paths ``compare`` uses (``parameters.W1``, ``steps[0].v.dW1``, ``batches[1][0]``).

    With ``like`` (the expected structure), ``tree`` is taken apart only as far as
    ``like`` goes: where ``like`` holds an array, ``tree``'s value is one leaf.
    """
    if like is not _ANY and not isinstance(like, (dict, list, tuple)):
        return {where: tree}
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            sub = like.get(key, _ANY) if isinstance(like, dict) else _ANY
            out.update(_leaves(value, f"{where}.{key}" if where else str(key), sub))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for index, value in enumerate(tree):
            sub = like[index] if isinstance(like, (list, tuple)) and index < len(like) else _ANY
            out.update(_leaves(value, f"{where}[{index}]", sub))
        return out
    return {where: tree}


class Flat:
    """A tree's leaves as one float64 vector: keys in order, shapes, and segment offsets."""

    __slots__ = ("keys", "shapes", "values", "offsets", "readable")

    def __init__(self, tree, like=_ANY):
        leaves = _leaves(tree, "", like)
        self.keys = list(leaves)
        self.shapes, arrays, self.readable = [], [], set()
        for key in self.keys:
            try:
                array = np.asarray(leaves[key], dtype=np.float64)
            except (TypeError, ValueError):
                self.shapes.append(None)
                continue
            self.readable.add(key)
            self.shapes.append(array.shape)
            arrays.append(array.ravel())
        self.values = np.concatenate(arrays) if arrays else np.zeros(0)
        sizes, position = [0], 0
        arrays = iter(arrays)
        for shape in self.shapes:
            position += next(arrays).size if shape is not None else 0
            sizes.append(position)
        self.offsets = np.asarray(sizes, dtype=np.int64)

    def segment(self, index: int) -> np.ndarray:
        return self.values[self.offsets[index]:self.offsets[index + 1]]


_FLAT_CACHE: dict[int, tuple] = {}


def flatten(tree) -> Flat:
    """``tree`` flattened; the golden outputs and scales of recent cases are flattened once."""
    if isinstance(tree, Flat):
        return tree
    cached = _FLAT_CACHE.get(id(tree))
    if cached is not None and cached[0] is tree:
        return cached[1]
    flat = Flat(tree)
    if len(_FLAT_CACHE) >= 16384:  # the mistakes' outputs of every case, kept as variant_outputs keeps them
        _FLAT_CACHE.clear()
    _FLAT_CACHE[id(tree)] = (tree, flat)  # holding the tree keeps its id from being reused
    return flat


def _bad(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float, scale: np.ndarray | None) -> np.ndarray:
    """Elementwise: outside tolerance, or a different finiteness pattern (as ``compare_arrays`` decides)."""
    finiteness, error, allowed = elementwise_errors(expected, got, rtol, atol, scale)
    return finiteness | (error > allowed)


def failing_leaves(case, got, dtype: str, expected=None, scale=None) -> set[str]:
    """The leaf paths where ``got`` is outside the case's tolerance of ``expected`` (default: the golden outputs).

    Decides each array as ``compare.compare_arrays`` does, vectorized over all
    arrays at once; missing, unexpected and misshapen entries fail too. ``scale``
    defaults to the case's error scale.
    """
    tolerance = case.tolerance[dtype]
    rtol, atol = tolerance["rtol"], tolerance["atol"]
    expected = case.expected if expected is None else expected
    want = flatten(expected)
    have = got if isinstance(got, Flat) else Flat(got, _ANY if isinstance(expected, Flat) else expected)
    scale = case.tolerance.get("scale") if scale is None else scale
    scales = flatten(scale) if scale is not None else None
    failing = set(have.keys) - set(want.keys)
    aligned_scale = scales is None or (scales.keys == want.keys and scales.shapes == want.shapes)
    if have.keys == want.keys and have.shapes == want.shapes and None not in want.shapes and aligned_scale:
        bad = _bad(want.values, have.values, rtol, atol, scales.values if scales is not None else None)
        if not bad.any():
            return failing
        counts = np.add.reduceat(np.concatenate([bad, [False]]).astype(np.int64), want.offsets[:-1])
        sizes = np.diff(want.offsets)
        failing.update(key for key, count, size in zip(want.keys, counts, sizes) if size and count)
        return failing
    positions = {key: index for index, key in enumerate(have.keys)}
    scale_positions = {key: index for index, key in enumerate(scales.keys)} if scales is not None else {}
    for index, key in enumerate(want.keys):
        other = positions.get(key)
        if other is None or have.shapes[other] is None or have.shapes[other] != want.shapes[index]:
            failing.add(key)
            continue
        e, g = want.segment(index), have.segment(other)
        s = None
        if key in scale_positions and scales.shapes[scale_positions[key]] == want.shapes[index]:
            s = scales.segment(scale_positions[key])
        if e.size and _bad(e, g, rtol, atol, s).any():
            failing.add(key)
    return failing


def relative_distance(got, expected) -> float:
    """``||got - expected|| / ||expected||`` over every array; inf where the structure or finiteness differs.

    Both flattened (a variant's output once, from the cache): the same keys and shapes are one vectorized sum."""
    have = got if isinstance(got, Flat) else None
    want = flatten(expected)
    if have is not None and have.keys == want.keys and have.shapes == want.shapes and None not in want.shapes:
        return _vector_distance(have.values, want.values)
    return _tree_distance(got, expected)


def _vector_distance(g: np.ndarray, e: np.ndarray) -> float:
    same = (np.isnan(e) & np.isnan(g)) | (np.isinf(e) & (e == g))
    finite = np.isfinite(e) & np.isfinite(g)
    if not np.all(same | finite):
        return float("inf")
    with np.errstate(all="ignore"):
        numerator = float(np.sum(np.square(np.where(finite, g - e, 0.0))))
        denominator = float(np.sum(np.square(np.where(finite, e, 0.0))))
    if numerator == 0.0:
        return 0.0
    return float(np.sqrt(numerator / denominator)) if denominator > 0 else float("inf")


def _tree_distance(got, expected) -> float:
    """:func:`relative_distance` array by array, where the structures are not the same."""
    if isinstance(got, Flat):
        got = dict(zip(got.keys, (got.segment(i).reshape(shape) if shape is not None else None
                                  for i, shape in enumerate(got.shapes))))
    want, have = _leaves(expected), _leaves(got)
    numerator = denominator = 0.0
    for key, e in want.items():
        if key not in have:
            return float("inf")
        try:
            e = np.asarray(e, dtype=np.float64)
            g = np.asarray(have[key], dtype=np.float64)
        except (TypeError, ValueError):
            return float("inf")
        if e.shape != g.shape:
            return float("inf")
        same = (np.isnan(e) & np.isnan(g)) | (np.isinf(e) & (e == g))
        finite = np.isfinite(e) & np.isfinite(g)
        if not np.all(same | finite):
            return float("inf")
        with np.errstate(all="ignore"):
            numerator += float(np.sum(np.square(np.where(finite, g - e, 0.0))))
            denominator += float(np.sum(np.square(np.where(finite, e, 0.0))))
    if numerator == 0.0:
        return 0.0
    return float(np.sqrt(numerator / denominator)) if denominator > 0 else float("inf")

