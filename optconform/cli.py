"""The ``optconform`` command: check, generate, grade, list.

Exit codes: 0 all conform (or the command succeeded), 1 some do not (or
``generate --check`` found differences), 2 a usage or input error. Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from optconform.errors import EXIT_NONCONFORMING, EXIT_OK, EXIT_USAGE, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _generate(args) -> int:
    from optconform.reference.catalogue import DEFAULT_SEED
    from optconform.vectors import generate, shipped_dir

    out = Path(args.out) if args.out else shipped_dir()
    recorded = _manifest(out) if args.check else {}
    seed = args.seed if args.seed is not None else recorded.get("seed", DEFAULT_SEED)
    visibility = args.visibility or recorded.get("visibility")
    if args.check:
        if not out.is_dir():
            raise UsageError(f"{out}: no such vector directory")
        problems = generate.check_suite(out, seed, visibility)
        for line in problems:
            print(line)
        if problems:
            print(f"{len(problems)} difference(s) between {out} and the reference "
                  f"(regenerate with: optconform generate{'' if args.out is None else ' --out ' + args.out})",
                  file=sys.stderr)
            return EXIT_NONCONFORMING
        print(f"{out}: up to date with the reference")
        return EXIT_OK
    if args.out is None and args.seed is not None:
        raise UsageError("--seed without --out would overwrite the shipped vectors; give --out DIR")
    if args.out is None and any(part in ("site-packages", "dist-packages") for part in out.parts):
        raise UsageError(f"{out} is an installed package's copy of the vectors: give --out DIR (regenerating the "
                         "shipped set is for a source checkout)")
    try:
        written = generate.write_suite(out, seed, visibility)
    except OSError as error:
        raise UsageError(f"cannot write to {out}: {error.strerror or error}") from None
    print(f"wrote {len(written)} files to {out}")
    return EXIT_OK


def _manifest(directory: Path) -> dict:
    """A vector directory's manifest (its seed and visibility), or {} where there is none to read."""
    import json

    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _list(args) -> int:
    from optconform.harness.checking.selection import list_suite

    print(list_suite(args.vectors, args.ops, args.format, args.allow_modified))
    return EXIT_OK


#: The options of check and grade that the assignment file may also set (the command line wins).
_FILE_SETTINGS = ("course", "ops", "dtype", "vectors", "visibility", "skip", "xfail", "timeout", "memory")


def settings_from(args, **fixed):
    """The run's :class:`~optconform.harness.checking.settings.Settings`, built once from the command line's
    options and the assignment file; nothing below the command line reads ``args``."""
    from optconform.harness.grading.assignment import build_settings

    given = {key: getattr(args, key) for key in _FILE_SETTINGS}
    given["conventions"] = tuple(args.convention)
    return build_settings(given, args.config, allow_modified=args.allow_modified, **fixed)


def _check(args) -> int:
    from optconform.harness.checking.run import LoadFailure, run_target
    from optconform.harness.diagnosis import Diagnoser
    from optconform.harness.reporting import render
    from optconform.harness.reporting.text import summary_line

    if bool(args.target) == bool(args.cmd):
        raise UsageError("give exactly one of TARGET or --cmd")
    graded = args.format in ("gradescope", "prairielearn")  # a student's file: never run unconfined by accident
    settings = settings_from(args, sandbox="off" if args.no_sandbox else "required" if graded else "auto",
                             in_process=not args.isolate, graded=graded, max_failures=args.max_failures,
                             module=args.module)
    if graded and not args.no_sandbox and args.target:
        from optconform.harness.target.sandbox import exposed

        reason = exposed([Path(args.target).resolve().parent, *([settings.vectors] if settings.vectors else [])])
        if reason:
            raise UsageError(reason)
    try:
        report = run_target(settings, args.target, args.cmd, diagnoser=Diagnoser(graded), quiet=args.quiet)
    except LoadFailure as failure:
        if args.output:  # a results file is always written (a Gradescope run needs one); the exit stays 2
            _write(args.output, render(failure.report, args.format))
        raise
    if args.quiet and args.format == "text":
        text = summary_line(report)  # the verdict only
    else:
        text = render(report, args.format, verbose=args.verbose)
    if args.output:
        _write(args.output, text)
        print(render(report, "text") if args.format == "text" else summary_line(report))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    xpassed = [r.id for r in report.results if r.xfail and r.status == "pass"]
    if args.strict_xfail and xpassed:  # as pytest's xfail_strict: an xfail that passes fails
        print(f"optconform: {len(xpassed)} case(s) listed as xfail pass (--strict-xfail): {', '.join(xpassed[:5])}",
              file=sys.stderr)
        return EXIT_NONCONFORMING
    return EXIT_OK if report.conforms else EXIT_NONCONFORMING


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def _selftest(args) -> int:
    from optconform.harness.selftest.command import run_selftest

    return run_selftest(args.vectors, args.jobs, args.only, args.full, args.equivalents, args.format, args.output,
                        args.verbose, args.harness)


def _init(args) -> int:
    from optconform.harness.grading.assignment import INIT_TEXT

    path = Path(args.out)
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists: pass --force to overwrite it")
    path.write_text(INIT_TEXT, encoding="utf-8")
    print(f"wrote {path} for the 2021+ version of the course assignment (mini-batches, momentum, Adam, gradient "
          "descent and the learning-rate decays: every student must define update_lr and schedule_lr_decay too).\n"
          'For the 2017 or 2018 version (mini-batches, momentum and Adam only), set course = "2017" or "2018" in '
          "it; then edit the conventions and points, and run optconform grade")
    return EXIT_OK


def _autograder(args) -> int:
    from optconform.harness.grading.autograder import command

    return command(args.config, args.vectors, args.lms, args.out)


def _matrix(args) -> int:
    from optconform.harness.matrix import run_matrix

    return run_matrix(Path(args.out) if args.out else None, args.check)


def _doctor(args) -> int:
    from optconform.harness.target.sandbox import describe, probe

    print(describe())
    return EXIT_OK if probe() is None else EXIT_NONCONFORMING


def _grade(args) -> int:
    from optconform.harness.grading.grade import GradePlan, run_grade

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    settings = settings_from(args, sandbox="off" if args.no_sandbox else "required", graded=True)
    plan = GradePlan(submissions=tuple(args.submissions), out=Path(args.out), jobs=args.jobs, force=args.force,
                     executor=args.executor, scheduler=args.scheduler)
    return run_grade(settings, plan)


def add_check_options(parser: argparse.ArgumentParser, grading: bool = False) -> None:
    """The selection and run options shared by ``check`` and ``grade`` (``grading``: the conventions are the
    instructor's, a submission's own declaration is ignored)."""
    parser.add_argument("--config", metavar="FILE",
                        help="the assignment file (default: optconform.toml, or [tool.optconform] in pyproject.toml, "
                             "in the current directory); options given here win")
    parser.add_argument("--ops", help="comma-separated ops or families to run (e.g. adam, momentum.update; default: "
                                      "the course version's ops)")
    parser.add_argument("--course", choices=("2017", "2018", "2021"),
                        help="the version of the course assignment, which names the ops: 2017 and 2018 have "
                             "mini-batches, momentum and Adam; 2021 (and later) adds gradient descent and the "
                             "learning-rate decays (--ops wins; default 2021)")
    parser.add_argument("--convention", action="append", default=[], metavar="KEY=VALUE",
                        help=("the convention the class is graded under; a submission's own declaration is "
                              "ignored (repeatable; default: the assignment file's, else each convention's default)")
                        if grading else ("override a convention the target declares (repeatable; default: the "
                                         "target's own, else each convention's default; see optconform list)"))
    parser.add_argument("--dtype", choices=("float64", "float32"),
                        help="the precision the implementation computes in; picks the tolerances (default float64)")
    parser.add_argument("--vectors", metavar="DIR", help="another vector set (e.g. from generate --seed; default: "
                                                         "the shipped set)")
    parser.add_argument("--skip", metavar="FILE",
                        help="case ids to skip, one a line (exact, or a glob such as adam.update/*/t-*), # comments "
                             "(default: none)")
    parser.add_argument("--xfail", metavar="FILE", help="case ids expected to fail, one a line (exact, or a glob; "
                                                        "default: none)")
    parser.add_argument("--memory", type=int, metavar="MB",
                        help="the address space a submission's process may use (default 2048; a 4096 x 4096 "
                             "layer through the child needs about 8192)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="per-call time limit for a child process (default 10)")
    parser.add_argument("--allow-modified", action="store_true",
                        help="use a --vectors set whose files no longer match its manifest (each is then validated; "
                             "by default such a set is refused)")
    parser.add_argument("--visibility", choices=("visible", "hidden"),
                        help="override the vector set's visibility: hidden cases never show inputs, expected "
                             "or returned values (default: the set's manifest; the shipped set is visible)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optconform", description="Conformance suite for mini-batch, momentum and Adam steps.")
    from optconform import __version__

    parser.add_argument("--version", action="version", version=f"optconform {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="run the vectors against a target")
    check.add_argument("target", nargs="?", help="module, module:object, file.py or notebook.ipynb")
    check.add_argument("--cmd", help="a program speaking the wire protocol, instead of a TARGET (see docs/ports.md; "
                                     "by default the TARGET is checked)")
    check.add_argument("--module", action="store_true",
                       help="TARGET is a module to import (trusted code) even though its name has no dot; "
                            "by default a bare NAME is the file NAME.py (or NAME.ipynb), run in the sandbox")
    check.add_argument("--isolate", action="store_true",
                       help="run a module target in a sandboxed child process (with --timeout), as files are "
                            "(by default a module runs in this process)")
    add_check_options(check)
    check.add_argument("--format", choices=("text", "json", "junit", "gradescope", "prairielearn"), default="text",
                       help="the report's format (default text): json (the whole report), junit (CI), gradescope or "
                            "prairielearn (their results files)")
    check.add_argument("--output", metavar="FILE", help="write the report here (the summary still prints; default: "
                                                        "standard output)")
    check.add_argument("--verbose", "-v", action="store_true",
                       help="every failing case in full (by default: each mistake once, at most 3 cases per op), "
                            "and the passing ones")
    check.add_argument("--quiet", "-q", action="store_true", help="only the verdict line (default: the report)")
    check.add_argument("--max-failures", type=int, metavar="N",
                       help="stop after N failing cases (the rest are listed as not run; default: no limit)")
    check.add_argument("--strict-xfail", action="store_true",
                       help="a case listed in --xfail that passes fails the run (as pytest's xfail_strict; by "
                            "default it is only reported)")
    check.add_argument("--no-sandbox", action="store_true",
                       help="run a .py or .ipynb target unconfined (by default it runs in a sandbox where this "
                            "machine has one, with a warning where it does not; with --format gradescope or "
                            "prairielearn a sandbox is required)")
    check.set_defaults(run=_check)

    generate = sub.add_parser("generate", help="write the golden vectors from the reference")
    generate.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on differences "
                          "(default: write)")
    generate.add_argument("--seed", type=int, help="a private set: same catalogue, fresh numbers (default: the "
                                                   "shipped set's seed)")
    generate.add_argument("--out", metavar="DIR", help="where to write (default: the shipped vectors)")
    generate.add_argument("--visibility", choices=("visible", "hidden"),
                          help="whether feedback may show the set's values (default: hidden for --seed, "
                               "visible for the shipped set; --check reads it from the manifest)")
    generate.set_defaults(run=_generate)

    grade = sub.add_parser("grade", help="grade many submissions into a gradebook and feedback",
                           description="Grade many submissions into a gradebook, per-student feedback and the file "
                                       "each LMS imports grades from. Give .py files, .ipynb notebooks, folders of "
                                       "them, or an LMS's export zip (Gradescope, Canvas, Moodle): students are "
                                       "named from it.")
    grade.add_argument("submissions", nargs="+", help=".py files, .ipynb notebooks, directories of them, or an LMS's "
                                                      "export zip (Gradescope, Canvas, Moodle)")
    add_check_options(grade, grading=True)
    grade.add_argument("--out", metavar="DIR", default="grades",
                       help="where the gradebook and feedback go (default: grades)")
    grade.add_argument("--jobs", type=int, default=None,
                       help="submissions graded at once, by the local executor (default: one per core)")
    grade.add_argument("--force", action="store_true",
                       help="grade every submission again (by default a file unchanged since the last run into "
                            "the same --out, under the same set-up, keeps its result)")
    grade.add_argument("--executor", choices=("local", "dask"), default="local",
                       help="local: worker processes here (default); dask: tasks on a Dask cluster")
    grade.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                                              "(required with --executor dask; no default)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="grade without the sandbox (refused by default where none can be set up)")
    grade.set_defaults(run=_grade)

    selftest = sub.add_parser("selftest", help="mutation-test the reference against the vectors: every mutant "
                              "killed or listed as equivalent, every known mistake caught, correct variants pass")
    selftest.add_argument("--vectors", metavar="DIR", help="another vector set (default: the shipped set)")
    selftest.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    selftest.add_argument("--only", metavar="REGEX", help="only matching mutants, no other check (default: all)")
    selftest.add_argument("--full", action="store_true", help="every case that kills a mutant (default: the first)")
    selftest.add_argument("--equivalents", metavar="FILE", help="the file of equivalent mutants (default: the "
                          "shipped one, equivalent_mutants.txt or, with --harness, equivalent_harness_mutants.txt)")
    selftest.add_argument("--harness", action="store_true",
                          help="mutate the harness's comparison, diagnosis matching, withholding and gradebook instead, "
                          "killed by the checkout's tests (needs a checkout and the dev extras; default: the reference)")
    selftest.add_argument("--format", choices=("text", "json"), default="text",
                          help="text (default) or json: the whole kill matrix")
    selftest.add_argument("--output", metavar="FILE", help="write the report here (default: standard output)")
    selftest.add_argument("--verbose", "-v", action="store_true", help="the whole kill matrix (default: survivors)")
    selftest.set_defaults(run=_selftest)

    autograder = sub.add_parser("autograder", help="build the autograder of the assignment: Gradescope's zip, or the "
                                "build folder of a PrairieLearn external grader's image")
    autograder.add_argument("--config", metavar="FILE", help="the assignment file (default: optconform.toml here)")
    autograder.add_argument("--vectors", metavar="DIR", help="a private vector set to bundle (default: the "
                            "assignment file's)")
    autograder.add_argument("--lms", choices=("gradescope", "prairielearn"), default="gradescope",
                            help="where the class is graded (default: gradescope)")
    autograder.add_argument("--out", metavar="PATH",
                            help="where to write it (default: autograder.zip for Gradescope, the folder "
                                 "prairielearn-grader for PrairieLearn)")
    autograder.set_defaults(run=_autograder)

    init = sub.add_parser("init", help="write a commented optconform.toml (the assignment file)")
    init.add_argument("--out", default="optconform.toml", metavar="FILE",
                      help="where to write it (default: optconform.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file (default: refuse to)")
    init.set_defaults(run=_init)

    matrix = sub.add_parser("matrix", help="run every shipped port at float64 and float32 and write the "
                            "conformance matrix (docs/matrix.md and docs/matrix.json)")
    matrix.add_argument("--out", metavar="DIR", help="where to write it (default: the checkout's docs folder)")
    matrix.add_argument("--check", action="store_true", help="compare with the committed docs/matrix.json instead, "
                        "failing where a verdict differs (default: write)")
    matrix.set_defaults(run=_matrix)

    doctor = sub.add_parser("doctor", help="what isolation this machine gives untrusted submissions")
    doctor.set_defaults(run=_doctor)

    listing = sub.add_parser("list", help="the ops, conventions, tags and cases")
    listing.add_argument("--ops", help="comma-separated ops or families to list (default: all)")
    listing.add_argument("--vectors", metavar="DIR", help="another vector set (default: the shipped set)")
    listing.add_argument("--allow-modified", action="store_true", help="list a modified set (default: refused)")
    listing.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    listing.set_defaults(run=_list)
    return parser


def _input_errors() -> tuple[type, ...]:
    """The project's usage and input errors, wherever a command lets one through (exit 2, one line)."""
    from optconform.harness.checking.selection import SelectionError
    from optconform.harness.grading.assignment import AssignmentError
    from optconform.harness.target.loader import LoadError
    from optconform.harness.target.session import TargetError
    from optconform.reference.conventions import ConventionError
    from optconform.vectors import VectorError

    return (VectorError, SelectionError, TargetError, ConventionError, LoadError, AssignmentError)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as error:
        print(f"optconform: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        sys.stderr.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # noqa: BLE001 - the input errors below are one line, anything else is a bug
        if not isinstance(error, _input_errors()):
            raise
        text = str(error).strip()
        print(f"optconform: error: {text.splitlines()[0] if text else type(error).__name__}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("optconform: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run as ``python -m optconform.cli``, this file is ``__main__``, and its UsageError is not the one the
    # commands import from ``optconform.cli``: run the imported module's main so the two are one class.
    from optconform.cli import main as _main

    sys.exit(_main())
