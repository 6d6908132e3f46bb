"""Rendering a :class:`~optconform.harness.checking.results.RunReport` for people and machines.

``render(report, fmt)`` turns one run into one of four formats:

- ``text``: for a person at a terminal. A summary that can be taken in at a glance
  comes first (target, dtype, conventions, counts per status, counts per op, the
  diagnosis summary and warnings); then every failing or erroring case with what
  differs, the likely mistake, why the case exists and the details; then the ops
  not implemented (one line each), the expected failures (``--xfail``), and, with
  ``verbose=True``, the passing cases.
- ``json``: ``RunReport.to_json()``, always valid JSON (non-finite floats become
  the strings ``"nan"``, ``"inf"``, ``"-inf"``, as in the vectors).
- ``junit``: JUnit XML (``<testsuites>`` root, one ``<testsuite>`` per op, one
  ``<testcase>`` per case) for CI test reporters (GitHub, GitLab, Jenkins).
- ``gradescope``: the ``results.json`` of Gradescope's autograder specification
  (:mod:`.gradescope`); ``prairielearn``: PrairieLearn's (:mod:`.prairielearn`).

Each format is a module of this package; the feedback pages are :mod:`.pages`.

A failing case listed in the ``--xfail`` file counts as an expected failure, not as
a failure, in every format.

The reports read the result model (and the course's function names) and nothing else.
"""

from __future__ import annotations

from optconform.harness.checking.results import RunReport

#: The formats :func:`render` knows.
FORMATS = ("text", "json", "junit", "gradescope", "prairielearn")


def render(report: RunReport, fmt: str, *, verbose: bool = False) -> str:
    """Render ``report`` as ``fmt`` (one of :data:`FORMATS`) and return the text.

    ``verbose`` (text only) also lists the passing and skipped cases. The text has
    no final newline (add one when writing a file). JUnit XML is returned without
    an XML declaration: write it encoded as UTF-8 (XML's default encoding).
    """
    from .jsonsafe import dumps

    if fmt == "text":
        from .text import render_text

        return render_text(report, verbose=verbose)
    if fmt == "json":
        return dumps(report.to_json())
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(report)
    if fmt == "prairielearn":
        from .prairielearn import prairielearn_results

        return dumps(prairielearn_results(report))
    if fmt == "gradescope":
        from .gradescope import gradescope_results

        return dumps(gradescope_results(report))
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")

