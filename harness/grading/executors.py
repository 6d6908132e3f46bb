"""Where submissions are graded: worker processes on this machine, or a Dask cluster.

Each executor takes the submissions and yields one :class:`Graded` per submission as it
completes; the grader writes everything (gradebook, feedback) itself, afterwards. Every
submission runs in its own sandboxed child wherever it is graded: a worker here, or a
Dask worker on another machine, runs exactly :func:`.sandboxed.grade_one`.

- ``local`` (the default): a process pool, one worker per job slot, each with the
  vectors loaded once. Comparison and diagnosis run in the workers, so every core
  works (the parent only collects results).
- ``dask``: each submission is a task on a ``distributed`` cluster (``--scheduler
  ADDRESS``); the task carries the file's bytes, so workers need no shared file system,
  only optconform (with its sandbox) installed. A private ``--vectors DIR`` must exist
  at the same path on the workers.
"""

from __future__ import annotations

import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from optconform.errors import UsageError
from optconform.harness.checking.run import Prepared, prepare
from optconform.harness.checking.settings import Settings

from .graded import Graded, one_line
from .sandboxed import grade_one

EXECUTORS = ("local", "dask")

_PREPARED: dict = {}


def _prepared(settings: Settings) -> Prepared:
    """The selection inputs (ops, conventions, skip and xfail lists, cases), made once per worker process
    (a forked worker finds the grader's own, see :func:`local`)."""
    key = repr(settings)
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = prepare(settings)
    return _PREPARED[key]


def _share_before_fork(settings: Settings, prepared: Prepared) -> None:
    """The loaded vectors, which every worker would otherwise load again (about 150 ms a worker).

    The known mistakes' outputs are not computed here: the diagnosis computes a mistake's outputs on a case
    only when a failing answer to that case is compared with them, and its work is bounded per function
    (:class:`optconform.harness.diagnosis.Diagnoser`), so a worker computes a fraction of the catalogue's
    outputs, once (they are kept with the case). Computing all of them before the workers start costs a
    second of one core while the other waits, more than the workers' own share costs them in parallel
    (``benchmarks/bench_class.py``)."""
    _PREPARED.clear()
    _PREPARED[repr(settings)] = prepared


def _grade_here(submission, settings: Settings):
    return grade_one(submission, settings, _prepared(settings), threading.Event())


def _graded_or_error(submission, run):
    try:
        return run()
    except Exception as error:  # noqa: BLE001 - a worker lost (killed, out of memory) costs one row, not the run
        return Graded(submission, "grader_error", reason=one_line(f"grader error: {type(error).__name__}: {error}"))


def local(submissions, settings: Settings, jobs: int, prepared: Prepared | None = None):
    """Grade in ``jobs`` worker processes; yields each Graded as it completes. Where workers are forked
    (Linux), they start with the grader's ``prepared`` vectors."""
    if prepared is not None:
        _share_before_fork(settings, prepared)
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(submissions)))) as pool:
        futures = {pool.submit(_grade_here, submission, settings): submission for submission in submissions}
        try:
            for future in as_completed(futures):
                yield _graded_or_error(futures[future], future.result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _grade_shipped(submission, content: bytes, settings: Settings):
    """A Dask task: the submission's bytes written to a private folder here, graded, its own path restored."""
    from dataclasses import replace

    if submission.problem:
        return _grade_here(submission, settings)
    with tempfile.TemporaryDirectory(prefix="optconform-task-") as folder:
        local_copy = Path(folder) / submission.path.name
        local_copy.write_bytes(content)
        graded = _grade_here(replace(submission, path=local_copy), settings)
    graded.submission = submission
    return graded


def dask(submissions, settings: Settings, scheduler: str):
    """Grade on the Dask cluster at ``scheduler``; yields each Graded as it completes."""
    try:
        from distributed import Client
        from distributed import as_completed as completed
    except ImportError:
        raise UsageError("--executor dask needs Dask distributed: pip install 'optconform[dask]'") from None
    try:
        client = Client(scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as error:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    try:
        futures = {}
        for submission in submissions:
            content = b"" if submission.problem else submission.path.read_bytes()
            future = client.submit(_grade_shipped, submission, content, settings, pure=False)
            futures[future] = submission
        for future in completed(futures):
            yield _graded_or_error(futures[future], future.result)
    finally:
        client.close()
