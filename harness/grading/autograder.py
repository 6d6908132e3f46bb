"""Autograders that install from themselves: ``optconform autograder`` builds Gradescope's zip, or (``--lms
prairielearn``) the folder a PrairieLearn external grader's image is built from.

The zip holds ``setup.sh``, ``run_autograder``, the assignment file, a private vector set
when the assignment uses one, and **always** optconform's own wheel (built with build
isolation from a source tree, or repacked from the installed distribution): the image
never looks for optconform on a package index. Building fails loudly, in one line, when
no wheel can be made.

``setup.sh`` (run once, as root, when Gradescope builds the image) installs Debian's
Python, bubblewrap and libseccomp where they are missing, makes a virtual environment
with the wheel, closes optconform and the autograder's source to other users (what the
uid engine needs, :mod:`optconform.harness.target.uid_engine`), and ends with
``optconform doctor``: an image whose submissions could not be confined fails to build.
``run_autograder`` (once per submission) closes the submission and results folders and
hands over to :mod:`.autograder_run`.

PrairieLearn grades in an image of the course's own: the folder holds a ``Dockerfile``
that copies it in and runs the same ``setup.sh`` (rooted at ``/optconform``), the
entrypoint ``run_prairielearn`` (which reads ``/grade/student`` and writes
``/grade/results/results.json`` in PrairieLearn's format), and the
``externalGradingOptions`` for the question's ``info.json``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from optconform.errors import EXIT_OK, UsageError

from .assignment import find, load

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission. optconform writes results/results.json itself, whatever the
# submission does; the submission runs in a sandboxed child (bubblewrap, or the uid engine in a container).
ROOT="${OPTCONFORM_AUTOGRADER_ROOT:-/autograder}"
mkdir -p "$ROOT/results" "$ROOT/submission"
chmod 700 "$ROOT/results" "$ROOT/submission" "$ROOT/source"   # closed to the submission's uid
PYTHON="${OPTCONFORM_PYTHON:-$ROOT/venv/bin/python}"
exec "$PYTHON" -I -m optconform.harness.grading.autograder_run "$ROOT"
"""

RUN_PRAIRIELEARN = """#!/usr/bin/env bash
# PrairieLearn runs this (the question's externalGradingOptions.entrypoint) once per submission: the student's
# files are in /grade/student; optconform writes /grade/results/results.json itself, whatever they do.
ROOT="${OPTCONFORM_AUTOGRADER_ROOT:-/optconform}"
GRADE="${OPTCONFORM_GRADE_ROOT:-/grade}"
mkdir -p "$GRADE/results" "$GRADE/student"
chmod 700 "$GRADE/results" "$GRADE/student" "$ROOT/source"   # closed to the submission's uid
exec "$ROOT/venv/bin/python" -I -m optconform.harness.grading.autograder_run --prairielearn "$ROOT" "$GRADE"
"""

DOCKERFILE = """# The image of a PrairieLearn external grader for this assignment: docker build -t YOUR/IMAGE . and push it,
# then name YOUR/IMAGE in the question's info.json (externalGradingOptions.json holds the rest).
FROM debian:bookworm-slim
ENV OPTCONFORM_AUTOGRADER_ROOT=/optconform
COPY . /optconform/source
RUN bash /optconform/source/setup.sh && rm -rf /var/lib/apt/lists/*
"""

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder's image.
set -euo pipefail
ROOT="${OPTCONFORM_AUTOGRADER_ROOT:-/autograder}"
missing=""
for package in python3 python3-venv bubblewrap libseccomp2; do
    dpkg -s "$package" > /dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
/usr/bin/python3 -m venv "$ROOT/venv"   # Debian's Python: readable by the submissions' uids, unlike a root-only one
wheels=("$ROOT"/source/wheels/optconform-*.whl)
"$ROOT/venv/bin/python" -m pip install --quiet "${wheels[0]}[sandbox]"
# optconform itself (the reference, the vectors) and the autograder's files are the grader's alone
chmod -R o-rwx "$ROOT"/venv/lib/python3*/site-packages/optconform "$ROOT/source"
chmod 755 "$ROOT" "$ROOT/venv"
"$ROOT/venv/bin/optconform" doctor   # no sandbox for the submissions: the image fails to build
"""


def _contents(config: Path | None, vectors: str | None, wheel: Path, lms: str) -> list[tuple[str, object, bool]]:
    """``(name, text or file, executable)`` of everything the autograder holds."""
    scripts = ([("run_autograder", RUN_AUTOGRADER, True)] if lms == "gradescope" else
               [("run_prairielearn", RUN_PRAIRIELEARN, True), ("Dockerfile", DOCKERFILE, False),
                ("externalGradingOptions.json", PRAIRIELEARN_OPTIONS, False)])
    held = [("setup.sh", SETUP_SH, True), *scripts]
    if config is not None:
        held.append(("optconform.toml", config, False))
    if vectors:
        held += [(f"vectors/{path.name}", path, False) for path in sorted(Path(vectors).glob("*.json"))]
        held += [(f"vectors/schema/{path.name}", path, False) for path in sorted((Path(vectors) / "schema").glob("*.json"))]
    return held + [(f"wheels/{wheel.name}", wheel, False)]


PRAIRIELEARN_OPTIONS = """{
  "enabled": true,
  "image": "YOUR/IMAGE",
  "entrypoint": "/optconform/source/run_prairielearn",
  "timeout": 600
}
"""


def build(config: Path | None, out: Path, vectors: str | None, lms: str = "gradescope") -> list[str]:
    """Write the autograder to ``out`` (Gradescope: a zip; PrairieLearn: a folder, the image's build
    context); returns what it holds, one line each."""
    with tempfile.TemporaryDirectory(prefix="optconform-wheel-") as folder:
        held = _contents(config, vectors, own_wheel(Path(folder)), lms)
        if lms == "gradescope":
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, content, executable in held:
                    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                    info.external_attr = (0o755 if executable else 0o644) << 16
                    archive.writestr(info, content.read_bytes() if isinstance(content, Path) else content)
        else:
            for name, content, executable in held:
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content.read_bytes() if isinstance(content, Path) else content.encode())
                target.chmod(0o755 if executable else 0o644)
    lines = [name for name, _, _ in held if not name.startswith("vectors/")]
    return lines + ([f"vectors/ (the private set {vectors})"] if vectors else [])


def own_wheel(folder: Path) -> Path:
    """optconform's wheel in ``folder``: built with build isolation from the source tree this runs from (an
    editable install), else repacked from the installed distribution. UsageError when neither can be."""
    import optconform

    project = Path(optconform.__file__).resolve().parent.parent
    if (project / "pyproject.toml").is_file() and (project / "harness").is_dir():
        leftover = not (project / "build").exists()  # setuptools builds in the tree: what it leaves, goes
        try:
            done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder),
                                   str(project)], capture_output=True, text=True, timeout=600)
        finally:
            if leftover:
                shutil.rmtree(project / "build", ignore_errors=True)
        wheels = sorted(folder.glob("optconform-*.whl"))
        if done.returncode != 0 or not wheels:
            said = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
            raise UsageError(f"cannot build optconform's wheel from {project}: "
                             f"{said[-1].strip() if said else 'pip wheel failed'}")
        return wheels[0]
    return _repacked(folder)


def _repacked(folder: Path) -> Path:
    """The installed optconform as the wheel it was installed from: every file its RECORD lists, hashed anew."""
    try:
        distribution = metadata.distribution("optconform")
    except metadata.PackageNotFoundError:
        raise UsageError("optconform is neither installed nor run from its source tree: no wheel to ship") from None
    added_by_pip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}  # not the wheel's own files
    files = [f for f in distribution.files or [] if f.suffix != ".pyc" and f.name not in added_by_pip
             and not str(f).startswith("..")]
    info = next((f for f in distribution.files or [] if f.name == "WHEEL"), None)
    if info is None or not files:
        raise UsageError("the installed optconform has no record of its files: reinstall it from a wheel")
    tag = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if line.startswith("Tag:")),
               "py3-none-any")
    path = folder / f"optconform-{distribution.version}-{tag}.whl"
    record_name = f"{info.parent}/RECORD"
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for entry in files:
            data = entry.locate().read_bytes()
            wheel.writestr(str(entry), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([str(entry), f"sha256={digest}", len(data)])
        writer.writerow([record_name, "", ""])
        wheel.writestr(record_name, rows.getvalue())
    return path



def command(config: str | None, vectors: str | None, lms: str, out: str | None) -> int:
    """``optconform autograder``: build it from the assignment file and say where it went and what to do next."""
    found = find(config)
    if found is not None:
        vectors = vectors or load(found).settings.get("vectors")
        if found.name == "pyproject.toml":
            raise UsageError("give the assignment as an optconform.toml (--config FILE) for the autograder")
    path = Path(out or ("autograder.zip" if lms == "gradescope" else "prairielearn-grader"))
    if lms == "prairielearn" and path.exists() and any(path.iterdir()):
        raise UsageError(f"{path} is not empty: give --out a new folder")
    for line in build(found, path, vectors, lms):
        print(f"  {line}")
    if lms == "gradescope":
        print(f"wrote {path}: upload it as the assignment's autograder on Gradescope")
    else:
        print(f"wrote {path}: build its image (docker build -t YOUR/IMAGE {path}), push it, and put "
              f"{path}/externalGradingOptions.json, with your image's name, in the question's info.json")
    return EXIT_OK
