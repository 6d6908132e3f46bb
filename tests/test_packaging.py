"""The built wheel carries everything an installed optconform needs.

Builds a wheel from a copy of the source tree (so the build leaves nothing in
the checkout) with ``python -m build --wheel`` and checks, inside the zip: the
golden vectors and their schema, the wire-protocol schema, the reference, and
the two entry points (the ``optconform`` console script and the ``pytest11``
plugin). Runs in CI, never skipped: ``build`` is in the ``dev`` extra. Takes a
few seconds to a minute (the build backend may be fetched into an isolated env).
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
                              ".pytest_cache", ".venv", "node_modules", ".benchmarks", "*.whl")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    assert importlib.util.find_spec("build") is not None, (
        "the 'build' package is missing: pip install -e '.[dev]' (or pip install build)")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = work / "dist"
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list(out.glob("optconform-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        yield archive


def _names(wheel):
    return set(wheel.namelist())


def test_wheel_carries_the_vectors_and_their_schema(wheel):
    names = _names(wheel)
    shipped = sorted(p.name for p in (ROOT / "vectors").glob("*.json"))
    assert "manifest.json" in shipped and len(shipped) >= 8
    for name in shipped:
        assert f"optconform/vectors/{name}" in names, name
        assert wheel.read(f"optconform/vectors/{name}") == (ROOT / "vectors" / name).read_bytes(), name
    assert "optconform/vectors/schema/vectors.schema.json" in names
    assert "optconform/vectors/__init__.py" in names and "optconform/vectors/codec.py" in names
    json.loads(wheel.read("optconform/vectors/schema/vectors.schema.json"))


def test_wheel_carries_the_wire_schema_reference_and_harness(wheel):
    names = _names(wheel)
    assert "optconform/harness/target/schema/wire.schema.json" in names
    json.loads(wheel.read("optconform/harness/target/schema/wire.schema.json"))
    for module in ("optconform/__init__.py", "optconform/cli.py", "optconform/reference/__init__.py",
                   "optconform/reference/ops.py", "optconform/reference/tolerances.py",
                   "optconform/vectors/generate.py", "optconform/reference/catalogue/__init__.py",
                   "optconform/reference/mistakes/adam.py",
                   "optconform/harness/__init__.py", "optconform/harness/checking/compare.py",
                   "optconform/harness/pytest_plugin.py"):
        assert module in names, module
    # One import name: nothing installs as a bare top-level reference/, harness/ or vectors/.
    tops = {name.split("/")[0] for name in names}
    assert tops == {"optconform", next(t for t in tops if t.endswith(".dist-info"))}, tops


def test_wheel_declares_the_entry_points(wheel):
    info = next(n for n in _names(wheel) if n.endswith(".dist-info/entry_points.txt"))
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(info).decode())
    assert dict(parser["console_scripts"]) == {"optconform": "optconform.cli:main"}
    assert dict(parser["pytest11"]) == {"optconform": "optconform.harness.pytest_plugin"}


def test_wheel_metadata_requires_python_and_runtime_dependencies(wheel):
    metadata = wheel.read(next(n for n in _names(wheel) if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: optconform" in metadata
    assert "Requires-Python: >=3.10" in metadata
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("numpy") for r in runtime) and any(r.startswith("jsonschema") for r in runtime)
    assert any(r.startswith("pytest") and "dev" in r for r in requires)
    assert any(r.startswith("hypothesis") and "dev" in r for r in requires)


def _installed(wheel: str, venv: Path) -> Path:
    """A fresh environment (seeing this one's packages for the dependencies) with ``wheel`` installed; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    return python


def test_installed_wheel_works_outside_the_source_tree(wheel, tmp_path):
    """``pip install`` of the wheel (not editable): the commands find their vectors in site-packages."""
    venv = tmp_path / "venv"
    python = _installed(wheel.filename, venv)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ROOT / "examples" / "course_submission.py", elsewhere)

    def run(*args):
        return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=300, cwd=elsewhere)

    where = run("-c", "import optconform.vectors as v; print(v.shipped_dir())")
    assert where.returncode == 0 and str(venv) in where.stdout, where.stdout + where.stderr
    assert run("-m", "optconform.cli", "generate", "--check").returncode == 0
    refused = run("-m", "optconform.cli", "generate")  # never rewrites the installed package's vectors
    assert refused.returncode == 2 and "installed package" in refused.stderr, refused.stderr
    checked = run("-m", "optconform.cli", "check", "course_submission.py", "--ops", "adam.update")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "CONFORMS" in checked.stdout


def test_an_installed_optconform_ships_its_own_wheel_in_the_autograder(wheel, tmp_path):
    """From a plain install (no source tree to build from), `optconform autograder` repacks the installed
    distribution: the zip's wheel holds every file the installed one does, and installs in a fresh environment."""
    python = _installed(wheel.filename, tmp_path / "venv")
    done = subprocess.run([str(python), "-m", "optconform.cli", "autograder", "--out", "ag.zip"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "ag.zip") as archive:
        inner = next(n for n in archive.namelist() if n.startswith("wheels/optconform-"))
        (tmp_path / Path(inner).name).write_bytes(archive.read(inner))
    shipped = zipfile.ZipFile(tmp_path / Path(inner).name)
    assert {n for n in _names(wheel) if not n.endswith("RECORD")} == \
        {n for n in shipped.namelist() if not n.endswith("RECORD")}
    again = _installed(str(tmp_path / Path(inner).name), tmp_path / "again")  # pip checks every RECORD hash
    listed = subprocess.run([str(again), "-m", "optconform.cli", "generate", "--check"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
