"""optconform grade against otter-grader on the same notebooks, in one run, both on the same cores.

    python benchmarks/bench_otter.py [--notebooks 24] [--jobs 2] [--otter-venv DIR]

otter-grader is installed into its own virtual environment (``--otter-venv``, made
here when absent: otter-grader, ipykernel and numpy from PyPI, and a ``python3``
kernel). Its autograder is built with ``otter generate`` from OK-format tests
equivalent to optconform's checks of the same functions (each course function called
on fixed inputs, compared with the course's formula), and each notebook is graded
with ``otter run`` (which executes the notebook, then the tests), ``--jobs`` at a time.
optconform then grades the same notebooks, sandboxed, with ``--jobs``. The figure that
matters is the ratio of seconds per notebook, printed last. When otter-grader cannot
be installed, the anchor measured before (3.3 s per notebook) stands in, and the
output says so.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "course" / "course_2018.ipynb"
ANCHOR_SECONDS = 3.3

#: One OK-format test per graded function: the student's function on fixed inputs against the formula.
SETUP = (">>> import copy\n>>> import numpy as np\n>>> rng = np.random.RandomState(3)\n"
         ">>> P = {'W1': rng.randn(4, 3), 'b1': rng.randn(4, 1), 'W2': rng.randn(1, 4), 'b2': rng.randn(1, 1)}\n"
         ">>> G = {'d' + k: rng.randn(*a.shape) for k, a in P.items()}\n"
         ">>> Z = {'d' + k: np.zeros(a.shape) for k, a in P.items()}\n")
TESTS = {
    "mini_batches": ">>> X, Y = rng.randn(3, 148), (rng.rand(1, 148) > 0.5).astype(float)\n"
                    ">>> batches = random_mini_batches(X, Y, 64, 0)\n"
                    ">>> [b[0].shape[1] for b in batches] == [64, 64, 20]\nTrue",
    "velocity": ">>> v = initialize_velocity(P)\n>>> all(np.array_equal(v['d' + k], np.zeros(a.shape)) "
                "for k, a in P.items())\nTrue",
    "momentum": ">>> p, v = update_parameters_with_momentum(copy.deepcopy(P), G, copy.deepcopy(Z), 0.9, 0.01)\n"
                ">>> all(np.allclose(p[k], P[k] - 0.01 * 0.1 * G['d' + k]) for k in P)\nTrue",
    "adam_init": ">>> v, s = initialize_adam(P)\n>>> all(np.array_equal(s['d' + k], np.zeros(a.shape)) "
                 "for k, a in P.items())\nTrue",
    "adam": ">>> p, v, s = update_parameters_with_adam(copy.deepcopy(P), G, copy.deepcopy(Z), copy.deepcopy(Z), 1, "
            "0.01, 0.9, 0.999, 1e-8)[:3]\n"
            ">>> all(np.allclose(p[k], P[k] - 0.01 * G['d' + k] / (np.abs(G['d' + k]) + 1e-8)) for k in P)\nTrue",
}


def _ok_test(name: str, code: str) -> str:
    case = {"code": SETUP + code, "hidden": False, "locked": False}
    suite = {"cases": [case], "scored": True, "setup": "", "teardown": "", "type": "doctest"}
    return f"OK_FORMAT = True\n\ntest = {{'name': {name!r}, 'points': 1, 'suites': [{suite!r}]}}\n"


def otter_python(venv: Path) -> Path | None:
    """The virtual environment's python with otter-grader and a python3 kernel, made when missing."""
    python = venv / "bin" / "python"
    if (venv / "bin" / "otter").exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "otter-grader", "ipykernel", "numpy",
                        "matplotlib", "scipy", "scikit-learn"],  # what the course notebook imports
                       check=True, timeout=900, capture_output=True)
        subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name", "python3"],
                       check=True, timeout=300, capture_output=True)
    except (subprocess.SubprocessError, OSError) as error:
        print(f"otter-grader could not be installed ({error}); the anchor of {ANCHOR_SECONDS} s stands in")
        return None
    return python


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--otter-venv", type=Path, default=Path(tempfile.gettempdir()) / "optconform-otter-venv")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="optconform-otter-") as scratch:
        work = Path(scratch)
        folder = work / "class"
        folder.mkdir()
        for index in range(args.notebooks):
            shutil.copyfile(NOTEBOOK, folder / f"student{index:03d}.ipynb")
        python = otter_python(args.otter_venv)
        if python is not None:
            tests = work / "tests"
            tests.mkdir()
            for name, code in TESTS.items():
                (tests / f"{name}.py").write_text(_ok_test(name, code))
            (work / "requirements.txt").write_text("numpy\n")
            subprocess.run([str(python), "-m", "otter", "generate", "-t", str(tests), "-o",
                            str(work / "autograder.zip")], cwd=work, check=True, capture_output=True, timeout=300)

            def otter_run(notebook: Path) -> str:
                out = work / "otter" / notebook.stem
                out.mkdir(parents=True)
                done = subprocess.run([str(python), "-m", "otter", "run", "-a", str(work / "autograder.zip"), "-o",
                                       str(out), str(notebook)], capture_output=True, text=True, timeout=600)
                return done.stdout

            started = time.perf_counter()
            with ThreadPoolExecutor(args.jobs) as pool:
                outputs = list(pool.map(otter_run, sorted(folder.glob("*.ipynb"))))
            otter = (time.perf_counter() - started) / args.notebooks
            scored = sum("5.000 / 5.000" in output for output in outputs)
            print(f"otter-grader: {otter:.3f} s per notebook ({scored} of {args.notebooks} scored 5/5)")
        else:
            otter = ANCHOR_SECONDS
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out",
                               str(work / "grades"), "--jobs", str(args.jobs), "--ops", "mini_batches,momentum,adam"],
                              capture_output=True, text=True, timeout=1800)
        ours = (time.perf_counter() - started) / args.notebooks
        if done.returncode != 0:
            raise SystemExit(f"optconform grade failed: {done.stderr.strip()[-300:]}")
        print(f"optconform grade (sandboxed): {ours:.3f} s per notebook")
        print(f"otter-grader / optconform = {otter / ours:.1f}x (goal 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
