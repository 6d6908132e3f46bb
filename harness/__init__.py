"""The harness: from a target to a verdict, in rooms each importing only the ones below it.

- :mod:`.target`: reaching a target (a module, a file or notebook in a sandbox, a program);
- :mod:`.checking`: selecting, calling and comparing the cases, under one typed settings object;
- :mod:`.diagnosis`: which known mistake a failing output matches;
- :mod:`.reporting`: a run as text, JSON, JUnit, Gradescope, PrairieLearn, and the feedback pages;
- :mod:`.grading`: a whole class, from submissions to gradebook and feedback;
- on top: :mod:`.selftest`, :mod:`.pytest_plugin` and the command line (:mod:`optconform.cli`).

:mod:`.adapters` (ports of real frameworks) stands apart: it needs only the reference.
``docs/architecture.md`` is the map.
"""
