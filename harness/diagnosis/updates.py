"""Naming the mistake of a failing update, trajectory or schedule: one mistake whole, two at once, or one that
explains every key that fails while the other keys are right."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from optconform.harness.checking.compare import compare_case_outputs
from optconform.reference import ops
from optconform.reference.mistakes import combined, mistakes_for

from .matching import (
    Diagnosis,
    Flat,
    failing_against,
    failing_against_many,
    failing_leaves,
    flatten,
    match_text,
    relative_distance,
)
from .variants import variant_outputs

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



def _layer_count(case) -> int:
    parameters = case.inputs.get("parameters") if isinstance(case.inputs, dict) else None
    return ops.layer_count(parameters) if isinstance(parameters, dict) else 0



def diagnose_update(case, got, dtype: str, conventions: dict, pairs_seen=(), search_pairs: bool = True,
                    only: list[str] | None = None) -> Diagnosis | None:
    """The diagnosis of an update's (a trajectory's, a schedule's) output ``got`` on ``case``, or None.
    ``search_pairs``: False tries only the pairs in ``pairs_seen`` (a run that found none on earlier cases).
    ``only``: the names the run's earlier cases of this function all matched; where each of them matches this
    case too, that is its diagnosis (no other mistake can be in the run's common set), else the full search."""
    try:
        reference = compare_case_outputs(case, got, dtype)
    except Exception:  # a target's output too malformed to compare is not ours to diagnose
        return None
    if reference.ok:
        return None
    candidates = [m for m in mistakes_for(case.op, conventions, dtype) if not m.float64_declared]
    flat = Flat(got, case.expected)
    if only:
        kept = [m for m in candidates if m.name in only]
        if len(kept) == len(only) and all(_matched_whole(case, flat, dtype, {m.name: variant_outputs(case, m)
                                                                              for m in kept}).values()):
            return Diagnosis("match", kept, match_text(kept))
    outputs = {m.name: variant_outputs(case, m) for m in candidates}
    against = _failing_by_name(case, flat, dtype, outputs)

    whole = [m for m in candidates if any(not failing for failing in against[m.name])]
    if whole:
        return Diagnosis("match", whole, match_text(whole))

    float32 = [m for m in mistakes_for(case.op, conventions, dtype) if m.float64_declared]
    if float32 and _float32_arithmetic(case, got):
        return Diagnosis("match", float32, match_text(float32))

    failing = failing_leaves(case, flat, dtype)
    if not failing:  # a structural problem the leaves do not show
        return None
    pair = _pair(case, got, flat, dtype, candidates, outputs, pairs_seen, search_pairs)
    if pair:
        return pair
    return _partial(case, flat, dtype, candidates, outputs, failing, against)


def _failing_by_name(case, flat, dtype: str, outputs: dict) -> dict[str, list[set]]:
    """``{mistake: [where the target's output differs from each of its outputs]}``, compared all at once."""
    every = [out for outs in outputs.values() for out in outs]
    found = iter(failing_against_many(case, flat, dtype, every))
    return {name: [next(found) for _ in outs] for name, outs in outputs.items()}


def _matched_whole(case, flat, dtype: str, outputs: dict) -> dict[str, bool]:
    return {name: any(not failing for failing in found)
            for name, found in _failing_by_name(case, flat, dtype, outputs).items()}



#: Share of a result's non-zero values that must be float32 numbers for "computed in float32" to be named.
FLOAT32_SHARE = 0.9


def _float32_arithmetic(case, got) -> bool:
    """Float32 arithmetic shows twice: the values are float32 numbers, and they are within float32 rounding
    of the reference. Any small error whose values are not float32 numbers is some other mistake."""
    if "float32" not in case.tolerance or not compare_case_outputs(case, got, "float32").ok:
        return False
    values = Flat(got, case.expected).values
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        return False
    with np.errstate(all="ignore"):
        representable = values.astype(np.float32).astype(np.float64) == values
    return representable.mean() >= FLOAT32_SHARE


#: How many of the nearest single mistakes are each tried together with every other one.
PAIR_LEADS = 2


def _pair(case, got, flat, dtype, candidates, outputs, pairs_seen=(), search: bool = True) -> Diagnosis | None:
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
    tries = [pair for pair in seen if None not in pair]
    if search:
        ranked = sorted(composable, key=lambda m: min(relative_distance(flat, out) for out in outputs[m.name]))
        tries += [(lead, other) for lead in ranked[:PAIR_LEADS] for other in ranked if other is not lead]
    for first, second in tries:
        both = combined(first, second)
        if both and any(not failing_against(case, flat, dtype, out) for out in variant_outputs(case, both)):
            return Diagnosis("match", [both], match_text([both]))
    return None


def _partial(case, got, dtype, candidates, outputs, failing: set, against: dict) -> Diagnosis | None:
    """A mistake that explains every key that fails, the other keys being right (``against``: where the output
    differs from each of each mistake's outputs)."""
    best, best_extra = [], None
    for mistake in candidates:
        for out, differs_from_it in zip(outputs[mistake.name], against[mistake.name]):
            if failing & differs_from_it:
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
    named = _describe_keys(keys, flatten(case.expected).keys)
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


