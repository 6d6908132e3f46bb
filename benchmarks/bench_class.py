"""A realistic class, graded by optconform and by otter-grader in one run: seconds per submission, the slowest
submission over the median, and the ratio.

    python benchmarks/bench_class.py [--students 30] [--jobs 2] [--rounds 1] [--no-otter] [--otter-venv DIR]

The class is generated, as real classes are made: the three course versions (2017 and 2021 as
scripts turned into notebooks, 2018 as its notebook), each with its usual extra cells (plots, the
course's helper imports), in the proportions real public submissions show: four in ten correct,
four in ten with a mistake the catalogue names (no bias correction, epsilon inside the root, the
last batch dropped, heavy-ball momentum), two in ten with one it does not (the weight stepped with
the bias's ``s``, the first correction with a fixed exponent). A buggy student redefines one
function in a later cell, as students who rewrite a function do.

optconform grades the folder sandboxed (``--ops mini_batches,momentum,adam``); each submission's
seconds come from its gradebook. otter-grader runs the same notebooks against five hand-written
tests (bench_otter's ``simple`` set: the cheapest otter suite an instructor writes), ``--jobs`` at
a time, in its own virtual environment (bench_otter makes it when absent). optconform then grades the
folder again, and the ratio is taken against the mean of its two runs, which bracket otter-grader's; with
``--rounds N``, otter-grader and optconform alternate N times, and the median of the N bracketed ratios is
reported with their range (the machine's speed drifts by tens of percent within minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_otter  # noqa: E402 - a sibling script

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "examples" / "course"
OPS = "mini_batches,momentum,adam"

ADAM = '''def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                epsilon=1e-8):
    L = len(parameters) // 2
    for l in range(1, L + 1):
        for p in ("W", "b"):
            g = grads["d" + p + str(l)]
            v["d" + p + str(l)] = beta1 * v["d" + p + str(l)] + (1 - beta1) * g
            s["d" + p + str(l)] = beta2 * s["d" + p + str(l)] + (1 - beta2) * g ** 2
            v_hat = v["d" + p + str(l)] / {c1}
            s_hat = s["d" + {s_key} + str(l)] / (1 - beta2 ** t)
            parameters[p + str(l)] = parameters[p + str(l)] - learning_rate * v_hat / {denominator}
    return parameters, v, s
'''
#: name: (the later cell a buggy student writes, whether the catalogue names its mistake)
BUGS = {
    "no bias correction": (ADAM.format(c1="1", s_key='p', denominator="(np.sqrt(s_hat) + epsilon)").replace(
        "/ (1 - beta2 ** t)", ""), True),
    "epsilon inside the root": (ADAM.format(c1="(1 - beta1 ** t)", s_key='p',
                                            denominator="np.sqrt(s_hat + epsilon)"), True),
    "last batch dropped": ('''def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    np.random.seed(seed)
    m = X.shape[1]
    permutation = list(np.random.permutation(m))
    X, Y = X[:, permutation], Y[:, permutation].reshape((1, m))
    return [(X[:, k * mini_batch_size:(k + 1) * mini_batch_size], Y[:, k * mini_batch_size:(k + 1) * mini_batch_size])
            for k in range(m // mini_batch_size)]
''', True),
    "heavy-ball momentum": ('''def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    L = len(parameters) // 2
    for l in range(1, L + 1):
        for p in ("W", "b"):
            v["d" + p + str(l)] = beta * v["d" + p + str(l)] + grads["d" + p + str(l)]
            parameters[p + str(l)] = parameters[p + str(l)] - learning_rate * v["d" + p + str(l)]
    return parameters, v
''', True),
    "s of the bias for W": (ADAM.format(c1="(1 - beta1 ** t)", s_key='"b"', denominator="(np.sqrt(s_hat) + epsilon)"),
                            False),
    "beta1 ** 2": (ADAM.format(c1="(1 - beta1 ** 2)", s_key='p', denominator="(np.sqrt(s_hat) + epsilon)"), False),
}
EXTRA_CELLS = ["import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (7.0, 4.0)\n",
               "def plot_costs(costs):\n    plt.plot(costs)\n    plt.ylabel('cost')\n    plt.show()\n"]


def _cell(source: str, kind: str = "code") -> dict:
    cell = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _notebook(version: str) -> dict:
    if version == "2018":
        return json.loads((COURSE / "course_2018.ipynb").read_text(encoding="utf-8"))
    source = (COURSE / f"course_{version}.py").read_text(encoding="utf-8")
    cells = [_cell(f"# Optimization methods ({version})", "markdown")]
    chunks = [chunk for chunk in source.split("\n\n\n") if chunk.strip()]  # a cell per top-level block
    cells += [_cell(chunk if chunk.endswith("\n") else chunk + "\n") for chunk in chunks]
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


def build_class(folder: Path, students: int) -> dict[str, str]:
    """The class's notebooks; ``{file stem: what it is}``."""
    kinds, bugs = {}, list(BUGS)
    catalogued = [name for name in bugs if BUGS[name][1]]
    uncatalogued = [name for name in bugs if not BUGS[name][1]]
    for index in range(students):
        version = ("2017", "2018", "2021")[index % 3]
        notebook = _notebook(version)
        notebook["cells"] += [_cell(extra) for extra in EXTRA_CELLS]
        slot = index % 10
        if slot < 4:
            kind = "correct"
        else:
            kind = catalogued[index % len(catalogued)] if slot < 8 else uncatalogued[index % len(uncatalogued)]
            notebook["cells"].append(_cell(BUGS[kind][0]))
        stem = f"student{index:03d}"
        (folder / f"{stem}.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        kinds[stem] = f"{version} {kind}"
    return kinds


def optconform_class(folder: Path, out: Path, jobs: int) -> tuple[float, list[float], dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out),
                           "--jobs", str(jobs), "--ops", OPS, "--force"], capture_output=True, text=True,
                          timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"optconform grade failed: {done.stderr.strip()[-400:]}")
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))["submissions"]
    return wall, [entry["seconds"] for entry in book], {entry["student"]: entry for entry in book}


def otter_class(python: Path, autograder: Path, folder: Path, out: Path, jobs: int) -> float:
    """Seconds for otter-grader to grade the class, each notebook scored whatever its score."""
    wall, outputs = bench_otter.otter_run(python, autograder, folder, out, jobs)
    if not all(" / " in output for output in outputs):  # a score line for each, right or wrong
        raise SystemExit(f"otter-grader gave no score for a notebook: {outputs[0][-600:]}")
    return wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-otter", action="store_true", help="optconform alone")
    parser.add_argument("--rounds", type=int, default=1, help="otter-grader runs, each between two of optconform")
    parser.add_argument("--otter-venv", type=Path, default=Path(tempfile.gettempdir()) / "optconform-otter-venv")
    args = parser.parse_args(argv)
    bench_otter.compile_optconform()
    with tempfile.TemporaryDirectory(prefix="optconform-class-") as scratch:
        work = Path(scratch)
        folder = work / "class"
        folder.mkdir()
        kinds = build_class(folder, args.students)
        wall, seconds, rows = optconform_class(folder, work / "grades", args.jobs)
        median = statistics.median(seconds)
        slowest = max(rows.values(), key=lambda entry: entry["seconds"])
        per = wall / args.students
        correct = sum(kind.endswith(" correct") for kind in kinds.values())
        print(f"{args.students} students ({correct} correct), --jobs {args.jobs}")
        print(f"  optconform grade (sandboxed, {OPS}): {per:.3f} s per submission; each submission's own time: "
              f"median {median:.2f} s, slowest {slowest['seconds']:.2f} s ({kinds[slowest['student']]}), "
              f"slowest / median = {slowest['seconds'] / median:.1f} (goal at most 3)")
        named = [entry for stem, entry in rows.items() if not kinds[stem].endswith(" correct")
                 and BUGS[kinds[stem].split(" ", 1)[1]][1]]
        print(f"  catalogued mistakes named: {sum(bool(entry['mistakes']) for entry in named)} of {len(named)}")
        if args.no_otter:
            return 0
        python = bench_otter.otter_python(args.otter_venv)
        if python is None:
            return 0
        autograder, _ = bench_otter.otter_autograder(python, work, "simple")
        # optconform again after each otter-grader run: every otter run is bracketed by two of optconform's, so
        # that the machine's speed drifting over the minutes otter-grader takes (up to 1.7x here) weighs on both
        # tools alike; with --rounds, the median of the bracketed ratios
        runs, ratios = [per], []
        for round_ in range(args.rounds):
            otter = otter_class(python, autograder, folder, work / f"otter-{round_}", args.jobs) / args.students
            runs.append(optconform_class(folder, work / f"grades-{round_}", args.jobs)[0] / args.students)
            ratios.append(otter / ((runs[-2] + runs[-1]) / 2))
            print(f"  round {round_ + 1}: otter-grader (simple tests) {otter:.3f} s per submission; optconform "
                  f"again {runs[-1]:.3f} s; otter-grader / optconform = {ratios[-1]:.1f}x, against the mean of "
                  f"the runs before and after (before: {otter / runs[-2]:.1f}x, after: {otter / runs[-1]:.1f}x)")
        print(f"otter-grader / optconform = {statistics.median(ratios):.1f}x"
              + (f", the median of {len(ratios)} rounds ({min(ratios):.1f}x to {max(ratios):.1f}x)"
                 if len(ratios) > 1 else "") + " (goal 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
