"""What a buggy file whose mistake the catalogue lacks costs, against a correct one, measured in one run.

The correct file is the 2021 course solution (``examples/course/course_2021.py``); the buggy
ones are made from it by a textual change each, bugs real submissions have and the catalogue
has no name for: the weight stepped with the bias's ``s`` (a key slip), the first bias
correction with a fixed exponent (``beta1 ** 2``), and both corrections with it. Each is
checked as ``optconform check FILE --no-sandbox`` (the diagnosis on, as a grader runs it),
best of ``--repeat`` rounds (each round checks every file once, so that a drift in the machine's speed
weighs on all alike); the figures are the ratios of each buggy file's time to the correct one's.

    python benchmarks/bench_unmatched.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "examples" / "course" / "course_2021.py"

#: name: (text in the correct file, what the buggy file has instead)
BUGS = {
    "s of the bias for W": ('v_corrected["dW" + str(l)] / (np.sqrt(s_corrected["dW" + str(l)])',
                            'v_corrected["dW" + str(l)] / (np.sqrt(s_corrected["db" + str(l)].mean())'),
    "beta1 ** 2": ('v["dW" + str(l)] / (1 - beta1 ** t)', 'v["dW" + str(l)] / (1 - beta1 ** 2)'),
    "both corrections ** 2": ("** t)", "** 2)"),
}


def _seconds(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(path), "--no-sandbox", "--quiet"],
                   capture_output=True, check=False)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    text = COURSE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as folder:
        files = {"correct": Path(folder) / "correct.py"}
        files["correct"].write_text(text, encoding="utf-8")
        for index, (name, (old, new)) in enumerate(BUGS.items()):
            if old not in text:
                raise SystemExit(f"{name}: the course file no longer holds {old!r}")
            files[name] = Path(folder) / f"buggy{index}.py"
            files[name].write_text(text.replace(old, new), encoding="utf-8")
        best = dict.fromkeys(files, float("inf"))
        for _ in range(args.repeat):  # round by round, every file in each: a drift in the machine's speed over
            for name, path in files.items():  # the run weighs on all of them alike
                best[name] = min(best[name], _seconds(path))
        baseline = best.pop("correct")
        print(f"correct file: {baseline:.2f} s")
        for name, seconds in best.items():
            print(f"{name:<24} {seconds:.2f} s  {seconds / baseline:.2f}x the correct file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
