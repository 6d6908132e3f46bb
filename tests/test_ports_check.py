"""Real frameworks against the golden vectors, through the harness.

Each adapter is a target for ``optconform check`` and for the pytest plugin; here
every one runs the whole suite at both dtypes. CI installs PyTorch and JAX/optax,
so these prove that real frameworks conform (optax with its one documented
difference, listed in docs/optax.xfail).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from optional import require

from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import CaseIdList, select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.target.loader import load_module_target
from optconform.harness.target.session import InProcessSession
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite

ROOT = Path(__file__).resolve().parents[1]
OPTAX_XFAIL = ROOT / "docs" / "optax.xfail"
TARGETS = [
    ("torch", "optconform.harness.adapters.torch_port", None),
    ("torch", "optconform.harness.adapters.torch_port:heavy_ball", None),
    ("optax", "optconform.harness.adapters.optax_port", OPTAX_XFAIL),
    ("optax", "optconform.harness.adapters.optax_port:eps_root", OPTAX_XFAIL),
    ("optax", "optconform.harness.adapters.optax_port:heavy_ball", OPTAX_XFAIL),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("framework,target,xfail", TARGETS)
def test_framework_conforms_on_every_case(framework, target, xfail, dtype):
    require(framework)
    session = InProcessSession(load_module_target(target), target)
    conventions = resolve(session.info.conventions)
    selection = select(load_suite(), conventions, dtype, xfail=CaseIdList.read(str(xfail) if xfail else None))
    report = run_cases(session, selection, dtype, conventions, target, diagnoser=Diagnoser())
    problems = [f"{r.id}: {r.status}: {r.message}" for r in report.results if r.counts_as_failure]
    assert problems == []
    assert len(report.results) > 150
    if xfail and dtype == "float64":
        # the documented difference is real: the subnormal cases do fail (not pass) for optax
        flushed = [r for r in report.results if r.xfail]
        assert flushed and all(r.status == "fail" for r in flushed)


def test_cli_check_of_torch_at_float32_exits_zero():
    require("torch")
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", "optconform.harness.adapters.torch_port",
                           "--dtype", "float32"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "CONFORMS" in done.stdout


def test_pytest_plugin_runs_the_optax_port(tmp_path):
    require("optax")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path),
                           "--optconform-target=optconform.harness.adapters.optax_port:eps_root",
                           "--optconform-ops=adam.update", f"--optconform-xfail={OPTAX_XFAIL}"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    assert " passed" in done.stdout and "2 xfailed" in done.stdout  # subnormal, subnormal-mixed


def test_adapters_say_what_is_missing_when_the_framework_is_not_installed():
    for module in ("optconform.harness.adapters.torch_port", "optconform.harness.adapters.optax_port"):
        source = (ROOT / "harness" / "adapters" / (module.rsplit(".", 1)[1] + ".py")).read_text()
        assert "ImportError" in source and "pip install" in source
    assert importlib.util.find_spec("optconform.harness.adapters") is not None
