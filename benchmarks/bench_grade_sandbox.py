"""What the sandbox costs: ``optconform grade`` on the same folder with each engine and without one, in one run.

    python benchmarks/bench_grade_sandbox.py [--students 12] [--repeat 3] [--jobs 2] [--engines bubblewrap,uid]

The folder holds copies of the course-style examples (every course version) and
of the buggy example. The settings are timed alternately, ``--repeat`` times each,
so machine load hits all alike; the figures that matter are the ratios of the
medians (each engine / unconfined). The uid engine (a container's) needs the grader
to be root and a Python its uids can run: the benchmark installs optconform from a
wheel into a virtual environment of Debian's ``/usr/bin/python3``, closes it as the
autograder's ``setup.sh`` does, and times every setting with that environment.
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


def grade_seconds(python: str, folder: Path, out: Path, jobs: int, engine: str | None) -> float:
    argv = [python, "-m", "optconform.cli", "grade", str(folder), "--out", str(out), "--jobs", str(jobs), "--force"]
    if engine is None:
        argv.append("--no-sandbox")
    environment = {**os.environ, "OPTCONFORM_SANDBOX": engine or ""}
    before = _cpu_times()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=folder.parent)  # not the clone
    elapsed = time.perf_counter() - started
    after = _cpu_times()
    if done.returncode != 0:
        raise SystemExit(f"grade failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    if engine:  # the machine's cores busy during the run (a killed sandbox's CPU time reaches no rusage)
        busy, total = after[0] - before[0], after[1] - before[1]
        CPU_BUSY.append(busy / total if total else 0.0)
    return elapsed


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def container_python(scratch: Path) -> str:
    """A virtual environment of Debian's Python with optconform installed from its wheel and closed to other
    users, as the autograder's setup.sh makes it: one every engine's children can run."""
    wheels, venv = scratch / "wheels", scratch / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    wheel = next(wheels.glob("optconform-*.whl"))
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[sandbox]"], check=True,
                   capture_output=True)
    for package in venv.glob("lib/python3*/site-packages/optconform"):
        subprocess.run(["chmod", "-R", "o-rwx", str(package)], check=True)
    scratch.chmod(0o755)
    return str(venv / "bin" / "python")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--engines", default="bubblewrap,uid", help="comma-separated: bubblewrap, uid")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    with tempfile.TemporaryDirectory(prefix="optconform-bench-", dir="/tmp") as scratch:
        python = container_python(Path(scratch))
        folder = Path(scratch) / "class"
        folder.mkdir(mode=0o700)
        make_class(folder, args.students)
        times = {engine: [] for engine in [*engines, None]}
        for _ in range(args.repeat):
            for engine in times:
                times[engine].append(grade_seconds(python, folder, Path(scratch) / "grades", args.jobs, engine))
    plain = statistics.median(times[None])
    print(f"{args.students} submissions, --jobs {args.jobs}, {args.repeat} runs each (medians):")
    print(f"  unconfined: {plain:.2f} s  ({plain / args.students:.3f} s per submission)")
    for engine in engines:
        confined = statistics.median(times[engine])
        print(f"  {engine:<10}  {confined:.2f} s  ({confined / args.students:.3f} s per submission); "
              f"{engine} / unconfined = {confined / plain:.2f}")
    print(f"  the machine's {os.cpu_count()} cores busy while grading (sandboxed): {statistics.median(CPU_BUSY):.0%}")
    per = statistics.median(times[engines[0]]) / args.students if engines else plain / args.students
    print(f"  otter-grader anchor {OTTER_SECONDS_PER_NOTEBOOK} s per notebook / {per:.3f} s = "
          f"{OTTER_SECONDS_PER_NOTEBOOK / per:.1f}x faster (goal 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
