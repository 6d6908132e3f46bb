"""What a buggy file whose mistake the catalogue lacks costs, against a correct one, measured in one run.

The correct file is the 2021 course solution (``examples/course/course_2021.py``); the buggy
ones are made from it by a textual change each, bugs real submissions have and the catalogue
has no name for: the weight stepped with the bias's ``s`` (a key slip), the first bias
correction with a fixed exponent (``beta1 ** 2``), and both corrections with it. Each is
checked as ``optconform check FILE --no-sandbox`` (the diagnosis on, as a grader runs it),
best of ``--repeat``; the figures are the ratios of each buggy file's time to the correct one's.

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


def _time(path: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(path), "--no-sandbox", "--quiet"],
                       capture_output=True, check=False)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    text = COURSE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as folder:
        correct = Path(folder) / "correct.py"
        correct.write_text(text, encoding="utf-8")
        baseline = _time(correct, args.repeat)
        print(f"correct file: {baseline:.2f} s")
        for name, (old, new) in BUGS.items():
            if old not in text:
                raise SystemExit(f"{name}: the course file no longer holds {old!r}")
            buggy = Path(folder) / "buggy.py"
            buggy.write_text(text.replace(old, new), encoding="utf-8")
            seconds = _time(buggy, args.repeat)
            print(f"{name:<24} {seconds:.2f} s  {seconds / baseline:.2f}x the correct file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
