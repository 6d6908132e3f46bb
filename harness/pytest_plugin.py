"""The pytest plugin: ``pytest --optconform-target=TARGET`` makes every case a test item.

Registered under the ``pytest11`` entry point, so a port's own test suite gates
on the vectors with one flag. The options mirror ``optconform check``. A case the
target does not implement is skipped (with the reason), an ``--optconform-xfail``
entry is an expected failure, and a failure reads like the text report: the
message, the likely mistake, and why the case exists.
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


def pytest_configure(config):
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
        from ..reference.conventions import resolve
        from ..vectors import load_suite
        from .selection import CaseIdList, parse_conventions, parse_ops, select
        from .session import open_session

        option = config.option
        if setting(config, "target") and setting(config, "cmd"):
            raise ValueError("give one of --optconform-target and --optconform-cmd, not both")
        self.dtype = setting(config, "dtype")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"--optconform-dtype must be float64 or float32, not {self.dtype!r}")
        cases = load_suite(setting(config, "vectors"))
        self.session = open_session(setting(config, "target"), setting(config, "cmd"),
                                    float(setting(config, "timeout")), in_process=not option.optconform_isolate)
        self.conventions = resolve(self.session.info.conventions,
                                   parse_conventions(list(setting(config, "convention"))))
        self.selection = select(cases, self.conventions, self.dtype, parse_ops(setting(config, "ops")),
                                CaseIdList.read(setting(config, "skip")), CaseIdList.read(setting(config, "xfail")),
                                self.session.info.ops)


class CaseItem(pytest.Item):
    def __init__(self, *, case, run, **kwargs):
        super().__init__(**kwargs)
        self.case, self.run = case, run
        if case.id in run.selection.xfail:
            self.add_marker(pytest.mark.xfail(reason="listed in the xfail file", strict=False))

    def runtest(self):
        from .runner import run_case

        result = run_case(self.case, self.run.session, self.run.dtype, self.run.conventions)
        if result.status == "not_implemented":
            pytest.skip(result.message)
        if result.status != "pass":
            lines = [f"{result.status}: {result.message}"]
            if result.diagnosis:
                lines.append(f"likely mistake: {result.diagnosis}")
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
    for case in run.selection.run:
        item = CaseItem.from_parent(session, name=case.id, case=case, run=run)
        item.add_marker(case.op.split(".")[0])  # -m adam selects the adam cases
        items.append(item)


def pytest_unconfigure(config):
    run = getattr(config, "_optconform_run", None)
    if run is not None:
        run.session.close()
