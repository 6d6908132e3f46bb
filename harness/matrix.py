"""The conformance matrix: what every shipped port's framework really computes, at float64 and float32.

``optconform matrix`` runs each port (an in-process target, or the JavaScript port over the wire) on the
whole suite under the conventions it declares, and writes ``docs/matrix.md`` and ``docs/matrix.json``:
per op pass / fail / not implemented, the conventions, the library versions, and each deviation with its
evidence (the first case, expected and got) and, where the port documents it, the library's own source
line (``OPTCONFORM_DEVIATIONS = {mistake name: "where in the library"}`` in the port module).
``optconform matrix --check`` regenerates it and fails where a verdict differs from the committed JSON.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from optconform.harness.checking.results import mistake_names
from optconform.harness.checking.runner import run_cases
from optconform.harness.checking.selection import CASE_OPS, select
from optconform.harness.diagnosis import Diagnoser
from optconform.harness.reporting.text import status_counts
from optconform.harness.target.loader import LoadError, load_module_target
from optconform.harness.target.session import InProcessSession, open_session
from optconform.reference.conventions import resolve
from optconform.vectors import load_suite

ADAPTERS = "optconform.harness.adapters"


@dataclass(frozen=True)
class Port:
    """One shipped port: its target, the libraries whose versions it reports, and how it is started."""

    target: str
    libraries: tuple[str, ...]
    command: str | None = None  # a wire-protocol program, started with this command line (from the repository)


PORTS = (
    Port(f"{ADAPTERS}.torch_port", ("torch",)),
    Port(f"{ADAPTERS}.torch_port:heavy_ball", ("torch",)),
    Port(f"{ADAPTERS}.optax_port", ("optax", "jax")),
    Port(f"{ADAPTERS}.optax_port:eps_root", ("optax", "jax")),
    Port(f"{ADAPTERS}.optax_port:heavy_ball", ("optax", "jax")),
    Port(f"{ADAPTERS}.jax_example_port", ("jax",)),
    Port(f"{ADAPTERS}.keras_port", ("keras", "jax")),
    Port(f"{ADAPTERS}.numpy_ml_port", ("numpy-ml", "numpy")),
    Port("examples/js/optconform_port.js", ("node",), command="node examples/js/optconform_port.js"),
)
DTYPES = ("float64", "float32")


def _versions(port: Port) -> dict[str, str]:
    found = {}
    for library in port.libraries:
        if library == "node":
            node = shutil.which("node")
            found[library] = (subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
                              .stdout.strip().lstrip("v") if node else "not installed")
            continue
        try:
            found[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            found[library] = "not installed"
    return found


def _session(port: Port, root: Path):
    """A session on the port, or the one-line reason it cannot start (its library is not installed)."""
    if port.command:
        program, script = port.command.split()
        if not shutil.which(program):
            return None, f"{program} is not installed"
        if not (root / script).is_file():
            return None, f"{script} is not in {root} (the matrix runs from a checkout of the repository)"
        return open_session(None, f"{program} {shlex.quote(str(root / script))}", timeout=60.0), None
    try:
        return InProcessSession(load_module_target(port.target), port.target), None
    except LoadError as error:
        return None, str(error)


def _deviations_documented(port: Port) -> dict[str, str]:
    if port.command:
        return {}
    module = sys.modules.get(port.target.partition(":")[0])
    return dict(getattr(module, "OPTCONFORM_DEVIATIONS", {}))


def run_port(port: Port, dtype: str, root: Path) -> dict:
    """One row of the matrix: the port at ``dtype``."""
    row = {"target": port.target, "dtype": dtype, "versions": _versions(port)}
    session, why_not = _session(port, root)
    if session is None:
        return {**row, "status": "not installed", "reason": why_not}
    try:
        conventions = resolve(session.info.conventions)
        selection = select(load_suite(), conventions, dtype, optional=())
        report = run_cases(session, selection, dtype, conventions, port.target, diagnoser=Diagnoser())
    finally:
        getattr(session, "close", lambda: None)()
    documented = _deviations_documented(port)
    platform = f"platform.subnormals={conventions['platform.subnormals']}"
    return {**row, "status": "ran", "conventions": conventions, "ops": _per_op(report.results),
            "not_run": len(selection.skipped), "platform_source": documented.get(platform, ""),
            "deviations": _deviations(report.results, documented)}


def _per_op(results) -> dict[str, dict]:
    ops = {}
    for op in CASE_OPS:
        mine = [r for r in results if r.op == op]
        counted = status_counts(mine)
        counts = {status: counted[status] for status in ("pass", "fail", "error", "not_implemented")}
        if not mine:
            verdict = "no cases"
        elif counts["not_implemented"] == len(mine):
            verdict = "not implemented"
        elif counts["pass"] == len(mine):
            verdict = "pass"
        else:
            verdict = "fail"
        ops[op] = {"verdict": verdict, "cases": len(mine), **counts}
    return ops


def _deviations(results, documented: dict[str, str]) -> list[dict]:
    """Failing and erring cases grouped by what they show: a named mistake, or no known mistake."""
    groups: dict[tuple[str, str], list] = {}
    for result in results:
        if result.status in ("fail", "error"):
            named = _named(result.diagnosis)
            groups.setdefault((result.op, named), []).append(result)
    found = []
    for (op, named), members in sorted(groups.items()):
        first = members[0]
        found.append({"op": op, "mistake": named, "cases": len(members), "first_case": first.id,
                      "evidence": first.message.splitlines()[0] if first.message else first.status,
                      "source": documented.get(named, "")})
    return found


def _named(diagnosis: str | None) -> str:
    names = mistake_names(diagnosis)
    return names[0] if names else "no known mistake"


# ---------------------------------------------------------------- the files


def _port_rows(port: Port, root: Path) -> list[dict]:
    return [run_port(port, dtype, root) for dtype in DTYPES]


def build_matrix(root: Path, jobs: int | None = None) -> dict:
    """Every port at every dtype, as the JSON document holds it: one port per worker process (spawned, so
    that each framework is imported in a fresh interpreter), the rows in ``PORTS`` order."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from optconform import __version__

    workers = max(1, min(jobs or os.cpu_count() or 1, len(PORTS)))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        rows = [row for rows in pool.map(_port_rows, PORTS, [root] * len(PORTS)) for row in rows]
    return {"optconform": __version__, "ops": list(CASE_OPS), "rows": rows}


def _cell(entry: dict) -> str:
    verdict = entry["verdict"]
    if verdict == "fail":
        return f"**fail** {entry['fail'] + entry['error']}/{entry['cases']}"
    return {"pass": f"pass {entry['pass']}", "not implemented": "not impl.", "no cases": "-"}[verdict]


def _short(target: str) -> str:
    return target.removeprefix(f"{ADAPTERS}.")


def _conventions_said(conventions: dict) -> str:
    from optconform.reference.conventions import DEFAULTS

    different = [f"{name}={value}" for name, value in sorted(conventions.items()) if DEFAULTS.get(name) != value]
    return ", ".join(different) or "the course's"


def render_markdown(document: dict) -> str:
    ops = document["ops"]
    lines = ["# The conformance matrix", "",
             "What each shipped port's framework computes, checked against every golden vector under the "
             "conventions the port declares. Written by `optconform matrix` (do not edit by hand; "
             "`optconform matrix --check` compares a fresh run with `docs/matrix.json`). A cell counts the "
             "cases that pass, or those that fail or err; *not impl.* is an op the library does not have.", ""]
    for dtype in DTYPES:
        lines += [f"## {dtype}", "", "| port | conventions (beyond the course's) | " + " | ".join(ops) + " |",
                  "|---|---|" + "---|" * len(ops)]
        for row in (r for r in document["rows"] if r["dtype"] == dtype):
            if row["status"] != "ran":
                lines.append(f"| {_short(row['target'])} | {row['reason']} |" + " |" * len(ops))
                continue
            cells = " | ".join(_cell(row["ops"][op]) for op in ops)
            lines.append(f"| {_short(row['target'])} | {_conventions_said(row['conventions'])} | {cells} |")
        lines.append("")
    lines += ["## Deviations", "",
              "Each failing group of cases, with the mistake the harness names (or none), the first case's "
              "evidence and, where the port documents it, the place in the library's source.", ""]
    for row in document["rows"]:
        for found in row.get("deviations", []):
            source = f" Source: {found['source']}." if found["source"] else ""
            lines.append(f"- **{_short(row['target'])}** at {row['dtype']}, `{found['op']}`: {found['mistake']} "
                         f"({found['cases']} case{'s' if found['cases'] != 1 else ''}; first "
                         f"`{found['first_case']}`: {found['evidence']}).{source}")
    flushed = {_short(r["target"]): r.get("platform_source", "") for r in document["rows"]
               if r.get("conventions", {}).get("platform.subnormals") == "flushed"}
    if flushed:
        sources = sorted(set(flushed.values()) - {""})
        lines += ["", "Measured `platform.subnormals=flushed`, so the cases built on subnormal numbers are not run, "
                  f"for {', '.join(sorted(flushed))}." + "".join(f" Source: {source}." for source in sources)]
    lines += ["", "## Versions", "", "| port | libraries |", "|---|---|"]
    for row in (r for r in document["rows"] if r["dtype"] == DTYPES[0]):
        said = ", ".join(f"{name} {version}" for name, version in row["versions"].items())
        lines.append(f"| {_short(row['target'])} | {said} |")
    return "\n".join(lines) + "\n"


def verdicts(document: dict) -> dict:
    """What ``--check`` compares: per port and dtype, the conventions, each op's counts and the deviations'
    names and cases (not the versions, nor the evidence's digits)."""
    held = {}
    for row in document["rows"]:
        if row["status"] != "ran":
            continue
        held[(row["target"], row["dtype"])] = {
            "conventions": row["conventions"], "ops": row["ops"],
            "deviations": [(d["op"], d["mistake"], d["cases"], d["first_case"]) for d in row["deviations"]]}
    return held


def docs_folder() -> Path:
    """The checkout's ``docs`` folder (the matrix describes the repository's ports)."""
    import optconform

    return Path(optconform.__file__).resolve().parents[1] / "docs"


def run_matrix(out: Path | None, check: bool) -> int:
    from optconform.errors import EXIT_NONCONFORMING, EXIT_OK, UsageError

    docs = docs_folder()
    root = docs.parent
    document = build_matrix(root)
    if check:
        committed_path = docs / "matrix.json"
        if not committed_path.is_file():
            raise UsageError(f"{committed_path}: no committed matrix to check against (run optconform matrix)")
        committed, fresh = verdicts(json.loads(committed_path.read_text(encoding="utf-8"))), verdicts(document)
        changed = [f"{_short(target)} at {dtype}" for (target, dtype) in sorted(set(committed) | set(fresh))
                   if (target, dtype) in fresh and committed.get((target, dtype)) != fresh[(target, dtype)]]
        absent = [f"{_short(t)} at {d}" for t, d in sorted(set(committed) - set(fresh))]
        if absent:
            print(f"not installed here, not compared: {', '.join(absent)}")
        if changed:
            print(f"the matrix differs from {committed_path} for: {', '.join(changed)}; run optconform matrix "
                  "and review the change")
            return EXIT_NONCONFORMING
        print(f"the matrix agrees with {committed_path} ({len(fresh)} port runs compared)")
        return EXIT_OK
    target = out or docs
    target.mkdir(parents=True, exist_ok=True)
    (target / "matrix.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (target / "matrix.md").write_text(render_markdown(document), encoding="utf-8")
    ran = sum(row["status"] == "ran" for row in document["rows"])
    print(f"wrote {target / 'matrix.md'} and {target / 'matrix.json'}: {ran} of {len(document['rows'])} port runs")
    return EXIT_OK
