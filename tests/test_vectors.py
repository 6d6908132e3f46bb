"""The shipped golden vectors: schema, manifest, catalogue coverage, and the generator.

What is checked here is the contract of issue 2: every shipped file validates
against the JSON Schema (which forbids unknown fields); ids are unique and
stable; every case explains itself; the catalogue covers the edges section 4
lists; the manifest matches the files; and ``optconform generate`` is
deterministic, ``--check`` catches a hand edit and names the case, ``--seed``
gives the same catalogue with new numbers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import optconform
from optconform.harness.checking.compare import compare_case_outputs
from optconform.reference import ops
from optconform.reference.catalogue import DEFAULT_SEED
from optconform.reference.conventions import CONVENTIONS
from optconform.vectors import VectorError, generate, load_suite, shipped_dir

VECTOR_DIR = shipped_dir()
SCHEMA_PATH = VECTOR_DIR / "schema" / "vectors.schema.json"
VECTOR_FILES = sorted(p for p in VECTOR_DIR.glob("*.json") if p.name != "manifest.json")
COURSE = {"learning_rate": 0.01, "beta": 0.9, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
#: The convention family each op's cases must be labelled with.
FAMILY_OF_OP = {
    "mini_batches": "mini_batches.rng",
    "momentum.update": "momentum.form",
    "momentum.trajectory": "momentum.form",
    "adam.update": "adam.epsilon",
    "adam.trajectory": "adam.epsilon",
    "rmsprop.update": "rmsprop.epsilon",
}


def optconform_cli(*args, cwd=None):
    """``optconform ARGS`` as a subprocess (the module form of the console script)."""
    return subprocess.run([sys.executable, "-m", "optconform.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def schema():
    document = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    return document


@pytest.fixture(scope="module")
def validator(schema):
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def documents():
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in VECTOR_FILES}


@pytest.fixture(scope="module")
def cases():
    return load_suite()


@pytest.fixture(scope="module")
def by_id(cases):
    return {c.id: c for c in cases}


def of_op(cases, op):
    return [c for c in cases if c.op == op]


# ---------------------------------------------------------------- schema


def test_there_is_one_file_per_op(documents):
    assert sorted(documents) == sorted(generate.FILE_OF_OP.values())
    for name, document in documents.items():
        assert generate.FILE_OF_OP[document["op"]] == name
        assert all(case["op"] == document["op"] for case in document["cases"])


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.name for p in VECTOR_FILES])
def test_every_shipped_file_validates(path, validator):
    document = json.loads(path.read_text(encoding="utf-8"))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
    assert document["$schema"] == json.loads(SCHEMA_PATH.read_text())["$id"]


def _first_array(tree):
    """The first array object (dict with dtype/shape/data) inside a JSON value."""
    if isinstance(tree, dict):
        if set(tree) == {"dtype", "shape", "data"}:
            return tree
        for value in tree.values():
            found = _first_array(value)
            if found is not None:
                return found
    if isinstance(tree, list):
        for value in tree:
            found = _first_array(value)
            if found is not None:
                return found
    return None


UNKNOWN_FIELD_SPOTS = {
    "file": lambda d: d,
    "case": lambda d: d["cases"][0],
    "conventions": lambda d: d["cases"][0]["conventions"],
    "inputs": lambda d: d["cases"][0]["inputs"],
    "expected": lambda d: d["cases"][0]["expected"],
    "tolerance": lambda d: d["cases"][0]["tolerance"],
    "tolerance.float64": lambda d: d["cases"][0]["tolerance"]["float64"],
    "array": lambda d: _first_array(d["cases"][0]["inputs"]),
}


@pytest.mark.parametrize("spot", sorted(UNKNOWN_FIELD_SPOTS))
@pytest.mark.parametrize("name", ["adam.update.json", "mini_batches.json", "momentum.trajectory.json"])
def test_schema_forbids_unknown_fields(name, spot, documents, validator):
    document = copy.deepcopy({**documents[name], "cases": documents[name]["cases"][:2]})
    assert validator.is_valid(document)
    UNKNOWN_FIELD_SPOTS[spot](document)["surprise"] = 1
    assert not validator.is_valid(document), f"an unknown field in {spot} of {name} was accepted"


@pytest.mark.parametrize("mutate", [
    lambda d: d["cases"][0].pop("why"),
    lambda d: d["cases"][0].__setitem__("why", ""),
    lambda d: d["cases"][0]["conventions"].__setitem__("adam.epsilon", "both"),
    lambda d: d["cases"][0]["inputs"].__setitem__("t", 0),
    lambda d: _first_array(d["cases"][0]["inputs"]).__setitem__("dtype", "float16"),
    lambda d: _first_array(d["cases"][0]["inputs"])["data"].__setitem__(0, "NaN"),
    lambda d: d["cases"][0]["inputs"]["parameters"].__setitem__("X1", d["cases"][0]["inputs"]["parameters"]["W1"]),
], ids=["missing-why", "empty-why", "bad-convention", "t-zero", "bad-dtype", "bad-non-finite", "bad-key"])
def test_schema_rejects_malformed_cases(mutate, documents, validator):
    document = copy.deepcopy({**documents["adam.update.json"], "cases": documents["adam.update.json"]["cases"][:2]})
    assert validator.is_valid(document)
    mutate(document)
    assert not validator.is_valid(document)


# ---------------------------------------------------------------- ids and labels

ID_PATTERN = re.compile(
    r"^(?P<op>[a-z_.]+)/(?:(?P<convention>[a-z_]+)/)?(?:(?P<rows>multi_row)/)?(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*)$")


def test_ids_are_unique_and_stable_looking(cases):
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    for case in cases:
        match = ID_PATTERN.match(case.id)
        assert match, case.id
        assert match["op"] == case.op, case.id
        # The convention a case is generated under is part of its id, so the two
        # conventions of one scenario can never share (or swap) an id.
        assert match["convention"] == (list(case.conventions.values())[0] if case.conventions else None), case.id
        assert (match["rows"] == "multi_row") == (case.conventions.get("mini_batches.y_rows") == "multi_row"), case.id
        assert not re.search(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}\b", case.id), f"{case.id} looks like a hash or a random token"


def test_every_case_explains_itself(cases):
    for case in cases:
        assert case.description.strip() and case.why.strip(), case.id
        assert case.tags and all(isinstance(t, str) and t for t in case.tags), case.id
        assert isinstance(case.conventions, dict)
        assert set(case.tolerance) >= {"float64"}, case.id
        for name, value in case.conventions.items():
            assert value in CONVENTIONS[name]["values"], case.id


def test_cases_are_labelled_with_their_convention_and_both_values_exist(cases):
    for op, family in FAMILY_OF_OP.items():
        seen = {c.conventions.get(family) for c in of_op(cases, op)}
        assert seen == set(CONVENTIONS[family]["values"]), (op, seen)
        # Every scenario exists under both values of the family.
        names = {}
        for c in of_op(cases, op):
            names.setdefault(c.id.rsplit("/", 1)[1], set()).add(c.conventions[family])
        assert all(v == set(CONVENTIONS[family]["values"]) for v in names.values()), op
    for case in of_op(cases, "momentum.init") + of_op(cases, "adam.init"):
        assert case.conventions == {}, case.id


def test_size_and_count(cases):
    assert len(cases) >= 300
    total = sum(p.stat().st_size for p in VECTOR_DIR.rglob("*.json"))
    assert total < 5 * 1024 * 1024, f"vectors take {total / 1e6:.2f} MB"


def test_manifest_matches_the_files(documents):
    manifest = json.loads((VECTOR_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["suite_version"] == optconform.__version__
    assert manifest["schema_version"] == generate.SCHEMA_VERSION
    assert manifest["seed"] == DEFAULT_SEED
    assert re.match(r"^\d+\.\d+", manifest["numpy_version"])
    assert sorted(manifest["files"]) == sorted(p.name for p in VECTOR_FILES)
    for path in VECTOR_FILES:
        entry = manifest["files"][path.name]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), path.name
        assert entry["cases"] == len(documents[path.name]["cases"]), path.name
        header = documents[path.name]
        assert header["suite_version"] == manifest["suite_version"]
        assert header["schema_version"] == manifest["schema_version"]
        assert header["seed"] == manifest["seed"]


def test_every_array_of_every_case_has_a_scale_or_is_exact(cases):
    """Every element of every expected array is checked: a scale the shape of each array."""
    def walk(expected, scale, where):
        if isinstance(expected, dict):
            assert isinstance(scale, dict) and set(scale) == set(expected), where
            for key in expected:
                walk(expected[key], scale[key], f"{where}.{key}")
        elif isinstance(expected, list):
            assert isinstance(scale, list) and len(scale) == len(expected), where
            for index, (e, s) in enumerate(zip(expected, scale)):
                walk(e, s, f"{where}[{index}]")
        else:
            assert np.shape(scale) == np.shape(expected), where
            assert np.all(np.isfinite(scale)) and np.all(np.asarray(scale) >= 0), where

    for case in cases:
        if "scale" in case.tolerance:
            walk(case.expected, case.tolerance["scale"], case.id)
        else:
            assert all(t["rtol"] == 0 and t["atol"] == 0 for k, t in case.tolerance.items()), case.id


# ---------------------------------------------------------------- coverage: mini_batches


def _mb(cases):
    return [(c, c.full_inputs["X"].shape[1], c.full_inputs["mini_batch_size"]) for c in of_op(cases, "mini_batches")]


def test_mini_batches_coverage(cases):
    mb = _mb(cases)
    m_size = [(m, size) for _, m, size in mb]
    assert any(m % size == 0 and m > size for m, size in m_size), "m divisible by the size (several batches)"
    assert any(m == size for m, size in m_size), "m equal to the size"
    assert any(m % size != 0 and m > size for m, size in m_size), "m not divisible by the size"
    assert any(m < size for m, size in m_size), "m < size"
    assert any(size == 1 and m > 1 for m, size in m_size), "size 1"
    assert any(m == 1 for m, size in m_size), "m = 1"
    assert any(m % size == 1 and m > size for m, size in m_size), "a last batch of one column"
    assert len({c.full_inputs["seed"] for c, _, _ in mb}) >= 5, "several seeds"
    assert {0, 42} <= {c.full_inputs["seed"] for c, _, _ in mb}
    n_x = {c.full_inputs["X"].shape[0] for c, _, _ in mb}
    n_y = {c.full_inputs["Y"].shape[0] for c, _, _ in mb}
    assert 1 in n_x and max(n_x) >= 50, n_x
    assert 1 in n_y and max(n_y) > 1, n_y


def test_mini_batches_inputs_encode_their_column_index(cases):
    """Every column of X and Y is distinct and names its own index, so the permutation is recoverable."""
    for case, m, _ in _mb(cases):
        X, Y = case.full_inputs["X"], case.full_inputs["Y"]
        np.testing.assert_array_equal(np.floor(X[0]), np.arange(m), err_msg=case.id)
        np.testing.assert_array_equal(-Y[0] - 1, np.arange(m), err_msg=case.id)
        assert len({tuple(col) for col in X.T}) == m, case.id
        assert np.array_equal(X.astype(np.float32), X), f"{case.id}: X must be exact in float32"


def test_mini_batches_numpy_legacy_is_exact_for_every_case(cases):
    structural = {c.id.rsplit("/", 1)[1]: c for c in cases
                  if c.op == "mini_batches" and c.conventions["mini_batches.rng"] == "structural"}
    legacy = {c.id.rsplit("/", 1)[1]: c for c in cases
              if c.op == "mini_batches" and c.conventions["mini_batches.rng"] == "numpy_legacy"}
    assert structural.keys() == legacy.keys()
    for name, case in legacy.items():
        X, Y, size, seed = (case.full_inputs[k] for k in ("X", "Y", "mini_batch_size", "seed"))
        m = X.shape[1]
        perm = np.random.RandomState(seed).permutation(m)
        batches = case.expected["batches"]
        assert [x.shape[1] for x, _ in batches] == [size] * (m // size) + ([m % size] if m % size else [])
        np.testing.assert_array_equal(np.concatenate([x for x, _ in batches], axis=1), X[:, perm])
        np.testing.assert_array_equal(np.concatenate([y for _, y in batches], axis=1), Y[:, perm])
        assert case.tolerance["float64"] == {"rtol": 0.0, "atol": 0.0}
        twin = structural[name]
        assert twin.expected["batch_sizes"] == [x.shape[1] for x, _ in batches]
        for key in ("X", "Y"):
            np.testing.assert_array_equal(twin.inputs[key], case.full_inputs[key])


# ---------------------------------------------------------------- coverage: init


def test_init_coverage(cases):
    for op in ("momentum.init", "adam.init"):
        layers = set()
        shapes = set()
        for case in of_op(cases, op):
            parameters = case.full_inputs["parameters"]
            layers.add(len(parameters) // 2)
            for key, value in parameters.items():
                if key.startswith("W"):
                    shapes.add("1x1" if value.shape == (1, 1) else "row" if value.shape[0] == 1
                               else "column" if value.shape[1] == 1 else "matrix")
            expected = case.expected
            assert set(expected) == ({"v"} if op == "momentum.init" else {"v", "s"}), case.id
            for tree in expected.values():
                assert set(tree) == {"d" + k for k in parameters}, case.id
                for key, value in parameters.items():
                    assert tree["d" + key].shape == value.shape and not tree["d" + key].any(), case.id
        assert {1, 2, 4} <= layers, (op, layers)
        assert {"1x1", "row", "column"} <= shapes, (op, shapes)


# ---------------------------------------------------------------- coverage: updates


def _all_grads(case):
    grads = case.full_inputs["grads"]
    trees = grads if isinstance(grads, list) else [grads]
    return np.concatenate([g.ravel() for tree in trees for g in tree.values()])


def _hyper(case, key):
    return case.full_inputs.get(key)


@pytest.mark.parametrize("op,keys", [
    ("momentum.update", ("learning_rate", "beta")),
    ("adam.update", ("learning_rate", "beta1", "beta2", "epsilon")),
])
def test_updates_use_hyperparameters_that_are_not_the_course_defaults(cases, op, keys):
    updates = of_op(cases, op)
    # A case where every hyperparameter differs from its course default, so a hard-coded constant fails.
    assert any(all(_hyper(c, k) != COURSE[k] for k in keys) for c in updates), op
    for key in keys:
        assert len({_hyper(c, key) for c in updates}) >= 5, (op, key)


def test_update_edge_coverage(cases):
    momentum, adam = of_op(cases, "momentum.update"), of_op(cases, "adam.update")
    assert any(c.full_inputs["beta"] == 0.0 for c in momentum), "momentum beta = 0"
    assert any(c.full_inputs["beta1"] == 0.0 for c in adam), "adam beta1 = 0"
    for group in (momentum, adam):
        assert any(not _all_grads(c).any() for c in group), "zero gradients"
        assert any(any(np.any(v) for v in c.full_inputs["v"].values()) for c in group), "non-zero incoming v"
        mixed = [c for c in group if np.abs(_all_grads(c)[_all_grads(c) != 0]).min(initial=np.inf) <= 1e-19
                 and np.abs(_all_grads(c)).max() >= 1e19 and (_all_grads(c) < 0).any() and (_all_grads(c) > 0).any()]
        assert mixed, "mixed signs and magnitudes from 1e-20 to 1e20"
        tiny = np.finfo(np.float64).tiny
        assert any(np.any((_all_grads(c) != 0) & (np.abs(_all_grads(c)) < tiny)) for c in group), "subnormals"
    assert any(any(np.any(s) for s in c.full_inputs["s"].values()) for c in adam), "non-zero incoming s"


def test_adam_step_counts_and_underflow(cases):
    adam = of_op(cases, "adam.update")
    ts = {c.full_inputs["t"] for c in adam}
    assert {1, 2, 10, 1000} <= ts, ts
    assert any(math.pow(c.full_inputs["beta2"], c.full_inputs["t"]) == 0.0 for c in adam), "beta2**t underflowing to 0"
    assert any(math.pow(c.full_inputs["beta1"], c.full_inputs["t"]) < 1e-30 < math.pow(c.full_inputs["beta2"], c.full_inputs["t"])
               for c in adam), "beta1**t negligible while beta2**t is not"


def test_large_epsilon_makes_its_placement_show(cases):
    """epsilon 1e-2 with small s: computing with epsilon on the other side misses by far more than the tolerance."""
    large = [c for c in of_op(cases, "adam.update") if c.full_inputs["epsilon"] >= 1e-2]
    assert large
    for case in large:
        assert max(float(s.max()) for s in case.expected["s"].values()) < 1e-4, case.id
        i = case.full_inputs
        for other in set(CONVENTIONS["adam.epsilon"]["values"]) - {case.conventions["adam.epsilon"]}:
            wrong, v, s = ops.adam_update(i["parameters"], i["grads"], i["v"], i["s"], i["t"], i["learning_rate"],
                                          i["beta1"], i["beta2"], i["epsilon"], other)
            for dtype in ("float64", "float32"):
                result = compare_case_outputs(case, {"parameters": wrong, "v": v, "s": s}, dtype)
                assert not result.ok and result.worst().excess > 1e3, (case.id, other, dtype)


def test_trajectories(cases):
    for op, init_keys in (("momentum.trajectory", {"v"}), ("adam.trajectory", {"v", "s"})):
        runs = of_op(cases, op)
        assert {c.conventions[FAMILY_OF_OP[op]] for c in runs} == set(CONVENTIONS[FAMILY_OF_OP[op]]["values"])
        for case in runs:
            steps = case.expected["steps"]
            assert len(case.full_inputs["grads"]) >= 10 and len(steps) == len(case.full_inputs["grads"]), case.id
            assert all(set(step) == {"parameters"} | init_keys for step in steps), case.id
            # From init: the first step's state is what one step from zero state gives.
            i = case.full_inputs
            zero = {k: np.zeros_like(x) for k, x in i["grads"][0].items()}
            if op == "momentum.trajectory":
                p, v = ops.momentum_update(i["parameters"], i["grads"][0], zero, i["beta"], i["learning_rate"],
                                           case.conventions["momentum.form"])
                first = {"parameters": p, "v": v}
            else:
                p, v, s = ops.adam_update(i["parameters"], i["grads"][0], zero, zero, 1, i["learning_rate"],
                                          i["beta1"], i["beta2"], i["epsilon"], case.conventions["adam.epsilon"])
                first = {"parameters": p, "v": v, "s": s}
            assert compare_case_outputs(case, first, "float64", expected=steps[0],
                                        scale=case.tolerance["scale"]["steps"][0]).ok, case.id


# ---------------------------------------------------------------- the generator


def test_rendering_is_deterministic_and_matches_the_shipped_files():
    first, second = generate.render_suite(), generate.render_suite()
    assert first == second
    for name, text in first.items():
        if name == "manifest.json":
            continue
        assert (VECTOR_DIR / name).read_text(encoding="utf-8") == text, name


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Two fresh generations with the default seed, and one with --seed 7."""
    root = tmp_path_factory.mktemp("generated")
    for name, seed in (("a", None), ("b", None), ("seed7", 7)):
        args = ["generate", "--out", root / name] + (["--seed", seed] if seed is not None else [])
        result = optconform_cli(*args)
        assert result.returncode == 0, result.stderr
    return root


def test_generate_twice_is_byte_identical(generated):
    a = sorted(p.name for p in (generated / "a").iterdir())
    b = sorted(p.name for p in (generated / "b").iterdir())
    assert a == b and "manifest.json" in a and len(a) == len(VECTOR_FILES) + 1
    for name in a:
        assert (generated / "a" / name).read_bytes() == (generated / "b" / name).read_bytes(), name
    for path in VECTOR_FILES:
        assert (generated / "a" / path.name).read_bytes() == path.read_bytes(), path.name


def test_generate_check_passes_on_the_shipped_set():
    result = optconform_cli("generate", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_generate_check_of_a_missing_directory_is_a_usage_error(tmp_path):
    result = optconform_cli("generate", "--check", "--out", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip() == f"optconform: error: {tmp_path / 'nowhere'}: no such vector directory"


def test_generate_check_names_a_deleted_case_and_file(tmp_path):
    copy = tmp_path / "vectors"
    shutil.copytree(shipped_dir(), copy, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    (copy / "adam.init.json").unlink()
    lines = (copy / "momentum.init.json").read_text(encoding="utf-8").split("\n")
    (copy / "momentum.init.json").write_text(
        "\n".join(line for line in lines if '"id":"momentum.init/square"' not in line), encoding="utf-8")
    result = optconform_cli("generate", "--check", "--out", copy)
    assert result.returncode == 1
    assert "adam.init.json: missing" in result.stdout
    assert "momentum.init/square: missing from momentum.init.json" in result.stdout


def _alter_one_value(path: Path, case_id: str) -> None:
    """A hand edit: change the first number of one case's expected values, in place, nothing else."""
    lines = path.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if f'"id":"{case_id}"' in line)
    line = lines[index]
    start = line.index('"data":[', line.index('"expected":')) + len('"data":[')
    end = min(line.index(c, start) for c in ",]" if c in line[start:])
    value = float(line[start:end])
    lines[index] = line[:start] + repr(value * (1 + 2**-40) + 1e-300) + line[end:]
    path.write_text("\n".join(lines), encoding="utf-8")


def test_generate_check_names_a_hand_altered_case(tmp_path, validator):
    copy_dir = tmp_path / "vectors"
    shutil.copytree(VECTOR_DIR, copy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    case_id = "adam.update/outside_sqrt/t-10"
    _alter_one_value(copy_dir / "adam.update.json", case_id)
    assert (copy_dir / "adam.update.json").read_bytes() != (VECTOR_DIR / "adam.update.json").read_bytes()
    result = optconform_cli("generate", "--check", "--out", copy_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    named = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(named) == 1 and named[0].startswith(case_id + ":"), result.stdout
    # The altered copy is still schema-valid: only --check can notice the edit.
    assert validator.is_valid(json.loads((copy_dir / "adam.update.json").read_text(encoding="utf-8")))


def test_seed_gives_the_same_ids_with_new_numbers(generated, cases):
    private = load_suite(generated / "seed7")
    assert [c.id for c in private] == [c.id for c in cases]
    manifest = json.loads((generated / "seed7" / "manifest.json").read_text())
    assert manifest["seed"] == 7
    shipped = {c.id: c for c in cases}
    for case in private:
        public = shipped[case.id]
        assert (case.op, case.description, case.why, case.conventions) == (
            public.op, public.description, public.why, public.conventions), case.id
        if case.op == "mini_batches":
            # Sizes are the catalogue's and X, Y encode the column index; the shuffle seed is
            # drawn per suite, except in the seed-N cases, which exist for their particular seed.
            if not case.id.split("/")[-1].startswith(("seed-", "default-arguments")):
                assert case.full_inputs["seed"] != public.full_inputs["seed"], case.id
            continue
        if case.op.startswith("lr_decay."):
            continue  # scalar inputs chosen for their meaning (epochs on and off an interval), not drawn
        assert not np.array_equal(case.full_inputs["parameters"]["W1"], public.inputs["parameters"]["W1"]), case.id
    # And the private set passes --check against its own seed, not against the default one.
    assert optconform_cli("generate", "--check", "--seed", 7, "--out", generated / "seed7").returncode == 0


def test_load_suite_rejects_a_schema_invalid_file_in_one_line(tmp_path):
    copy_dir = tmp_path / "vectors"
    copy_dir.mkdir()
    for name in ("momentum.init.json", "momentum.update.json", "manifest.json"):
        shutil.copy(VECTOR_DIR / name, copy_dir / name)
    assert len(load_suite(copy_dir, allow_modified=True)) > 0
    path = copy_dir / "momentum.update.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    bad_id = document["cases"][3]["id"]
    document["cases"][3]["inputs"]["beta"] = "0.9"
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    with pytest.raises(VectorError) as info:
        load_suite(copy_dir, allow_modified=True)
    message = str(info.value)
    assert "\n" not in message and len(message) < 500, message
    assert "momentum.update.json" in message and bad_id in message, message


@pytest.mark.parametrize("change, said", [
    (lambda scale: scale["parameters"].update(W1={"dtype": "float64", "shape": [1], "data": [1.0]}),
     "scale.parameters.W1 has shape (1,), its output (4, 3)"),
    (lambda scale: scale["parameters"].update(W9=scale["parameters"]["W1"]), "scale.parameters.W9: the output has no"),
    (lambda scale: scale.update(parameters=[scale["parameters"]["W1"]]), "scale.parameters is a list of 1 where"),
    (lambda scale: scale["parameters"].pop("W1"), None),  # a key left out is scaled by the output itself
])
def test_a_modified_sets_scale_must_mirror_its_output(tmp_path, change, said):
    """A scale of another shape than its output would break the comparison of a failing answer: the set is refused
    in one line when loaded."""
    copy_dir = tmp_path / "vectors"
    copy_dir.mkdir()
    shutil.copy(VECTOR_DIR / "momentum.update.json", copy_dir / "momentum.update.json")
    path = copy_dir / "momentum.update.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document["cases"][0]["tolerance"]["scale"])
    path.write_text(json.dumps(document), encoding="utf-8")
    if said is None:
        assert len(load_suite(copy_dir, allow_modified=True)) == len(document["cases"])
        return
    with pytest.raises(VectorError) as info:
        load_suite(copy_dir, allow_modified=True)
    message = str(info.value)
    assert "\n" not in message and said in message and document["cases"][0]["id"] in message, message


def test_load_suite_rejects_unreadable_and_duplicate_files(tmp_path):
    copy_dir = tmp_path / "vectors"
    copy_dir.mkdir()
    shutil.copy(VECTOR_DIR / "momentum.init.json", copy_dir / "momentum.init.json")
    (copy_dir / "adam.init.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(VectorError) as info:
        load_suite(copy_dir, allow_modified=True)
    assert "\n" not in str(info.value) and "adam.init.json" in str(info.value)
    shutil.copy(VECTOR_DIR / "adam.init.json", copy_dir / "adam.init.json")
    shutil.copy(VECTOR_DIR / "adam.init.json", copy_dir / "adam.init.copy.json")
    with pytest.raises(VectorError) as info:
        load_suite(copy_dir, allow_modified=True)
    assert "\n" not in str(info.value) and "also in" in str(info.value)


def test_a_set_must_match_its_manifest_unless_allowed(tmp_path):
    copy_dir = tmp_path / "vectors"
    shutil.copytree(VECTOR_DIR, copy_dir, ignore=shutil.ignore_patterns("schema", "*.py", "__pycache__"))
    assert len(load_suite(copy_dir)) == len(load_suite())  # verified against the manifest: loads
    path = copy_dir / "adam.init.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"rtol":0.0', '"rtol":0.5', 1), encoding="utf-8")
    with pytest.raises(VectorError) as info:
        load_suite(copy_dir)
    assert "adam.init.json" in str(info.value) and "edited" in str(info.value) and "\n" not in str(info.value)
    assert len(load_suite(copy_dir, allow_modified=True)) == len(load_suite())  # still schema-valid: allowed
    (copy_dir / "manifest.json").unlink()
    with pytest.raises(VectorError, match="no readable manifest"):
        load_suite(copy_dir)


def test_a_number_too_large_for_its_dtype_is_an_error_not_an_infinity():
    from optconform.vectors.codec import CodecError, decode_array

    with pytest.raises(CodecError, match="a value does not fit in float32"):
        decode_array({"dtype": "float32", "shape": [1], "data": [1e308]})
    with pytest.raises(CodecError, match="a value does not fit in float64"):
        decode_array({"dtype": "float64", "shape": [1], "data": [10 ** 400]})
    assert decode_array({"dtype": "float32", "shape": [1], "data": ["inf"]})[0] == float("inf")  # said outright


def _same_arrays(one, other, where="") -> None:
    """Equal trees whose arrays have the same dtype, shape and bits (NaN, infinities and -0.0 included)."""
    assert type(one) is type(other), where
    if isinstance(one, dict):
        assert list(one) == list(other), where
        for key in one:
            _same_arrays(one[key], other[key], f"{where}.{key}")
    elif isinstance(one, list):
        assert len(one) == len(other), where
        for index, (a, b) in enumerate(zip(one, other)):
            _same_arrays(a, b, f"{where}[{index}]")
    elif isinstance(one, np.ndarray):
        assert (one.dtype, one.shape) == (other.dtype, other.shape) and one.tobytes() == other.tobytes(), where
    else:
        assert one == other, where


def test_a_trusted_set_is_decoded_to_the_very_arrays_a_checked_one_is(tmp_path):
    """The shipped set is decoded without a check per value (it was validated when it was generated); a set read
    with every check (validate=True) must give the same arrays, bit for bit, in the same order."""
    from optconform.vectors import read_file

    for path in sorted(shipped_dir().glob("*.json")):
        if path.name == "manifest.json":
            continue
        trusted, checked = read_file(path, validate=False), read_file(path, validate=True)
        assert [case.id for case in trusted] == [case.id for case in checked] and trusted
        for one, other in zip(trusted, checked):
            for field in ("inputs", "expected", "tolerance"):
                _same_arrays(getattr(one, field), getattr(other, field), f"{one.id}.{field}")
    from optconform.vectors import CodecError, _decoded, decode_value

    written = {"a": {"dtype": "float64", "shape": [2, 3], "data": ["nan", "inf", "-inf", -0.0, 1, 0.1]},
               "b": [{"dtype": "float32", "shape": [1, 2], "data": [0.1, "-inf"]}, 3, "text"],
               "c": {"dtype": "float64", "shape": [], "data": [2.5]}}  # what no shipped case holds, decoded alike
    _same_arrays(_decoded(written, "written", True), decode_value(written, "written"), "written")
    odd = [[None, 1.0], [[1.0, 2.0]], [1.0], [1e400], ["one", 2.0], [{}, 1.0], [1.0, 2.0, 3.0]]
    # each read as the checked decoding reads it, or refused in its words (a bool or a numeric string, which the
    # schema refused when the set was generated, the trusted reading takes as the number it names)
    for data in odd:
        for shape in ([2], [-1, 2], [1, 2], [2.0], [True, 2], [-2, -1], "2", {"2": 2}):
            value = {"x": {"dtype": "float64", "shape": shape, "data": data}}
            try:
                checked = decode_value(value, "inputs")
            except CodecError as error:
                with pytest.raises(CodecError, match=re.escape(str(error))):
                    _decoded(value, "inputs", True)
            else:
                _same_arrays(_decoded(value, "inputs", True), checked, f"{data} {shape}")
