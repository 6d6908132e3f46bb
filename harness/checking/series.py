"""What a failing trajectory's plot shows (:func:`series`): the element that strays furthest, step by step."""

from __future__ import annotations

import numpy as np

from .compare import elementwise_errors, leaf_errors


def series(case, outcome, dtype: str) -> dict | None:
    """For a failing trajectory, what its plot shows: the element whose error against the reference is largest
    (for its tolerance) over the student's free run, that element's values and error at every step, the error
    allowed there, and the first step where the run leaves the reference (any element, by the comparison's
    own rule, the case's scale included). Steps of the reference's structure are taken a whole step at a time."""
    if not case.op.endswith(".trajectory") or outcome.status != "fail":
        return None
    got_steps = (outcome.got or {}).get("steps") or []
    scales = case.tolerance.get("scale", {}).get("steps") or [None] * len(got_steps)
    steps = []
    for step, (expected, got) in enumerate(zip(case.expected["steps"], got_steps)):
        found = leaf_errors(case, got, dtype, expected, scales[step])
        if found is None or 0 in (int(np.prod(shape)) for shape in found[0].shapes):  # (an empty array: no plot)
            return _series_by_leaf(case, got_steps, dtype)
        steps.append(found)
    worst, first_wrong = None, None
    for step, (flat, apart, error) in enumerate(steps):
        with np.errstate(all="ignore"):
            excess = np.where(apart, np.inf, error / np.where(flat.allowed > 0, flat.allowed, np.inf))
        if first_wrong is None and (apart | (error > flat.allowed)).any():
            first_wrong = step + 1
        at = int(np.argmax(excess))
        if worst is None or excess[at] > worst[0]:
            leaf = int(np.searchsorted(flat.bounds, at, side="right")) - 1
            worst = (float(excess[at]), flat.paths[leaf], flat.shapes[leaf], at - int(flat.bounds[leaf]))
    if worst is None or first_wrong is None:
        return None
    _, path, shape, offset = worst
    tree, key = path.split(".", 1)
    index = tuple(int(i) for i in np.unravel_index(offset, shape))
    where = [int(flat.bounds[flat.paths.index(path)]) + offset for flat, _, _ in steps]
    return {"where": f"{path}[{','.join(map(str, index))}]",
            "expected": [float(step[tree][key][index]) for step in case.expected["steps"]],
            "got": [float(np.asarray(step[tree][key])[index]) for step in got_steps[:len(steps)]],
            "error": [float(error[at]) for (_, _, error), at in zip(steps, where)],
            "allowed": [float(flat.allowed[at]) for (flat, _, _), at in zip(steps, where)],
            "first_wrong": first_wrong}


def _series_by_leaf(case, got_steps: list, dtype: str) -> dict | None:
    """:func:`series` leaf by leaf, for steps of another structure than the reference's."""
    tolerance = case.tolerance[dtype]
    scales = case.tolerance.get("scale", {}).get("steps") or [None] * len(got_steps)
    worst, first_wrong, errors = None, None, {}
    try:
        for step, (expected, got) in enumerate(zip(case.expected["steps"], got_steps)):
            for tree, arrays in expected.items():
                for key, reference in arrays.items():
                    scale = None if scales[step] is None else scales[step][tree][key]
                    values = np.asarray(got[tree][key], dtype=np.float64)
                    if values.shape != np.shape(reference):
                        return None
                    apart, error, allowed = elementwise_errors(np.asarray(reference, dtype=np.float64), values,
                                                               tolerance["rtol"], tolerance["atol"], scale)
                    errors[(step, tree, key)] = (error, allowed)
                    with np.errstate(all="ignore"):
                        excess = np.where(apart, np.inf, error / np.where(allowed > 0, allowed, np.inf))
                    if first_wrong is None and (apart | (error > allowed)).any():
                        first_wrong = step + 1
                    flat = int(np.argmax(excess))
                    if worst is None or excess.flat[flat] > worst[0]:
                        worst = (float(excess.flat[flat]), tree, key, np.unravel_index(flat, excess.shape))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if worst is None or first_wrong is None:
        return None
    _, tree, key, index = worst
    index = tuple(int(i) for i in index)
    count = min(len(case.expected["steps"]), len(got_steps))
    return {"where": f"{tree}.{key}[{','.join(map(str, index))}]",
            "expected": [float(step[tree][key][index]) for step in case.expected["steps"]],
            "got": [float(np.asarray(step[tree][key])[index]) for step in got_steps[:count]],
            "error": [float(errors[(k, tree, key)][0][index]) for k in range(count)],
            "allowed": [float(errors[(k, tree, key)][1][index]) for k in range(count)],
            "first_wrong": first_wrong}
