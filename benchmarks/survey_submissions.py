"""How the suite fares on a folder of real submissions: who conforms, whose mistakes get named.

    python benchmarks/survey_submissions.py DIR [--jobs N] [-v]

Checks every ``.py`` and ``.ipynb`` in DIR (not recursively) under the defaults,
as ``optconform check FILE --format json`` does, and sorts each into:

- ``conforms``: every case passes;
- ``named``: every failing or erroring case carries a diagnosis naming a known mistake;
- ``partly named``: some do, some do not;
- ``not named``: none does;
- ``not a solution``: none of the graded functions was found, or the file did not load.

It prints one line per file (with ``-v``) and the totals. The submissions
themselves stay wherever they are: nothing of theirs is copied.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def classify(report: dict) -> tuple[str, str]:
    """The category of one JSON report, and the mistakes it names (comma-separated)."""
    cases = report["cases"]
    if all(c["status"] == "pass" for c in cases):
        return "conforms", ""
    if all(c["status"] in ("not_implemented", "error") and c["message"].startswith("not loaded") for c in cases) or (
            all(c["status"] == "not_implemented" for c in cases)):
        return "not a solution", ""
    wrong = [c for c in cases if c["status"] in ("fail", "error")]
    named = [c for c in wrong if c.get("diagnosis") and "[" in c["diagnosis"]]
    mistakes = sorted({c["diagnosis"].split("[", 1)[1].split("]", 1)[0] for c in named})
    if wrong and len(named) == len(wrong):
        return "named", ", ".join(mistakes)
    return ("partly named" if named else "not named"), ", ".join(mistakes)


def survey(path: Path) -> tuple[str, str, str]:
    done = subprocess.run([sys.executable, "-m", "optconform.cli", "check", str(path), "--format", "json",
                           "--timeout", "10"], capture_output=True, text=True, timeout=900)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return path.name, "not a solution", done.stderr.strip().splitlines()[-1][:120] if done.stderr else ""
    category, mistakes = classify(report)
    return path.name, category, mistakes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    files = sorted(p for p in args.folder.iterdir() if p.suffix in (".py", ".ipynb"))
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(survey, files))
    totals = Counter(category for _, category, _ in rows)
    if args.verbose:
        for name, category, mistakes in rows:
            print(f"{category:<15} {name[:70]:<70} {mistakes}")
    solutions = len(rows) - totals["not a solution"]
    print(f"{len(rows)} files, {solutions} solutions: " + ", ".join(
        f"{totals[k]} {k}" for k in ("conforms", "named", "partly named", "not named", "not a solution")))
    if solutions:
        ok = totals["conforms"] + totals["named"]
        print(f"conform or have every mistake named: {ok}/{solutions} ({100 * ok / solutions:.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
