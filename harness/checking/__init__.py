"""Checking: which cases run (:mod:`.selection`), how each is called and compared (:mod:`.checks`,
:mod:`.compare`), a whole run (:mod:`.runner`, :mod:`.run`) and its results (:mod:`.results`), under one
typed :class:`~.settings.Settings` and the assignment's :class:`~.points.Points`.

A failing case is explained by a diagnoser handed in from above (:class:`.runner.Diagnoser`).
"""
