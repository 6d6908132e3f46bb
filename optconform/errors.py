"""The error any layer may raise for the command line to report, and the command line's exit codes.

It sits below every other module of the package, so that a layer deep down (reading the
vectors, grading a class) can say "this is the user's mistake" without importing the
command line above it.
"""

#: 0: every case conforms, or the command succeeded; 1: some case does not conform (or ``generate --check``
#: found differences, or the grader failed on a submission); 2: a usage or input error.
EXIT_OK, EXIT_NONCONFORMING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A usage or input error: printed as one line, exit code 2."""
