"""A Gradescope autograder: ``optconform autograder`` builds the zip, ``run_autograder`` grades one submission.

The zip holds ``setup.sh`` (a virtual environment with optconform, pinned, and
bubblewrap), ``run_autograder``, the assignment file, a private vector set when the
assignment uses one, and optconform's own wheel when it is built from a source tree.
Gradescope runs ``run_autograder`` once per submission, in a fresh container:
:func:`run` finds the student's file under ``/autograder/submission``, checks it as
``check --format gradescope`` does (the instructor's conventions, each call in the
sandbox where the container allows one), and **always** writes
``/autograder/results/results.json``, whatever the submission does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from optconform.errors import UsageError
from optconform.harness.checking.run import LoadFailure, run_target
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting import render

from .assignment import AssignmentError, build_settings
from .choice import IGNORED_DIRS, choose

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission. optconform writes results/results.json itself, whatever the
# submission does; the submission runs in a child process (in bubblewrap where the container allows it).
ROOT="${OPTCONFORM_AUTOGRADER_ROOT:-/autograder}"
PYTHON="${OPTCONFORM_PYTHON:-$ROOT/venv/bin/python}"
exec "$PYTHON" -m optconform.harness.grading.autograder run "$ROOT"
"""

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, to build the autograder's image.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
if compgen -G "/autograder/source/wheels/*.whl" > /dev/null; then
    /autograder/venv/bin/pip install "$(ls /autograder/source/wheels/*.whl)[sandbox]"
else
    /autograder/venv/bin/pip install "optconform[sandbox]=={version}"
fi
/autograder/venv/bin/optconform doctor || true   # says, in the build log, whether submissions are confined
"""



# ---------------------------------------------------------------- building the zip


def build(config: Path | None, out: Path, vectors: str | None) -> list[str]:
    """Write the autograder zip to ``out``; returns what it holds, one line each."""
    from optconform import __version__

    held = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_text(archive, "setup.sh", SETUP_SH.replace("{version}", __version__), executable=True)
        _add_text(archive, "run_autograder", RUN_AUTOGRADER, executable=True)
        held += ["setup.sh", "run_autograder"]
        if config is not None:
            archive.write(config, "optconform.toml")
            held.append(f"optconform.toml (from {config})")
        if vectors:
            for path in sorted(Path(vectors).glob("*.json")):
                archive.write(path, f"vectors/{path.name}")
            for path in sorted((Path(vectors) / "schema").glob("*.json")):
                archive.write(path, f"vectors/schema/{path.name}")
            held.append(f"vectors/ (the private set {vectors})")
        wheel = _own_wheel()
        if wheel is not None:
            archive.write(wheel, f"wheels/{wheel.name}")
            held.append(f"wheels/{wheel.name}")
        else:
            held.append(f"(no wheel: setup.sh installs optconform=={__version__} from PyPI)")
    return held


def _add_text(archive: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if executable else 0o644) << 16
    archive.writestr(info, text)


def _own_wheel() -> Path | None:
    """optconform's wheel, built from the source tree it runs from (an editable install), else None."""
    import optconform

    project = Path(optconform.__file__).resolve().parent.parent
    if not (project / "pyproject.toml").is_file() or not (project / "harness").is_dir():
        return None
    target = Path(tempfile.mkdtemp(prefix="optconform-wheel-"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(target), str(project)], capture_output=True, text=True, timeout=600)
    wheels = sorted(target.glob("optconform-*.whl"))
    return wheels[0] if done.returncode == 0 and wheels else None


# ---------------------------------------------------------------- grading one submission


def find_submission(folder: Path) -> tuple[Path | None, str]:
    """The file to grade among the submission's ``.py`` and ``.ipynb`` files, and a note on the choice: the
    one that defines the most of the graded functions (a notebook first on a tie)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file()
                   and not IGNORED_DIRS & set(p.relative_to(folder).parts))
    if not files:
        return None, "no .py or .ipynb file was found in your submission"

    chosen = choose(files)
    note = "" if len(files) == 1 else (f"graded {chosen.relative_to(folder)} (of {len(files)} files: the one that "
                                       "defines the most of the assignment's functions)")
    return chosen, note


def run(root: Path) -> int:
    """Grade ``root/submission`` into ``root/results/results.json``; a results file is written in every case."""
    started = time.monotonic()
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    if results.exists():
        results.unlink()
    note = ""
    try:
        submission, note = find_submission(root / "submission")
        if submission is None:
            _fallback(results, note, started)
            return 0
        _check(root, submission, results)
    except BaseException as error:  # noqa: BLE001 - whatever happens, the student gets a results file
        if not results.exists():
            _fallback(results, f"the grader could not grade this submission: {type(error).__name__}: {error}",
                      started)
        if isinstance(error, KeyboardInterrupt):
            raise
    if not results.exists():
        _fallback(results, "the grader wrote no result (this is a grader problem: tell your instructor)", started)
    _annotate(results, note, started)
    return 0


def _check(root: Path, submission: Path, results: Path) -> None:
    """Check ``submission`` as ``check --format gradescope`` does, under the assignment file and the private
    vectors the zip carries; a file that does not load writes results too (every case an error)."""
    source = root / "source"
    config = source / "optconform.toml"
    given = {"vectors": str(source / "vectors")} if (source / "vectors" / "manifest.json").is_file() else {}
    try:
        settings = build_settings(given, str(config) if config.is_file() else None, graded=True)
        try:
            report = run_target(settings, str(submission), None, diagnoser=Diagnoser(), quiet=True)
        except LoadFailure as failure:
            report = failure.report
        results.write_text(render(report, "gradescope"), encoding="utf-8")
    except (UsageError, AssignmentError) as error:
        if not results.exists():
            _fallback(results, str(error), time.monotonic())


def _fallback(results: Path, message: str, started: float) -> None:
    document = {"score": 0, "output": f"Score 0: {message}.", "execution_time": round(time.monotonic() - started, 3),
                "visibility": "visible", "tests": []}
    results.write_text(json.dumps(document, indent=2), encoding="utf-8")


def _annotate(results: Path, note: str, started: float) -> None:
    document = json.loads(results.read_text(encoding="utf-8"))
    document["execution_time"] = round(time.monotonic() - started, 3)
    if note:
        document["output"] = f"{note}\n\n{document.get('output', '')}".strip()
    results.write_text(json.dumps(document, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "run":
        print("usage: python -m optconform.harness.grading.autograder run ROOT", file=sys.stderr)
        return 2
    return run(Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
