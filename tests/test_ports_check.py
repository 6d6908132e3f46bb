"""Real frameworks against the golden vectors, through the harness.

Each adapter is a target for ``optconform check`` and for the pytest plugin; here ``optconform matrix`` runs
every one on the whole suite at both dtypes under the conventions it declares, once, and the tests read its
rows (and hold the committed docs/matrix.json to them). CI installs PyTorch, JAX/optax, Keras and numpy-ml,
so these prove that each real framework conforms, or fails only where its library really deviates: each
failing case must be named as a mistake the port documents in ``OPTCONFORM_DEVIATIONS``, with its source,
and each documented deviation must still show.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from optional import require

from optconform.harness.matrix import verdicts

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = "optconform.harness.adapters"
#: (the module the port needs, its target)
TARGETS = [
    ("torch", f"{ADAPTERS}.torch_port"),
    ("torch", f"{ADAPTERS}.torch_port:heavy_ball"),
    ("optax", f"{ADAPTERS}.optax_port"),
    ("optax", f"{ADAPTERS}.optax_port:eps_root"),
    ("optax", f"{ADAPTERS}.optax_port:heavy_ball"),
    ("jax", f"{ADAPTERS}.jax_example_port"),
    (f"{ADAPTERS}.keras_port", f"{ADAPTERS}.keras_port"),  # it selects the JAX backend before importing keras
    (f"{ADAPTERS}.numpy_ml_port", f"{ADAPTERS}.numpy_ml_port"),  # numpy-ml itself imports only through it
]
#: What each library lacks (its cases are "not implemented", never failures).
LACKING = {f"{ADAPTERS}.jax_example_port": {"mini_batches"}, f"{ADAPTERS}.keras_port": {"mini_batches"},
           f"{ADAPTERS}.numpy_ml_port": {"lr_decay.inverse_time", "lr_decay.scheduled"}}


@pytest.fixture(scope="module")
def matrix_document(tmp_path_factory):
    """``optconform matrix`` run once (every port, both dtypes, a worker per core): the rows the tests read."""
    out = tmp_path_factory.mktemp("matrix")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "matrix", "--out", str(out)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((out / "matrix.json").read_text(encoding="utf-8"))


def _row(document: dict, target: str, dtype: str) -> dict:
    (row,) = [r for r in document["rows"] if r["target"] == target and r["dtype"] == dtype]
    assert row["status"] == "ran", row.get("reason")
    return row


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("framework,target", TARGETS)
def test_framework_conforms_or_deviates_only_where_documented(framework, target, dtype, matrix_document):
    require(framework)
    row = _row(matrix_document, target, dtype)
    module = importlib.import_module(target.partition(":")[0])
    documented = getattr(module, "OPTCONFORM_DEVIATIONS", {})
    lacking = {op for op, entry in row["ops"].items() if entry["verdict"] == "not implemented"}
    assert lacking == LACKING.get(target, set())
    assert sum(entry["cases"] for entry in row["ops"].values()) > 150
    undocumented = [d for d in row["deviations"] if d["mistake"] not in documented]
    assert undocumented == []
    assert all(d["source"] == documented[d["mistake"]] for d in row["deviations"])
    assert all(source.strip() for source in documented.values())
    if dtype == "float64":  # every documented deviation still shows (or the documentation is stale)
        platform = {f"platform.subnormals={row['conventions']['platform.subnormals']}"}
        assert set(documented) <= {d["mistake"] for d in row["deviations"]} | platform
        assert (row["not_run"] > 0) == ("platform.subnormals=flushed" in documented)


def test_the_committed_matrix_holds_what_the_ports_compute(matrix_document):
    """``optconform matrix --check`` as a test: docs/matrix.json's verdicts are the ports' (those installed here;
    in CI, every one)."""
    committed = verdicts(json.loads((ROOT / "docs" / "matrix.json").read_text(encoding="utf-8")))
    fresh = verdicts(matrix_document)
    if os.environ.get("CI"):
        assert set(fresh) == set(committed)
    assert {key: value for key, value in fresh.items() if key in committed} == \
        {key: committed[key] for key in fresh if key in committed}


def test_keras_counts_scheduled_decay_intervals_in_float32(matrix_document):
    """The one Keras deviation, shown on the case that exists to catch it (a floor of 1000000.999)."""
    require(f"{ADAPTERS}.keras_port")
    (found,) = _row(matrix_document, f"{ADAPTERS}.keras_port", "float64")["deviations"]
    assert (found["first_case"], found["cases"], found["mistake"]) == (
        "lr_decay.scheduled/huge-epoch", 1, "intervals-in-float32")
    assert "expected 3.3333222222592597e-07" in found["evidence"]


@pytest.mark.parametrize("framework,target,convention", [
    (f"{ADAPTERS}.numpy_ml_port", f"{ADAPTERS}.numpy_ml_port", "momentum.form=heavy_ball"),
    (f"{ADAPTERS}.keras_port", f"{ADAPTERS}.keras_port", "adam.epsilon=outside_sqrt"),
    ("jax", f"{ADAPTERS}.jax_example_port", "rmsprop.epsilon=outside_sqrt"),
])
def test_under_another_convention_the_port_fails_and_is_told_why(framework, target, convention):
    """The declarations matter: the same library checked under the neighbouring convention fails, and the
    diagnosis names the convention's own mistake."""
    require(framework)
    op = {"momentum": "momentum.update", "adam": "adam.update", "rmsprop": "rmsprop.update"}[convention.split(".")[0]]
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", target, "--ops", op,
                           "--convention", convention], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    expected = {"momentum.form=heavy_ball": "[lr-in-velocity]", "adam.epsilon=outside_sqrt": "[epsilon-hat]",
                "rmsprop.epsilon=outside_sqrt": "[epsilon-inside-sqrt]"}[convention]
    assert expected in done.stdout


def test_cli_check_of_torch_at_float32_exits_zero():
    require("torch")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", f"{ADAPTERS}.torch_port",
                           "--dtype", "float32"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "CONFORMS" in done.stdout


def test_pytest_plugin_runs_the_optax_port_with_subnormals_declared_flushed(tmp_path):
    require("optax")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path),
                           f"--optconform-target={ADAPTERS}.optax_port:eps_root", "--optconform-ops=adam.update"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout and "xfail" not in done.stdout


def test_adapters_say_what_is_missing_when_the_framework_is_not_installed():
    for _, target in TARGETS:
        module = target.partition(":")[0]
        source = (ROOT / "harness" / "adapters" / (module.rsplit(".", 1)[1] + ".py")).read_text()
        assert "ImportError" in source and "pip install" in source
    assert importlib.util.find_spec("optconform.harness.adapters") is not None
