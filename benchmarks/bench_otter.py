"""optconform grade against otter-grader on the same notebooks, in one run, both on the same cores.

    python benchmarks/bench_otter.py [--notebooks 24] [--jobs 2] [--repeat 1] [--tests both]
                                     [--settle 10] [--otter-venv DIR]

otter-grader is installed into its own virtual environment (``--otter-venv``, made
here when absent: otter-grader, ipykernel and numpy from PyPI, and a ``python3``
kernel). Its autograder is built with ``otter generate`` from OK-format tests, and each
notebook is graded with ``otter run`` (which executes the notebook, then the tests),
``--jobs`` at a time. optconform then grades the same notebooks, sandboxed, with
``--jobs`` (``--ops mini_batches,momentum,adam``: the functions both check). Two sets
of otter tests (``--tests``):

- ``equivalent``: the work optconform's check does. Every call optconform makes of the
  course functions (157 cases: 408 calls, trajectories teacher-forced and free-running)
  is recorded once, through optconform's own runner, from the course example, and
  shipped in the autograder as a support file; each otter test replays its function's
  calls on the student's notebook and compares every returned array with ``np.allclose``.
- ``simple``: five one-line tests (each function once on small fixed inputs), the kind
  of suite an instructor writes by hand; it checks about a hundredth of what optconform
  does, so it is the harder comparison for optconform.

Each timing starts after ``--settle`` seconds of idle (right after a minute of full load,
this machine runs anything about 10% slower for a while) and is repeated ``--repeat``
times, alternately, and the medians compared; the
figures that matter are the ratios of seconds per notebook, printed last. When
otter-grader cannot be installed, the anchor measured before (3.3 s per notebook) stands
in, and the output says so.
"""

from __future__ import annotations

import argparse
import copy
import functools
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "course" / "course_2018.ipynb"
OPS = "mini_batches,momentum,adam"
ANCHOR_SECONDS = 3.3
FUNCTIONS = ("random_mini_batches", "initialize_velocity", "update_parameters_with_momentum", "initialize_adam",
             "update_parameters_with_adam")
CALLS_FILE = "optconform_calls.pkl"

#: One OK-format test per graded function: the student's function on fixed inputs against the formula.
SETUP = (">>> import copy\n>>> import numpy as np\n>>> rng = np.random.RandomState(3)\n"
         ">>> P = {'W1': rng.randn(4, 3), 'b1': rng.randn(4, 1), 'W2': rng.randn(1, 4), 'b2': rng.randn(1, 1)}\n"
         ">>> G = {'d' + k: rng.randn(*a.shape) for k, a in P.items()}\n"
         ">>> Z = {'d' + k: np.zeros(a.shape) for k, a in P.items()}\n")
SIMPLE_TESTS = {
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

#: The equivalent test of one function: every recorded call replayed on the student's function, compared.
REPLAY = (">>> import copy, pickle\n>>> import numpy as np\n"
          ">>> def same(got, want):\n"
          "...     if isinstance(want, dict):\n"
          "...         return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k]) "
          "for k in want)\n"
          "...     if isinstance(want, (list, tuple)):\n"
          "...         return isinstance(got, (list, tuple)) and len(got) == len(want) and all(same(g, w) "
          "for g, w in zip(got, want))\n"
          "...     return np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=1e-9, atol=1e-12)\n"
          f">>> with open({CALLS_FILE!r}, 'rb') as handle:\n"
          "...     calls = pickle.load(handle)['{name}']\n"
          ">>> len(calls) > 0 and all(same({name}(*copy.deepcopy(a), **copy.deepcopy(k)), r) for a, k, r in calls)\n"
          "True")


def _ok_test(name: str, code: str) -> str:
    case = {"code": code, "hidden": False, "locked": False}
    suite = {"cases": [case], "scored": True, "setup": "", "teardown": "", "type": "doctest"}
    return f"OK_FORMAT = True\n\ntest = {{'name': {name!r}, 'points': 1, 'suites': [{suite!r}]}}\n"


def record_calls(path: Path) -> int:
    """Every call optconform's check of the course example makes of its functions: ``{function: [(args, kwargs,
    returned)]}``, pickled at ``path``; how many cases passed (all must)."""
    from optconform.harness.checking.runner import run_cases
    from optconform.harness.checking.selection import NOT_IN_ASSIGNMENT, parse_ops, select
    from optconform.harness.diagnosis import Diagnoser
    from optconform.harness.target.loader import load_source
    from optconform.harness.target.session import InProcessSession
    from optconform.reference.conventions import resolve
    from optconform.vectors import load_suite

    module, _ = load_source(NOTEBOOK)
    calls = {name: [] for name in FUNCTIONS}

    def recorded(name, function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            before = copy.deepcopy((args, kwargs))
            returned = function(*args, **kwargs)
            calls[name].append((*before, copy.deepcopy(returned)))
            return returned
        return call

    for name in FUNCTIONS:
        setattr(module, name, recorded(name, getattr(module, name)))
    session, conventions = InProcessSession(module, "course"), resolve({}, {})
    selection = select(load_suite(), conventions, "float64", parse_ops(OPS), None, None, session.info.ops,
                       NOT_IN_ASSIGNMENT)
    report = run_cases(session, selection, "float64", conventions, "course", diagnoser=Diagnoser())
    passed = sum(result.status == "pass" for result in report.results)
    if passed != len(report.results):
        raise SystemExit(f"the course example fails {len(report.results) - passed} case(s): nothing to replay")
    path.write_bytes(pickle.dumps(calls))
    return passed


def compile_optconform() -> None:
    """Compile optconform's modules, as ``pip install`` does: an editable install run with
    PYTHONDONTWRITEBYTECODE=1 (as on the machine this was measured on) would otherwise compile
    them at every start of the grader, and otter-grader's packages are compiled when installed."""
    import compileall
    import importlib

    for package in ("optconform", "optconform.harness", "optconform.reference", "optconform.vectors"):
        compileall.compile_dir(str(Path(importlib.import_module(package).__file__).parent), quiet=2)


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


def otter_autograder(python: Path, work: Path, kind: str) -> tuple[Path, int]:
    """The autograder zip of one set of tests, and its number of tests."""
    tests, support = work / f"tests-{kind}", []
    tests.mkdir()
    if kind == "simple":
        sources = {name: SETUP + code for name, code in SIMPLE_TESTS.items()}
    else:
        cases = record_calls(work / CALLS_FILE)
        print(f"equivalent tests: optconform's {cases} cases, every call replayed")
        sources = {name: REPLAY.format(name=name) for name in FUNCTIONS}
        support = [CALLS_FILE]
    for name, code in sources.items():
        (tests / f"{name}.py").write_text(_ok_test(name, code))
    (work / "requirements.txt").write_text("numpy\n")
    zipped = work / f"autograder-{kind}.zip"
    subprocess.run([str(python), "-m", "otter", "generate", "-t", str(tests), "-o", str(zipped), *support],
                   cwd=work, check=True, capture_output=True, timeout=300)
    return zipped, len(sources)


def otter_run(python: Path, autograder: Path, folder: Path, out: Path, jobs: int) -> tuple[float, list[str]]:
    """``otter run`` on every notebook of ``folder``, ``jobs`` at a time: the seconds it took, and each run's
    output."""
    shutil.rmtree(out, ignore_errors=True)
    notebooks = sorted(folder.glob("*.ipynb"))

    def run(notebook: Path) -> str:
        target = out / notebook.stem
        target.mkdir(parents=True)
        return subprocess.run([str(python), "-m", "otter", "run", "-a", str(autograder), "-o", str(target),
                               str(notebook)], capture_output=True, text=True, timeout=600).stdout

    started = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        outputs = list(pool.map(run, notebooks))
    return time.perf_counter() - started, outputs


def otter_seconds(python: Path, autograder: Path, folder: Path, out: Path, jobs: int, tests: int) -> float:
    """Seconds per notebook of :func:`otter_run` (every notebook must score full marks, or the timing is of
    something else)."""
    wall, outputs = otter_run(python, autograder, folder, out, jobs)
    seconds = wall / len(outputs)
    full = f"{tests}.000 / {tests}.000"
    if not all(full in output for output in outputs):
        raise SystemExit(f"otter-grader did not give every notebook {full}: {outputs[0][-600:]}")
    return seconds


def optconform_seconds(folder: Path, out: Path, jobs: int, notebooks: int) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                           "--jobs", str(jobs), "--ops", OPS, "--force"], capture_output=True, text=True,
                          timeout=1800)
    seconds = (time.perf_counter() - started) / notebooks
    if done.returncode != 0 or "mean 100.0%" not in done.stdout:
        raise SystemExit(f"optconform grade failed or gave less than full marks: {done.stdout[-300:]}"
                         f"{done.stderr.strip()[-300:]}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tests", choices=("equivalent", "simple", "both"), default="both")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds of idle before each timing (a timing right after a minute of full load "
                             "runs about 10%% slower on the machine measured, whichever tool it times)")
    parser.add_argument("--otter-venv", type=Path, default=Path(tempfile.gettempdir()) / "optconform-otter-venv")
    args = parser.parse_args(argv)
    kinds = ("equivalent", "simple") if args.tests == "both" else (args.tests,)
    compile_optconform()
    with tempfile.TemporaryDirectory(prefix="optconform-otter-") as scratch:
        work = Path(scratch)
        folder = work / "class"
        folder.mkdir()
        for index in range(args.notebooks):
            shutil.copyfile(NOTEBOOK, folder / f"student{index:03d}.ipynb")
        python = otter_python(args.otter_venv)
        graders = {kind: otter_autograder(python, work, kind) for kind in kinds} if python else {}
        otter: dict[str, list[float]] = {kind: [] for kind in graders}
        ours: list[float] = []
        for _ in range(args.repeat):  # alternately, so a change in the machine's load hits both alike
            for kind, (zipped, tests) in graders.items():
                time.sleep(args.settle)
                otter[kind].append(otter_seconds(python, zipped, folder, work / "otter", args.jobs, tests))
            time.sleep(args.settle)
            ours.append(optconform_seconds(folder, work / "grades", args.jobs, args.notebooks))
    mine = statistics.median(ours)
    print(f"{args.notebooks} notebooks, --jobs {args.jobs}, median of {args.repeat} run(s), seconds per notebook:")
    print(f"  optconform grade (sandboxed, {OPS}): {mine:.3f}")
    if not graders:
        print(f"  otter-grader: not installed; anchor {ANCHOR_SECONDS} s")
        print(f"otter-grader (anchor) / optconform = {ANCHOR_SECONDS / mine:.1f}x (goal 20x)")
        return 0
    for kind in graders:
        print(f"  otter-grader, {kind} tests: {statistics.median(otter[kind]):.3f}")
    for kind in graders:
        print(f"otter-grader ({kind} tests) / optconform = {statistics.median(otter[kind]) / mine:.1f}x (goal 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
