"""What the sandbox costs: ``optconform grade`` on the same folder with and without it, in one run.

    python benchmarks/bench_grade_sandbox.py [--students 12] [--repeat 3] [--jobs 2]

The folder holds copies of the course-style examples (every course version) and
of the buggy example. The two settings are timed alternately, ``--repeat`` times
each, so machine load hits both alike; the figure that matters is the ratio of
the medians (sandboxed / unconfined), printed last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [*sorted((ROOT / "examples" / "course").iterdir()), ROOT / "examples" / "buggy_submission.py"]


def make_class(folder: Path, students: int) -> None:
    for index in range(students):
        source = EXAMPLES[index % len(EXAMPLES)]
        shutil.copyfile(source, folder / f"student{index:03d}{source.suffix}")


#: otter-grader's time per notebook on this machine, measured when issue #11 was filed (3.3-4.5 s): the
#: anchor the per-submission figure is compared with (otter-grader is not installed here).
OTTER_SECONDS_PER_NOTEBOOK = 3.3
CPU_BUSY: list[float] = []


def grade_seconds(folder: Path, out: Path, jobs: int, sandbox: bool) -> float:
    argv = [sys.executable, "-m", "optconform.cli", "grade", str(folder), "--out", str(out), "--jobs", str(jobs)]
    if not sandbox:
        argv.append("--no-sandbox")
    before = _cpu_times()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = _cpu_times()
    if done.returncode != 0:
        raise SystemExit(f"grade failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    if sandbox:  # the machine's cores busy during the run (a killed sandbox's CPU time reaches no rusage)
        busy, total = after[0] - before[0], after[1] - before[1]
        CPU_BUSY.append(busy / total if total else 0.0)
    return elapsed


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    from bench_otter import compile_optconform  # this folder is on the path of a script run from it

    compile_optconform()
    with tempfile.TemporaryDirectory(prefix="optconform-bench-") as scratch:
        folder = Path(scratch) / "class"
        folder.mkdir()
        make_class(folder, args.students)
        times = {True: [], False: []}
        for _ in range(args.repeat):
            for sandbox in (True, False):
                times[sandbox].append(grade_seconds(folder, Path(scratch) / "grades", args.jobs, sandbox))
    confined, plain = statistics.median(times[True]), statistics.median(times[False])
    print(f"{args.students} submissions, --jobs {args.jobs}, {args.repeat} runs each (medians):")
    print(f"  sandboxed:  {confined:.2f} s  ({confined / args.students:.3f} s per submission)")
    print(f"  unconfined: {plain:.2f} s  ({plain / args.students:.3f} s per submission)")
    print(f"  sandboxed / unconfined = {confined / plain:.2f}")
    print(f"  the machine's {os.cpu_count()} cores busy while grading (sandboxed): {statistics.median(CPU_BUSY):.0%}")
    per = confined / args.students
    print(f"  otter-grader anchor {OTTER_SECONDS_PER_NOTEBOOK} s per notebook / {per:.3f} s = "
          f"{OTTER_SECONDS_PER_NOTEBOOK / per:.1f}x faster (goal 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
