"""The pytest plugin: ``pytest --optconform-target=TARGET`` makes every case a test item.

Registered under the ``pytest11`` entry point, so a port's own test suite gates
on the vectors with one flag. The options mirror ``optconform check``. A case the
target does not implement is skipped (with the reason), an ``--optconform-xfail``
entry is an expected failure, and a failure reads like the text report: the
message, the likely mistake, and why the case exists.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("optconform", "optimizer conformance against the optconform vectors")
    group.addoption("--optconform-target", help="module, module:object, file.py or notebook.ipynb to check")
    group.addoption("--optconform-cmd", help="a program speaking the optconform wire protocol")
    group.addoption("--optconform-dtype", choices=("float64", "float32"), default="float64")
    group.addoption("--optconform-convention", action="append", default=[], metavar="KEY=VALUE")
    group.addoption("--optconform-ops", help="comma-separated ops or families")
    group.addoption("--optconform-vectors", metavar="DIR", help="another vector set")
    group.addoption("--optconform-skip", metavar="FILE")
    group.addoption("--optconform-xfail", metavar="FILE")
    group.addoption("--optconform-timeout", type=float, default=10.0)
    group.addoption("--optconform-isolate", action="store_true",
                    help="run a module target in a sandboxed child process, as files are")


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
        cases = load_suite(option.optconform_vectors) if option.optconform_vectors else load_suite()
        self.session = open_session(option.optconform_target, option.optconform_cmd, option.optconform_timeout,
                                    in_process=not option.optconform_isolate)
        self.dtype = option.optconform_dtype
        self.conventions = resolve(self.session.info.conventions, parse_conventions(option.optconform_convention))
        self.selection = select(cases, self.conventions, self.dtype, parse_ops(option.optconform_ops),
                                CaseIdList.read(option.optconform_skip), CaseIdList.read(option.optconform_xfail),
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
    if not (config.option.optconform_target or config.option.optconform_cmd):
        return
    try:
        run = _Run(config)
    except Exception as error:  # noqa: BLE001 - reported as a usage error, one line
        raise pytest.UsageError(f"optconform: {error}") from None
    config._optconform_run = run
    for case in run.selection.run:
        items.append(CaseItem.from_parent(session, name=case.id, case=case, run=run))


def pytest_unconfigure(config):
    run = getattr(config, "_optconform_run", None)
    if run is not None:
        run.session.close()
