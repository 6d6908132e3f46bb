"""The pytest plugin: ``pytest --optconform-target=TARGET`` makes every case a test item.

Registered under the ``pytest11`` entry point, so a port's own test suite gates
on the vectors with one flag. The options mirror ``optconform check``. A case the
target does not implement is skipped (with the reason), an ``--optconform-xfail``
entry is an expected failure, and a failure reads like the text report: the
message, the likely mistake, and why the case exists.

Items live under a root collector ``optconform`` and one collector per op, so the
case ``adam.update/outside_sqrt/t-1`` has the node id
``optconform::adam.update::outside_sqrt/t-1`` (JUnit ``classname`` ``optconform.adam.update``).
A node id given on the command line (``pytest ... "optconform::adam.update::outside_sqrt/t-1"``,
``optconform::adam.update``, or ``optconform::`` + a case id) selects those cases; pytest
would otherwise look for a file of that name.
"""

from __future__ import annotations

import pytest

#: Every option: its name after ``--optconform-``, its help, and its default. Each can also be set in
#: ``pytest.ini`` / ``[tool.pytest.ini_options]`` as ``optconform_<name>`` (the command line wins).
OPTIONS = {
    "target": ("module, module:object, file.py or notebook.ipynb to check", None),
    "cmd": ("a program speaking the optconform wire protocol", None),
    "dtype": ("float64 or float32: the precision the implementation computes in", "float64"),
    "ops": ("comma-separated ops or families", None),
    "vectors": ("another vector set", None),
    "skip": ("a file of case ids (or globs) to skip", None),
    "xfail": ("a file of case ids (or globs) expected to fail", None),
    "timeout": ("per-call time limit, seconds, for a child process", "10"),
}


def pytest_addoption(parser):
    group = parser.getgroup("optconform", "optimizer conformance against the optconform vectors")
    for name, (help_text, default) in OPTIONS.items():
        group.addoption(f"--optconform-{name}", help=help_text + (f" (default {default})" if default else ""))
        parser.addini(f"optconform_{name}", help_text, default=default)
    group.addoption("--optconform-convention", action="append", default=[], metavar="KEY=VALUE")
    parser.addini("optconform_convention", "conventions, KEY=VALUE, one a line", type="linelist", default=[])
    group.addoption("--optconform-isolate", action="store_true",
                    help="run a module target in a sandboxed child process, as files are")


#: A command-line argument that names optconform items rather than a file.
ROOT = "optconform"


def pytest_configure(config):
    # Node ids of our items are not paths: take them out of pytest's collection arguments, keep them to
    # select with. Only when a target is set; otherwise pytest reports the unknown path as usual.
    if setting(config, "target") or setting(config, "cmd"):
        wanted = [arg for arg in config.args if arg == ROOT or arg.startswith(ROOT + "::")]
        config.args[:] = [arg for arg in config.args if arg not in wanted]
        config._optconform_wanted = wanted
    for family in ("mini_batches", "momentum", "adam", "gd", "rmsprop", "lr_decay"):
        config.addinivalue_line("markers", f"{family}: optconform cases of the {family} ops (-m {family})")


def setting(config, name: str):
    """An option's value: the command line's, else the ini file's ``optconform_<name>``, else its default."""
    given = getattr(config.option, f"optconform_{name}")
    return given if given not in (None, []) else config.getini(f"optconform_{name}")


class CaseFailure(Exception):
    """A case that does not conform; its text is the whole failure report."""


class _Run:
    """The target session and selection, opened once for all items."""

    def __init__(self, config):
        from optconform.harness.checking.selection import CaseIdList, parse_conventions, parse_ops, select
        from optconform.harness.target.loader import is_file_target
        from optconform.harness.target.session import open_session
        from optconform.reference.conventions import resolve
        from optconform.vectors import load_suite

        option = config.option
        if setting(config, "target") and setting(config, "cmd"):
            raise ValueError("give one of --optconform-target and --optconform-cmd, not both")
        self.dtype = setting(config, "dtype")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"--optconform-dtype must be float64 or float32, not {self.dtype!r}")
        cases = load_suite(setting(config, "vectors"))
        target = setting(config, "target")
        self.session = open_session(target, setting(config, "cmd"), float(setting(config, "timeout")),
                                    in_process=not option.optconform_isolate,
                                    module=bool(target) and not is_file_target(target))  # a port's own module
        self.conventions = resolve(self.session.info.conventions,
                                   parse_conventions(list(setting(config, "convention"))))
        self.selection = select(cases, self.conventions, self.dtype, parse_ops(setting(config, "ops")),
                                CaseIdList.read(setting(config, "skip")), CaseIdList.read(setting(config, "xfail")),
                                self.session.info.ops)
        self.pairs_seen: set[str] = set()  # pairs of mistakes named so far, tried first on later cases


class CaseGroup(pytest.Collector):
    """The root ``optconform`` collector, or one op's: its items are made at collection's end."""

    def collect(self):
        return []


def _op_groups(session) -> dict:
    root = CaseGroup.from_parent(session, name=ROOT, nodeid=ROOT)
    groups = {}

    def group(op: str) -> CaseGroup:
        if op not in groups:
            groups[op] = CaseGroup.from_parent(root, name=op)
        return groups[op]

    return group


def _selected_by(item, wanted: str) -> bool:
    """Whether the command-line node id ``wanted`` names ``item`` (or a collector above it)."""
    return (item.nodeid == wanted or item.nodeid.startswith(wanted + "::")
            or wanted == f"{ROOT}::{item.case.id}")


class CaseItem(pytest.Item):
    def __init__(self, *, case, run, **kwargs):
        super().__init__(**kwargs)
        self.case, self.run = case, run
        if case.id in run.selection.xfail:
            self.add_marker(pytest.mark.xfail(reason="listed in the xfail file", strict=False))

    def runtest(self):
        from optconform.harness.checking.runner import run_case
        from optconform.harness.diagnosis import Diagnoser
        from optconform.harness.reporting.text import mistake_said, why_shown

        result = run_case(self.case, self.run.session, self.run.dtype, self.run.conventions,
                          pairs_seen=self.run.pairs_seen, diagnoser=Diagnoser())
        if result.status == "not_implemented":
            pytest.skip(result.message)
        if result.status != "pass":
            lines = [f"{result.status}: {result.message}"]
            if result.diagnosis:
                lines.append(f"likely mistake: {mistake_said(result.diagnosis)}")
            if why_shown(result):
                lines.append(f"this case exists to catch: {result.why}")
            lines += [f"  {detail}" for detail in result.details[1:]]
            raise CaseFailure("\n".join(lines))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"optconform {self.case.id}"


def pytest_collection_modifyitems(session, config, items):
    if not (setting(config, "target") or setting(config, "cmd")):
        return
    try:
        run = _Run(config)
    except Exception as error:  # noqa: BLE001 - reported as a usage error, one line
        raise pytest.UsageError(f"optconform: {error}") from None
    config._optconform_run = run
    group, ours = _op_groups(session), []
    for case in run.selection.run:
        name = case.id[len(case.op) + 1:] if case.id.startswith(case.op + "/") else case.id
        item = CaseItem.from_parent(group(case.op), name=name, case=case, run=run)
        item.add_marker(case.op.split(".")[0])  # -m adam selects the adam cases
        ours.append(item)
    wanted = getattr(config, "_optconform_wanted", [])
    if wanted:
        unknown = [w for w in wanted if not any(_selected_by(item, w) for item in ours)]
        if unknown:
            raise pytest.UsageError(f"optconform: no selected case has the node id {unknown[0]!r}")
        ours = [item for item in ours if any(_selected_by(item, w) for w in wanted)]
    items.extend(ours)
    # the items are made after the collectors ran: reported as collected, so "collected N items" counts them
    config.hook.pytest_collectreport(report=pytest.CollectReport(ROOT, "passed", None, ours))


def pytest_unconfigure(config):
    run = getattr(config, "_optconform_run", None)
    if run is not None:
        run.session.close()
