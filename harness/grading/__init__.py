"""Grading a class: find submissions -> grade each sandboxed -> gradebook -> feedback.

:mod:`.submissions` (with :mod:`.exports` and :mod:`.choice`) finds each student's file;
:mod:`.sandboxed` grades one, :mod:`.executors` many, here or on Dask; :mod:`.resume`
keeps results between runs; :mod:`.gradebook` and :mod:`.feedback` write what the
instructor and each student read; :mod:`.grade` runs the whole. :mod:`.assignment` reads
the assignment file into the run's settings; :mod:`.autograder` packs and runs the
Gradescope autograder.
"""
