"""The generator: catalogue + reference -> golden vector files.

``build_suite(seed)`` returns every file's content in memory; ``write_suite``
writes them (one case a line, so a diff names the case); ``check_suite``
regenerates in memory and names every case whose content differs from a
directory. Output is byte-for-byte deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from optconform import __version__
from optconform.reference import exact, ops, tolerances
from optconform.reference.catalogue import DEFAULT_SEED, Scenario, all_scenarios

from .codec import encode_array, encode_tree

SCHEMA_VERSION = "1"
SCHEMA_ID = "https://optconform.dev/schema/vectors-1.json"

#: The vector files, one per op, in the order the catalogue lists them.
FILE_OF_OP = {
    "mini_batches": "mini_batches.json",
    "momentum.init": "momentum.init.json",
    "adam.init": "adam.init.json",
    "momentum.update": "momentum.update.json",
    "adam.update": "adam.update.json",
    "momentum.trajectory": "momentum.trajectory.json",
    "adam.trajectory": "adam.trajectory.json",
    "gd.update": "gd.update.json",
    "rmsprop.init": "rmsprop.init.json",
    "rmsprop.update": "rmsprop.update.json",
    "lr_decay.inverse_time": "lr_decay.inverse_time.json",
    "lr_decay.scheduled": "lr_decay.scheduled.json",
}


def encode_value(value):
    """Inputs and outputs to JSON: arrays, dicts of arrays, lists of either, scalars."""
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, dict):
        return encode_tree(value) if all(isinstance(v, np.ndarray) for v in value.values()) else {
            k: encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    return float(value)


def exact_tolerance() -> dict:
    return {"float64": {"rtol": 0.0, "atol": 0.0}, "float32": {"rtol": 0.0, "atol": 0.0}}


def scaled_tolerance(scale: dict, float64_only: bool) -> dict:
    dtypes = ("float64",) if float64_only else ("float64", "float32")
    tolerance = {d: {"rtol": tolerances.rtol(d), "atol": tolerances.ATOL[d]} for d in dtypes}
    tolerance["scale"] = scale
    return tolerance


# ---------------------------------------------------------------- one case per op


def _mini_batches(inputs, conventions):
    batches = ops.mini_batches(inputs["X"], inputs["Y"], inputs["mini_batch_size"], inputs["seed"])
    if conventions.get("mini_batches.rng") == "numpy_legacy":
        expected = {"batches": [[x, y] for x, y in batches]}
    else:
        expected = {"batch_sizes": [int(x.shape[1]) for x, _ in batches]}
    return expected, exact_tolerance(), None


def _momentum_init(inputs, conventions):
    return {"v": ops.momentum_init(inputs["parameters"])}, exact_tolerance(), None


def _adam_init(inputs, conventions):
    v, s = ops.adam_init(inputs["parameters"])
    return {"v": v, "s": s}, exact_tolerance(), None


def _named(prefix, tree):
    return {f"{prefix}.{key}": value for key, value in tree.items()}


def _momentum_step(inputs, form, err=None):
    (parameters, v), underflow = exact.momentum_update_with_underflow(
        inputs["parameters"], inputs["grads"], inputs["v"], inputs["beta"], inputs["learning_rate"], form)
    outputs = {"parameters": parameters, "v": v}
    scale_p, scale_v = tolerances.with_underflow(tolerances.momentum_scale(inputs, outputs, form, err), underflow)
    carried = {**_named("parameters", inputs["parameters"]), **_named("grads", inputs["grads"]),
               **_named("v", inputs["v"]), **_named("output v", v), **_named("output parameters", parameters),
               "learning_rate": inputs["learning_rate"], "beta": inputs["beta"]}
    if form == "lr_scaled":
        with np.errstate(all="ignore"):
            carried.update(_named("learning_rate * grads",
                                  {key: inputs["learning_rate"] * g for key, g in inputs["grads"].items()}))
    return outputs, {"parameters": scale_p, "v": scale_v}, carried


def _adam_step(inputs, placement, err=None):
    (parameters, v, s), underflow = exact.adam_update_with_underflow(
        inputs["parameters"], inputs["grads"], inputs["v"], inputs["s"], inputs["t"], inputs["learning_rate"],
        inputs["beta1"], inputs["beta2"], inputs["epsilon"], placement)
    outputs = {"parameters": parameters, "v": v, "s": s}
    scale_p, scale_v, scale_s = tolerances.with_underflow(tolerances.adam_scale(inputs, outputs, placement, err),
                                                          underflow)
    correction1 = 1.0 - math.pow(inputs["beta1"], inputs["t"])
    correction2 = 1.0 - math.pow(inputs["beta2"], inputs["t"])
    with np.errstate(all="ignore"):
        squares = {key: np.square(g) for key, g in inputs["grads"].items()}
        s_hat = {key: value / correction2 for key, value in s.items()}
        v_hat = {key: value / correction1 for key, value in v.items()}
        steps = {key: inputs["learning_rate"] * v_hat[key] for key in v}
    carried = {**_named("parameters", inputs["parameters"]), **_named("grads", inputs["grads"]),
               **_named("grads squared", squares), **_named("v", inputs["v"]), **_named("s", inputs["s"]),
               **_named("s_hat", s_hat), **_named("v_hat", v_hat), **_named("learning_rate * v_hat", steps),
               **_named("output v", v), **_named("output s", s),
               **_named("output parameters", parameters),
               **{k: inputs[k] for k in ("learning_rate", "beta1", "beta2", "epsilon")}}
    return outputs, {"parameters": scale_p, "v": scale_v, "s": scale_s}, carried


def _momentum_update(inputs, conventions):
    outputs, scale, carried = _momentum_step(inputs, conventions["momentum.form"])
    obstacle = tolerances.float32_obstacle(carried)
    return outputs, scaled_tolerance(scale, obstacle is not None), obstacle


def _adam_update(inputs, conventions):
    outputs, scale, carried = _adam_step(inputs, conventions["adam.epsilon"])
    obstacle = tolerances.float32_obstacle(carried)
    return outputs, scaled_tolerance(scale, obstacle is not None), obstacle


def _trajectory(inputs, step, init, hyper_keys, with_t):
    """Run ``step`` from ``init`` over ``inputs["grads"]``; error scales accumulate step to step."""
    parameters, state = inputs["parameters"], init(inputs["parameters"])
    err = None
    steps, scales, obstacle = [], [], None
    for index, grads in enumerate(inputs["grads"]):
        step_inputs = {"parameters": parameters, "grads": grads, **state, **{k: inputs[k] for k in hyper_keys}}
        if with_t:
            step_inputs["t"] = index + 1
        outputs, scale, carried = step(step_inputs, err)
        obstacle = obstacle or tolerances.float32_obstacle(carried)
        steps.append(outputs)
        scales.append(scale)
        err = scale
        parameters = outputs["parameters"]
        state = {k: v for k, v in outputs.items() if k != "parameters"}
    return {"steps": steps}, scaled_tolerance({"steps": scales}, obstacle is not None), obstacle


def _momentum_trajectory(inputs, conventions):
    form = conventions["momentum.form"]
    return _trajectory(inputs, lambda i, err: _momentum_step(i, form, err),
                       lambda p: {"v": ops.momentum_init(p)}, ("beta", "learning_rate"), with_t=False)


def _adam_trajectory(inputs, conventions):
    placement = conventions["adam.epsilon"]
    return _trajectory(inputs, lambda i, err: _adam_step(i, placement, err),
                       lambda p: dict(zip(("v", "s"), ops.adam_init(p))),
                       ("learning_rate", "beta1", "beta2", "epsilon"), with_t=True)


def _gd_update(inputs, conventions):
    parameters, underflow = exact.gd_update_with_underflow(inputs["parameters"], inputs["grads"],
                                                           inputs["learning_rate"])
    (scale,) = tolerances.with_underflow((tolerances.gd_scale(inputs),), (underflow,))
    carried = {**_named("parameters", inputs["parameters"]), **_named("grads", inputs["grads"]),
               **_named("output parameters", parameters), "learning_rate": inputs["learning_rate"]}
    obstacle = tolerances.float32_obstacle(carried)
    return {"parameters": parameters}, scaled_tolerance({"parameters": scale}, obstacle is not None), obstacle


def _rmsprop_init(inputs, conventions):
    return {"s": ops.rmsprop_init(inputs["parameters"])}, exact_tolerance(), None


def _rmsprop_update(inputs, conventions):
    placement = conventions["rmsprop.epsilon"]
    (parameters, s), underflow = exact.rmsprop_update_with_underflow(
        inputs["parameters"], inputs["grads"], inputs["s"], inputs["beta2"], inputs["learning_rate"],
        inputs["epsilon"], placement)
    outputs = {"parameters": parameters, "s": s}
    scale_p, scale_s = tolerances.with_underflow(tolerances.rmsprop_scale(inputs, outputs, placement), underflow)
    with np.errstate(all="ignore"):
        squares = {key: np.square(g) for key, g in inputs["grads"].items()}
    carried = {**_named("parameters", inputs["parameters"]), **_named("grads", inputs["grads"]),
               **_named("grads squared", squares), **_named("s", inputs["s"]), **_named("output s", s),
               **_named("output parameters", parameters),
               **{k: inputs[k] for k in ("learning_rate", "beta2", "epsilon")}}
    obstacle = tolerances.float32_obstacle(carried)
    return outputs, scaled_tolerance({"parameters": scale_p, "s": scale_s}, obstacle is not None), obstacle


def _lr_decay(exact_fn, argument_names):
    def expectation(inputs, conventions):
        value = exact_fn(*(inputs[name] for name in argument_names))
        scale = np.asarray(tolerances.lr_decay_scale(value))
        return {"learning_rate": np.asarray(value)}, scaled_tolerance({"learning_rate": scale}, False), None

    return expectation


EXPECTATION = {
    "mini_batches": _mini_batches,
    "momentum.init": _momentum_init,
    "adam.init": _adam_init,
    "momentum.update": _momentum_update,
    "adam.update": _adam_update,
    "momentum.trajectory": _momentum_trajectory,
    "adam.trajectory": _adam_trajectory,
    "gd.update": _gd_update,
    "rmsprop.init": _rmsprop_init,
    "rmsprop.update": _rmsprop_update,
    "lr_decay.inverse_time": _lr_decay(exact.lr_inverse_time, ("learning_rate0", "epoch_num", "decay_rate")),
    "lr_decay.scheduled": _lr_decay(exact.lr_scheduled,
                                    ("learning_rate0", "epoch_num", "decay_rate", "time_interval")),
}


def case_id(scenario: Scenario, conventions: dict) -> str:
    """``op/convention-value/name``, e.g. ``adam.update/inside_sqrt/t-1000``."""
    return "/".join([scenario.op, *conventions.values(), scenario.name])


def build_case(scenario: Scenario, conventions: dict, suite_seed: int) -> dict:
    inputs = scenario.build(scenario.rng(suite_seed))
    expected, tolerance, float32_obstacle = EXPECTATION[scenario.op](inputs, conventions)
    inputs = {key: value for key, value in inputs.items() if key not in scenario.omitted}
    case = {
        "id": case_id(scenario, conventions),
        "op": scenario.op,
        "description": scenario.description,
        "why": scenario.why,
        "tags": list(scenario.tags) + (["float64-only"] if float32_obstacle else []),
        "conventions": dict(conventions),
        "inputs": encode_value(inputs),
        "expected": encode_value(expected),
        "tolerance": encode_value(tolerance),
    }
    if float32_obstacle:
        case["float64_only"] = f"run at float64 only: {float32_obstacle}"
    return case


def build_suite(seed: int = DEFAULT_SEED) -> dict[str, dict]:
    """Every vector file's content: ``{filename: {"op": ..., "cases": [...]}}``."""
    files = {name: {"op": op, "cases": []} for op, name in FILE_OF_OP.items()}
    for scenario in all_scenarios():
        for conventions in scenario.conventions:
            files[FILE_OF_OP[scenario.op]]["cases"].append(build_case(scenario, conventions, seed))
    return files


def render_file(content: dict, seed: int) -> str:
    """One vector file as text: a header, then one case a line."""
    header = {"$schema": SCHEMA_ID, "schema_version": SCHEMA_VERSION, "suite_version": __version__,
              "seed": seed, "op": content["op"]}
    head = json.dumps(header, separators=(", ", ": "))[:-1]
    cases = ",\n".join(json.dumps(case, separators=(",", ":"), allow_nan=False) for case in content["cases"])
    return f'{head}, "cases": [\n{cases}\n]}}\n'


#: Who may see a set's inputs and expected values in feedback: the shipped set is public; a private one
#: (``generate --seed``) is hidden unless ``--visibility visible`` says otherwise.
VISIBILITIES = ("visible", "hidden")


def default_visibility(seed: int) -> str:
    return "visible" if seed == DEFAULT_SEED else "hidden"


def render_manifest(rendered: dict[str, str], files: dict[str, dict], seed: int, visibility: str) -> str:
    manifest = {
        "suite": "optconform",
        "suite_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "numpy_version": np.__version__,
        "seed": seed,
        "visibility": visibility,
        "golden_values": exact.METHOD,
        "files": {name: {"sha256": hashlib.sha256(text.encode()).hexdigest(),
                         "cases": len(files[name]["cases"])} for name, text in rendered.items()},
    }
    return json.dumps(manifest, indent=2) + "\n"


def render_suite(seed: int = DEFAULT_SEED, visibility: str | None = None) -> dict[str, str]:
    """Every file of a vector directory as text, the manifest included."""
    files = build_suite(seed)
    rendered = {name: render_file(content, seed) for name, content in files.items()}
    rendered["manifest.json"] = render_manifest(rendered, files, seed, visibility or default_visibility(seed))
    return rendered


def write_suite(out: Path, seed: int = DEFAULT_SEED, visibility: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_suite(seed, visibility).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_suite(directory: Path, seed: int = DEFAULT_SEED, visibility: str | None = None) -> list[str]:
    """What differs between ``directory`` and a fresh generation: one line per case or file."""
    problems = []
    for name, text in render_suite(seed, visibility).items():
        path = directory / name
        if name == "manifest.json":
            problems.extend(_manifest_problems(path, text))
            continue
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        try:
            committed = json.loads(path.read_text(encoding="utf-8"))
            committed_cases = {c.get("id"): c for c in committed.get("cases", []) if isinstance(c, dict)}
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
            problems.append(f"{name}: not a readable vector file ({error})")
            continue
        fresh_cases = {c["id"]: c for c in json.loads(text)["cases"]}
        found = len(problems)
        for cid, case in fresh_cases.items():
            if cid not in committed_cases:
                problems.append(f"{cid}: missing from {name}")
            elif committed_cases[cid] != case:
                problems.append(f"{cid}: differs from what the reference generates now")
        problems.extend(f"{cid}: in {name} but no longer generated" for cid in committed_cases if cid not in fresh_cases)
        if len(problems) == found and path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: same cases, but the file's text differs (header or layout)")
    return problems


def _manifest_problems(path: Path, fresh_text: str) -> list[str]:
    """The manifest must match, except for the NumPy version it records (information only)."""
    if not path.is_file():
        return ["manifest.json: missing"]
    try:
        committed = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return [f"manifest.json: not valid JSON ({error})"]
    fresh = json.loads(fresh_text)
    if not isinstance(committed, dict):
        return ["manifest.json: not a JSON object"]
    committed.pop("numpy_version", None)
    fresh.pop("numpy_version", None)
    return [] if committed == fresh else ["manifest.json: differs from the generated files (hashes or counts)"]
