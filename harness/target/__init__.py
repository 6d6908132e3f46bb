"""Reaching a target: loading it, calling it, and the wire between.

A Python module is called in this process (:mod:`.adapter`); a ``.py`` file or a
notebook is loaded (:mod:`.loader`) by the child server (:mod:`.child`) in a sandbox
(:mod:`.sandbox`); a ``--cmd`` program is any process speaking the wire protocol
(:mod:`.protocol`). :mod:`.session` gives all three one interface (``call``,
``call_stream``, ``call_chain``). What a grading process has already sent and read is
remembered by :mod:`.request_lines` and :mod:`.answers`; :mod:`.readonly` makes what is
shared read-only.

This package imports nothing of the layers above it; the child server's modules
(``child``, ``protocol``, ``adapter``, ``loader``) import nothing but each other and the
vectors' codec, since they are all a sandbox holds.
"""
