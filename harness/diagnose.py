"""Diagnosis: when a case fails, name the known mistake the output matches.

``diagnose(case, got, dtype)`` evaluates every known mistake of the case's op
(:mod:`optconform.reference.mistakes`) on the case's own inputs, under the case's
conventions, and compares the target's output with each, within the case's
tolerance. It returns one line:

- ``matches <title> [<name>]: <explanation> Fix: <fix>`` when the whole output
  matches one or more mistakes (the others are listed as also consistent);
- the same for two known mistakes at once (``matches A and B [a+b]``), tried
  among the mistakes nearest to the output when no single one matches;
- ``W2 and b2 only: looks like layer 2 was skipped ...`` when the output is right
  except for some keys and those keys match a mistake;
- ``None`` when the output is correct, and when nothing known explains it: no
  guess is made per case; :func:`summarize` says once per op that nothing
  matched, with the first wrong case's worst element.

A mistake matches when the output lies within the case's tolerance of the
mistake's own output, the error scale raised to ``WIDEN`` times the mistake's
values where those are larger (so an implementation of the mistake that rounds
in another order still matches). Computing in float32 although float64 was
declared is matched last, when the output agrees with the reference within the
case's float32 tolerance only and its values are float32 numbers.

An error (an exception the target raised) is diagnosed too where a known
mistake shows that way on that case's inputs (:func:`diagnose_error`).

Mistake names appear in square brackets only where the output matches them
(wholly or in part); :func:`summarize` reads them back to aggregate a run.

Trajectory cases (``momentum.trajectory``, ``adam.trajectory``) run each mistake
step by step, both free-running (its own state carried, t = 1 ... N) and
teacher-forced (the golden state fed in at each step); either may match.

``mini_batches`` outputs are matched exactly under ``mini_batches.rng=numpy_legacy``
and, under ``structural`` (any RNG), by their structure: batch sizes, whether X
and Y are each one permutation of the columns, whether they stay paired, whether
they were shuffled, and where each batch starts in the recovered column order.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from optconform.reference import ops
from optconform.reference.conventions import resolve
from optconform.reference.mistakes import ERROR_MISTAKES, Mistake, combined, get, mistakes_for, step_op

from .adapter import ARGUMENTS
from .compare import compare_case_outputs, elementwise_errors
from .results import mistake_names

#: A matching mistake's own magnitude widens the case's error scale by this much,
#: so that an implementation of the mistake evaluated in another order still matches.
WIDEN = 8.0
#: Below this many examples, an unshuffled order is not evidence of a missing shuffle.
MIN_M_FOR_SHUFFLE = 8

@dataclass
class Diagnosis:
    """A diagnosis: its kind (``match``, ``partial``, ``nearest``), the mistakes named, its one line."""

    kind: str
    mistakes: list[Mistake] = field(default_factory=list)
    text: str = ""
    keys: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- running a variant


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
        parameters, s = fn(**given, epsilon_placement=conventions["adam.epsilon"])
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
    cache = case.__dict__.setdefault("_variant_outputs", {})
    key = None if mistake is None else (mistake.op, mistake.name)
    if key not in cache:
        cache[key] = _compute_variant_outputs(case, mistake)
    return cache[key]


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


def _against(case, got, dtype: str, expected) -> set[str]:
    """Where ``got`` differs from a mistake's output, within the case's tolerance widened by the mistake's values."""
    scale = case.tolerance.get("scale")
    if scale is None:
        return failing_leaves(case, got, dtype, expected=expected)
    want = _flat(expected)
    base = _flat(scale)
    if base.keys != want.keys or base.shapes != want.shapes:
        return failing_leaves(case, got, dtype, expected=expected, scale=_widen(scale, expected))
    widened = copy.copy(base)
    with np.errstate(all="ignore"):
        own = np.where(np.isfinite(want.values), WIDEN * np.abs(want.values), 0.0)
        widened.values = np.maximum(np.where(np.isfinite(base.values), base.values, 0.0), own)
    return failing_leaves(case, got, dtype, expected=want, scale=widened)


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


class _Flat:
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


def _flat(tree) -> _Flat:
    """``tree`` flattened; the golden outputs and scales of recent cases are flattened once."""
    if isinstance(tree, _Flat):
        return tree
    cached = _FLAT_CACHE.get(id(tree))
    if cached is not None and cached[0] is tree:
        return cached[1]
    flat = _Flat(tree)
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
    want = _flat(expected)
    have = got if isinstance(got, _Flat) else _Flat(got, _ANY if isinstance(expected, _Flat) else expected)
    scale = case.tolerance.get("scale") if scale is None else scale
    scales = _flat(scale) if scale is not None else None
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
    """``||got - expected|| / ||expected||`` over every array; inf where the structure or finiteness differs."""
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


# ---------------------------------------------------------------- naming keys


_SLOT = re.compile(r"(?:^|\.)d?([Wb])(\d+)$")


def _slots(keys) -> list[tuple[int, str]] | None:
    """``{"parameters.W2", "v.db2", "steps[3].s.dW2"}`` -> ``[(2, "W"), (2, "b")]``; None if a key is not a slot."""
    found = set()
    for key in keys:
        match = _SLOT.search(key)
        if not match:
            return None
        found.add((int(match.group(2)), match.group(1)))
    return sorted(found, key=lambda slot: (slot[0], slot[1] != "W"))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _container(key: str) -> str:
    """``"steps[3].v.dW2"`` -> ``"v"``."""
    return re.sub(r"^steps\[\d+\]\.", "", key).split(".", 1)[0]


def _describe_keys(keys, expected_keys=()) -> str:
    """``W2 and b2`` when whole slots fail (in every output they appear in), else the keys themselves."""
    slots = _slots(keys)
    containers = {_container(key) for key in expected_keys}
    if slots and {_container(key) for key in keys} >= containers:
        return _join([f"{kind}{layer}" for layer, kind in slots])
    plain = sorted({re.sub(r"^steps\[\d+\]\.", "", key) for key in keys},
                   key=lambda key: (key.split(".")[0], (_slots([key]) or [(0, key)])[0]))
    return _join(plain[:4] + ([f"{len(plain) - 4} more"] if len(plain) > 4 else []))


SKIPPING = {"nothing-updated", "last-layer-skipped", "first-layer-skipped", "biases-skipped"}


def _skip_story(keys, layers: int) -> str | None:
    """What skipping exactly ``keys`` looks like: a layer, some layers, or the biases."""
    slots = _slots(keys)
    if not slots:
        return None
    by_layer = defaultdict(set)
    for layer, kind in slots:
        by_layer[layer].add(kind)
    if all(kinds == {"b"} for kinds in by_layer.values()) and layers and len(by_layer) == layers:
        return "looks like the biases were skipped"
    if all(kinds == {"W", "b"} for kinds in by_layer.values()):
        numbers = [str(layer) for layer in sorted(by_layer)]
        if len(numbers) == 1:
            return f"looks like layer {numbers[0]} was skipped"
        return f"looks like layers {_join(numbers)} were skipped"
    return None


# ---------------------------------------------------------------- diagnosis


def _match_text(matched: list[Mistake]) -> str:
    first = matched[0]
    text = f"matches {first.title} [{first.name}]"
    if len(matched) > 1:
        text += " (also consistent with " + ", ".join(f"{m.title} [{m.name}]" for m in matched[1:]) + ")"
    return f"{text}: {first.explanation} Fix: {first.fix}"


def _layer_count(case) -> int:
    parameters = case.inputs.get("parameters") if isinstance(case.inputs, dict) else None
    return ops.layer_count(parameters) if isinstance(parameters, dict) else 0


def diagnose_case(case, got, dtype: str = "float64", pairs_seen=()) -> Diagnosis | None:
    """The structured diagnosis of ``got`` on ``case`` (see the module's docstring), or None.

    ``pairs_seen`` names pairs of mistakes (``a+b``) already found on the target's other cases: they are
    tried first, so a pair named on one case is named on every case it explains.
    """
    if not case.runs_at(dtype):
        return None
    conventions = resolve(case.conventions)
    if case.op == "mini_batches":
        return _diagnose_batches(case, got, dtype, conventions)
    try:
        reference = compare_case_outputs(case, got, dtype)
    except Exception:  # a target's output too malformed to compare is not ours to diagnose
        return None
    if reference.ok:
        return None
    candidates = [m for m in mistakes_for(case.op, conventions, dtype) if not m.float64_declared]
    outputs = {m.name: variant_outputs(case, m) for m in candidates}
    flat = _Flat(got, case.expected)

    whole = [m for m in candidates if any(not _against(case, flat, dtype, out) for out in outputs[m.name])]
    if whole:
        return Diagnosis("match", whole, _match_text(whole))

    float32 = [m for m in mistakes_for(case.op, conventions, dtype) if m.float64_declared]
    if float32 and _float32_arithmetic(case, got):
        return Diagnosis("match", float32, _match_text(float32))

    failing = failing_leaves(case, flat, dtype)
    if not failing:  # a structural problem the leaves do not show
        return None
    pair = _pair(case, got, flat, dtype, candidates, outputs, pairs_seen)
    if pair:
        return pair
    return _partial(case, flat, dtype, candidates, outputs, failing)


#: Share of a result's non-zero values that must be float32 numbers for "computed in float32" to be named.
FLOAT32_SHARE = 0.9


def _float32_arithmetic(case, got) -> bool:
    """Float32 arithmetic shows twice: the values are float32 numbers, and they are within float32 rounding
    of the reference. Any small error whose values are not float32 numbers is some other mistake."""
    if "float32" not in case.tolerance or not compare_case_outputs(case, got, "float32").ok:
        return False
    values = _Flat(got, case.expected).values
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        return False
    with np.errstate(all="ignore"):
        representable = values.astype(np.float32).astype(np.float64) == values
    return representable.mean() >= FLOAT32_SHARE


#: How many of the nearest single mistakes are each tried together with every other one.
PAIR_LEADS = 2


def _pair(case, got, flat, dtype, candidates, outputs, pairs_seen=()) -> Diagnosis | None:
    """Two known mistakes at once (epsilon inside the root and an uncorrected s, say) that explain everything.

    Pairs already seen on the target's other cases come first. Then the nearest single mistake, usually
    the larger of the two, is tried with every other mistake that can be combined with it (then the next
    nearest), not only with its near neighbours: the smaller mistake may move the output too little to
    rank near on its own.
    """
    composable = [m for m in candidates if getattr(m.fn, "knobs", None)]
    if len(composable) < 2:
        return None
    by_name = {m.name: m for m in composable}
    seen = [tuple(by_name.get(part) for part in name.split("+")) for name in pairs_seen]
    ranked = sorted(composable, key=lambda m: min(relative_distance(got, out) for out in outputs[m.name]))
    tries = [pair for pair in seen if None not in pair] + [
        (lead, other) for lead in ranked[:PAIR_LEADS] for other in ranked if other is not lead]
    for first, second in tries:
        both = combined(first, second)
        if both and any(not _against(case, flat, dtype, out) for out in variant_outputs(case, both)):
            return Diagnosis("match", [both], _match_text([both]))
    return None


def _partial(case, got, dtype, candidates, outputs, failing: set) -> Diagnosis | None:
    """A mistake that explains every key that fails, the other keys being right."""
    best, best_extra = [], None
    for mistake in candidates:
        for out in outputs[mistake.name]:
            if failing & _against(case, got, dtype, out):
                continue
            differs = failing_leaves(case, out, dtype)
            extra = len(differs - failing)
            if best_extra is None or extra < best_extra:
                best, best_extra = [mistake], extra
            elif extra == best_extra and mistake not in best:
                best.append(mistake)
            break
    if not best:
        return None
    keys = sorted(failing)
    named = _describe_keys(keys, _flat(case.expected).keys)
    skipping = [m for m in best if m.name in SKIPPING]
    if skipping:
        mistake = skipping[0]
        story = _skip_story(keys, _layer_count(case)) if " and " in named or named[:1] in "Wb" else None
        come = "they come" if " and " in named else "it comes"
        if story:
            text = (f"{named} only: {story} (as in {mistake.title} [{mistake.name}]); {come} back unchanged "
                    f"while the rest is right. Fix: update every layer's W and b, for l in range(1, L + 1).")
        else:
            text = (f"{named} only: {come} back unchanged (as in {mistake.title} [{mistake.name}]) while the rest "
                    f"is right. Fix: update and return every entry.")
        return Diagnosis("partial", [mistake], text, keys)
    mistake = best[0]
    text = (f"{named} only match {mistake.title} [{mistake.name}] (the rest is right): {mistake.explanation} "
            f"Fix: {mistake.fix}")
    return Diagnosis("partial", [mistake], text, keys)


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
    flat = _Flat(got, reference)
    if legacy:
        if not failing_leaves(case, flat, dtype, expected=reference):
            return None
    elif signature is not None and _valid_signature(signature, sizes):
        # A valid shuffle; wrong only if it is exactly seed 0's order for another seed (the seed ignored).
        if X.shape[1] < MIN_M_FOR_SHUFFLE or case.full_inputs["seed"] == 0:
            return None
        ignored = [m for m in mistakes_for(case.op, conventions, dtype) if m.name == "seed-ignored"]
        if ignored and not failing_leaves(case, flat, dtype, expected=variant_output(case, ignored[0])):
            return Diagnosis("match", ignored, _match_text(ignored))
        return None
    candidates = mistakes_for(case.op, conventions, dtype)
    exact = [m for m in candidates if not failing_leaves(case, flat, dtype, expected=variant_output(case, m))]
    if exact:
        return Diagnosis("match", exact, _match_text(exact))
    if signature is None:
        return None
    if _valid_signature(signature, sizes):  # legacy: a valid shuffle, in another order
        other = [m for m in candidates if m.name == "other-generator"]
        return Diagnosis("match", other, _match_text(other)) if other else None
    told = _story(got, X, Y, sizes, case.full_inputs["mini_batch_size"])
    structural = [m for name in told for m in candidates if m.name == name]
    if structural:
        return Diagnosis("match", structural, _match_text(structural))
    return None


# ---------------------------------------------------------------- the public entry points


def diagnose(case, got, dtype: str = "float64", pairs_seen=()) -> str | None:
    """One line naming the known mistake ``got`` matches on ``case``, or None (always None when correct)."""
    found = diagnose_case(case, got, dtype, pairs_seen)
    return found.text if found else None


def _label(op: str, diagnosis: str | None) -> frozenset:
    """What a failing case is consistent with: mistake titles for a whole match, the head of a partial one."""
    if not diagnosis or diagnosis.startswith("no known mistake"):
        return frozenset()
    if diagnosis.startswith("matches "):
        labels = []
        for name in mistake_names(diagnosis):
            try:
                labels.append(" and ".join(get(op, part).title for part in name.split("+")))
            except KeyError:
                labels.append(name)
        return frozenset(labels)
    return frozenset([re.split(r" \(| \[", diagnosis, maxsplit=1)[0]])


def summarize(results) -> list[str]:
    """Per op, what its failing cases are consistent with.

    ``["adam.update: 14 cases fail, all consistent with: no bias correction", ...]``;
    ops without failures give no line.
    """
    by_op: dict[str, list] = defaultdict(list)
    first_unmatched = {}
    for result in results:
        if getattr(result, "status", None) == "fail":
            label = _label(result.op, getattr(result, "diagnosis", None))
            by_op[result.op].append(label)
            if not label:
                first_unmatched.setdefault(result.op, result)
    lines = []
    for op, labels in by_op.items():
        count = len(labels)
        cases = f"{count} case{'s' if count != 1 else ''} fail{'s' if count == 1 else ''}"
        common = frozenset.intersection(*labels) if labels else frozenset()
        if common:
            lines.append(f"{op}: {cases}, all consistent with: {' or '.join(sorted(common))}")
            continue
        tally = Counter(label for group in labels for label in group)
        undiagnosed = sum(1 for group in labels if not group)
        parts = [f"{n} consistent with: {label}" for label, n in tally.most_common(3)]
        if undiagnosed:
            first = first_unmatched[op]
            parts.append(f"{undiagnosed} not matched to any known mistake (first: {first.id}: "
                         f"{first.message.split('; ')[0][:200]})")
        lines.append(f"{op}: {cases}; " + "; ".join(parts))
    return lines


def diagnose_error(case, message: str) -> str | None:
    """A known mistake that shows as this error on this case (the loop variable used after a loop that never
    ran, say), as a ``matches ...`` line; None otherwise."""
    inputs = case.full_inputs
    for mistake in ERROR_MISTAKES:
        if mistake.op == case.op and re.search(mistake.pattern, message) and mistake.raises_on(inputs):
            return f"matches {mistake.describe()}"
    return None
