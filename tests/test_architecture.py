"""The rooms and their one-way doors (docs/architecture.md), held by import-linter's contracts in pyproject.toml.

The repository maps ``optconform.harness`` to ``harness/`` and so on (pyproject.toml's ``package-dir``), which
import-linter cannot follow in a checkout; each test lays the package out as it is installed, in links, and
runs the contracts on that. A copy with one wrong import shows the contracts catch what they claim to.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"harness": ROOT / "harness", "reference": ROOT / "reference", "vectors": ROOT / "vectors"}
#: The guide for a module's size (docs/architecture.md); tests and examples are not modules of the package.
MAX_LINES = 400


def _laid_out(where: Path, copy: tuple[str, ...] = ()) -> Path:
    """``where/optconform`` as installed: links to the repository's folders (copies for those in ``copy``)."""
    package = where / "optconform"
    package.mkdir(parents=True)
    for module in (ROOT / "optconform").glob("*.py"):
        (package / module.name).symlink_to(module)
    for name, folder in PACKAGE_DIRS.items():
        if name in copy:
            shutil.copytree(folder, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
        else:
            (package / name).symlink_to(folder, target_is_directory=True)
    return package


def _lint(path: Path) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    assert lint, "import-linter is part of the [dev] extra"
    env = {**os.environ, "PYTHONPATH": str(path)}
    return subprocess.run([lint, str(ROOT / "pyproject.toml"), "--no-cache"], cwd=path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_contract_is_kept(tmp_path):
    _laid_out(tmp_path)
    done = _lint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "4 kept" in done.stdout, done.stdout


@pytest.mark.parametrize("module, line, contract", [
    # a room importing a room above it
    ("harness/target/session.py", "from optconform.harness.grading import graded", "Each room imports only"),
    # two modules of one room importing each other
    ("harness/grading/choice.py", "from optconform.harness.grading import submissions", "No loop of imports"),
    # the child server reaching the golden values
    ("harness/target/loader.py", "from optconform.reference import ops", "The sandboxed child"),
    # a port reaching into the harness
    ("harness/adapters/optax_port.py", "from optconform.harness.checking import compare", "The framework ports"),
])
def test_a_wrong_import_breaks_its_contract(tmp_path, module, line, contract):
    package = _laid_out(tmp_path, copy=("harness",))
    path = package / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    done = _lint(tmp_path)
    assert done.returncode != 0
    said = " ".join(done.stdout.split())  # the report wraps long lines
    assert re.search(re.escape(contract) + r"[^.]*? BROKEN", said), done.stdout


def test_no_module_is_over_the_size_guide():
    too_long = {}
    for folder in (ROOT / "optconform", *PACKAGE_DIRS.values()):
        for path in folder.rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                too_long[str(path.relative_to(ROOT))] = lines
    assert not too_long, too_long
