"""Real frameworks against the golden vectors, through the harness.

Each adapter is a target for ``optconform check`` and for the pytest plugin; here every one runs the whole
suite at both dtypes under the conventions it declares. CI installs PyTorch, JAX/optax, Keras and numpy-ml,
so these prove that each real framework conforms, or fails only where its library really deviates: each
failing case must be named as a mistake the port documents in ``OPTCONFORM_DEVIATIONS``, with its source,
and each documented deviation must still show.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from optional import require

from optconform.harness.checking.results import mistake_names
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.target.loader import load_module_target
from optconform.harness.target.session import InProcessSession
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite

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


def _run(target: str, dtype: str):
    session = InProcessSession(load_module_target(target), target)
    conventions = resolve(session.info.conventions)
    selection = select(load_suite(), conventions, dtype, optional=())
    return selection, run_cases(session, selection, dtype, conventions, target, diagnoser=Diagnoser())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("framework,target", TARGETS)
def test_framework_conforms_or_deviates_only_where_documented(framework, target, dtype):
    require(framework)
    selection, report = _run(target, dtype)
    module = sys.modules[target.partition(":")[0]]
    documented = getattr(module, "OPTCONFORM_DEVIATIONS", {})
    lacking = {r.op for r in report.results if r.status == "not_implemented"}
    assert lacking == LACKING.get(target, set())
    failing = [r for r in report.results if r.status in ("fail", "error")]
    undocumented = [f"{r.id}: {r.message.splitlines()[0]} {r.diagnosis}" for r in failing
                    if not set(mistake_names(r.diagnosis)) & set(documented)]
    assert undocumented == []
    assert all(source.strip() for source in documented.values())
    assert len(report.results) > 150
    if dtype == "float64":  # every documented deviation still shows (or the documentation is stale)
        named = {name for r in failing for name in mistake_names(r.diagnosis)}
        platform = {f"platform.subnormals={report.conventions['platform.subnormals']}"}
        assert set(documented) <= named | platform, set(documented) - named
        flushed = [entry for entry in selection.skipped if "platform.subnormals=flushed" in entry]
        assert bool(flushed) == ("platform.subnormals=flushed" in documented)


def test_keras_counts_scheduled_decay_intervals_in_float32():
    """The one Keras deviation, shown on the case that exists to catch it (a floor of 1000000.999)."""
    require(f"{ADAPTERS}.keras_port")
    _, report = _run(f"{ADAPTERS}.keras_port", "float64")
    failing = [r for r in report.results if r.status == "fail"]
    assert [r.id for r in failing] == ["lr_decay.scheduled/huge-epoch"]
    assert mistake_names(failing[0].diagnosis) == ["intervals-in-float32"]


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
