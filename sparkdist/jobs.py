"""Jobs: every sparkdist call runs as one, waited for or not (RevoScaleR's ``wait = FALSE``).

A :class:`Job` is a :class:`concurrent.futures.Future` (``result``, ``exception``, ``done``,
``cancel``, ``add_done_callback``; ``concurrent.futures.wait``/``as_completed`` and
``asyncio.wrap_future`` take it) and adds ``id``, ``status``, ``progress``, ``output()`` and ``wait()``. Cancelling really stops the work: Spark jobs are interrupted by
their job tag (classic and Spark Connect), LocalParallel's worker processes are terminated.

Nothing here opens a socket: progress is read from Spark's own status tracker (classic) or its
progress handler (Connect).

>>> import sparkdist as sd
>>> job = sd.exec_job(pow, 2, elem_args=[1, 2, 3], wait=False)
>>> job.result(), job.status
([1, 4, 9], 'finished')
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from sparkdist._console import ProgressBar, catch_ctrl_c
from sparkdist.errors import ArgumentTypeError, SparkDistError

if TYPE_CHECKING:
    from sparkdist.context import ComputeContext

__all__ = ["Job", "JobTimeoutError", "as_completed", "get_jobs"]

QUEUED, RUNNING, FINISHED, FAILED, CANCELED = "queued", "running", "finished", "failed", "canceled"

_counter = itertools.count(1)
_registry: list[Job[Any]] = []
_registry_lock = threading.Lock()
#: How many ended jobs :func:`get_jobs` keeps (with their results); jobs still running are all kept.
KEEP_ENDED = 100
_output_sink: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("sparkdist_output", default=None)
_current_job: contextvars.ContextVar[Job[Any] | None] = contextvars.ContextVar("sparkdist_job", default=None)


class JobTimeoutError(SparkDistError, concurrent.futures.TimeoutError):
    """``Job.result(timeout=...)`` (or ``exception``/``wait``) ran out of time; the job keeps running.
    Also a :class:`TimeoutError` (``concurrent.futures.TimeoutError`` before Python 3.11)."""


#: Threads that run non-waiting jobs; more jobs than this wait in a queue (status "queued").
MAX_RUNNING_JOBS = 32
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _job_threads() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(MAX_RUNNING_JOBS, thread_name_prefix="sparkdist-job")
        return _executor


T = TypeVar("T")  # what a Job's result() returns


class Job(concurrent.futures.Future[T]):
    """A submitted sparkdist call: a :class:`concurrent.futures.Future`, so ``concurrent.futures.wait``,
    ``concurrent.futures.as_completed`` and ``asyncio.wrap_future`` take it. Returned by
    ``distribute_job``, ``exec_job`` and ``pema_compute`` with ``wait=False``; listed by :func:`get_jobs`.

    Unlike a plain Future, :meth:`cancel` also stops a job that is already running: its Spark work is
    interrupted (by job tag), LocalParallel's worker processes are ended.

    ``Job[T]`` is generic in what :meth:`result` returns: ``distribute_job(f, data, wait=False)`` with ``f``
    returning ``float`` is a ``Job[list[float]]`` to a type checker.

    >>> import asyncio, concurrent.futures, sparkdist as sd
    >>> job = sd.exec_job(pow, 2, elem_args=[1, 2, 3], wait=False)
    >>> isinstance(job, concurrent.futures.Future), job.result()
    (True, [1, 4, 9])
    >>> async def main():
    ...     return await asyncio.wrap_future(sd.exec_job(pow, 3, elem_args=[2], wait=False))
    >>> asyncio.run(main())
    [8]
    """

    def __init__(self, description: str, context: ComputeContext) -> None:
        super().__init__()
        self.id = f"sparkdist-job-{next(_counter)}"
        self.description = description
        self.context = context
        self.submitted = time.time()
        self._cancel_requested = False
        self._output: list[str] = []
        self._final_progress: tuple[int, int] | None = None
        self._seen = (0, 0)  # the most progress shown so far: it never goes backwards
        with _registry_lock:
            _registry.append(self)

    # -- concurrent.futures.Future, with sparkdist's errors ---------------------------------------

    def result(self, timeout: float | None = None) -> T:
        """The call's return value; raises its exception, CancelledError, or JobTimeoutError."""
        try:
            return super().result(timeout)
        except concurrent.futures.CancelledError:
            raise concurrent.futures.CancelledError(f"{self.id} ({self.description}) was canceled") from None
        except concurrent.futures.TimeoutError:
            raise self._timeout(timeout) from None

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The call's exception, or None if it succeeded."""
        try:
            return super().exception(timeout)
        except concurrent.futures.CancelledError:
            raise concurrent.futures.CancelledError(f"{self.id} ({self.description}) was canceled") from None
        except concurrent.futures.TimeoutError:
            raise self._timeout(timeout) from None

    def cancel(self) -> bool:
        """Stop the job's work, also when it already runs; False if it had already ended."""
        if super().cancel():  # still queued: it will never run
            self._release()
            _prune_registry()
            return True
        with self._condition:
            if self._state != _RUNNING:
                return False
            self._cancel_requested = True
        _keep_cancelling(self)
        return True

    # -- sparkdist's additions ------------------------------------------------------------------

    @property
    def status(self) -> str:
        """One of "queued", "running", "finished", "failed", "canceled"."""
        with self._condition:
            state, error = self._state, self._exception
        if state == _PENDING:
            return QUEUED
        if state == _RUNNING:
            return RUNNING
        if state in (_CANCELLED, _CANCELLED_AND_NOTIFIED):
            return CANCELED
        return FAILED if error is not None else FINISHED

    @property
    def progress(self) -> tuple[int, int]:
        """(done, in all): splits of a distribute_job, calls of an exec_job (Spark tasks where the
        count of splits is not known ahead, a DataFrame's partitions). Never goes backwards; a
        finished job is complete."""
        if self.done() and self._final_progress is not None:
            done, total = self._final_progress
        else:
            done, total = self.context.progress(self.id)
        with self._condition:
            seen_done, seen_total = self._seen
            total = max(total, seen_total)
            done = min(max(done, seen_done), total) if total else max(done, seen_done)
            if self.status == FINISHED:
                done = total = max(done, total)
            self._seen = (done, total)
        return done, total

    def output(self) -> str:
        """Console output captured so far (exec_job with console_output=True)."""
        return "".join(self._output)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; False if ``timeout`` seconds passed first."""
        done, _ = concurrent.futures.wait([self], timeout)
        return bool(done)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status}: {self.description}>"

    # -- internals --------------------------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> JobTimeoutError:
        return JobTimeoutError(
            f"{self.id} ({self.description}) did not end within {timeout} s; it is still {self.status}"
        )

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._final_progress = self.context.release(self.id)

    def _end(self, result: Any = None, error: BaseException | None = None) -> None:
        """The work has ended: record its result, its error, or (after a cancel) that it was canceled."""
        self._release()
        if self._cancel_requested:
            self._end_canceled()
        elif error is not None:
            self.set_exception(error)
        else:
            self.set_result(result)
        _prune_registry()

    def _end_canceled(self) -> None:
        # A plain Future cannot go from running to cancelled; a Job can, since its cancel stops running
        # work. Done as Future.cancel does it, with the same (CPython) fields, so wait()/as_completed()
        # waiters and done callbacks see a cancelled future.
        with self._condition:
            if self._state in (_FINISHED, _CANCELLED_AND_NOTIFIED):
                return
            self._state = _CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]

    def _run(self, fn: Callable[[], Any]) -> None:
        """Run the work in this thread (a job thread, for jobs that do not wait)."""
        if not self.set_running_or_notify_cancel():
            return
        _current_job.set(self)
        _output_sink.set(self._output)
        try:
            with self.context.job_scope(self.id, self.description):
                result = fn()
        except BaseException as err:  # noqa: BLE001 - whatever the work raises is the job's outcome
            self._end(error=err)
        else:
            self._end(result)


_PENDING, _RUNNING, _FINISHED = "PENDING", "RUNNING", "FINISHED"
_CANCELLED, _CANCELLED_AND_NOTIFIED = "CANCELLED", "CANCELLED_AND_NOTIFIED"


def _prune_registry() -> None:
    """Keep every running job and the newest KEEP_ENDED ended ones."""
    with _registry_lock:
        ended = [job for job in _registry if job.done()]
        if len(ended) > KEEP_ENDED:
            drop = {id(job) for job in ended[: len(ended) - KEEP_ENDED]}
            _registry[:] = [job for job in _registry if id(job) not in drop]


def _keep_cancelling(job: Job[Any], seconds: float = 60.0) -> None:
    """Interrupt the job's work now and again until it has ended: work submitted just after a
    cancel (a Spark job still being planned) is stopped too. Runs in its own thread."""

    def loop() -> None:
        deadline = time.monotonic() + seconds
        while not job.done():
            with contextlib.suppress(Exception):
                job.context.cancel(job.id)
            if job.wait(0.5) or time.monotonic() > deadline:
                return

    threading.Thread(target=loop, name=f"{job.id}-cancel", daemon=True).start()


def get_jobs() -> list[Job[Any]]:
    """This process's jobs, newest first: all that are still running and the last ``KEEP_ENDED``
    (100) that ended, also those whose session has since stopped."""
    with _registry_lock:
        return list(reversed(_registry))


def as_completed(jobs: Iterable[Job[T]], timeout: float | None = None) -> Iterator[Job[T]]:
    """Yield the jobs as they end, in the order they end (``concurrent.futures.as_completed``, with a
    :class:`JobTimeoutError` when ``timeout`` passes first)."""
    pending = list(jobs)
    for job in pending:
        if not isinstance(job, Job):
            raise ArgumentTypeError(f"as_completed takes sparkdist Jobs, got {type(job).__name__}")
    try:
        yield from concurrent.futures.as_completed(pending, timeout)  # type: ignore[misc]
    except concurrent.futures.TimeoutError:
        left = sum(not job.done() for job in pending)
        raise JobTimeoutError(f"{left} of {len(pending)} jobs did not end within {timeout} s") from None


def emit_output(line: str) -> None:
    """Show a line of captured console output: printed, or kept by the job that runs this call."""
    sink = _output_sink.get()
    if sink is None:
        print(line)
    else:
        sink.append(line + "\n")


def check_wait(wait: Any, context: ComputeContext) -> bool:
    if wait is None:
        return bool(getattr(context, "wait", True))
    if not isinstance(wait, bool):
        raise ArgumentTypeError(f"wait must be True, False or None (the context's setting), got {wait!r}")
    return wait


def run(
    description: str,
    context: ComputeContext,
    fn: Callable[[], Any],
    *,
    wait: bool,
    progress: bool,
    unit: str = "split",
) -> Any:
    """Run ``fn`` as a job: inline when waiting (Ctrl-C cancels its Spark work), else on a job thread."""
    if _current_job.get() is not None:  # a call made from inside a running job belongs to that job
        return fn()
    job: Job[Any] = Job(description, context)
    if not wait:
        _job_threads().submit(contextvars.copy_context().run, job._run, fn)
        return job
    job.set_running_or_notify_cancel()
    token = _current_job.set(job)
    bar = ProgressBar(job, unit) if progress else None
    interrupted = threading.Event()
    restore = catch_ctrl_c(functools.partial(_interrupt, job), interrupted) if context.is_distributed else None
    try:
        with context.job_scope(job.id, description):
            result = fn()
    except BaseException as err:
        if interrupted.is_set() or isinstance(err, KeyboardInterrupt):
            job._cancel_requested = True
            if not interrupted.is_set():
                context.cancel(job.id)
            job._end(error=err)
            raise KeyboardInterrupt(f"{job.id} ({description}) was interrupted; its Spark work was canceled") from err
        job._end(error=err)
        raise
    finally:
        if restore is not None:
            restore()
        _current_job.reset(token)
        if bar is not None:
            bar.close()
    if interrupted.is_set():  # the result arrived before the cancel took effect: honour the Ctrl-C
        job._cancel_requested = True
        job._end(result)
        raise KeyboardInterrupt(f"{job.id} ({description}) was interrupted")
    job._end(result)
    return result


def _interrupt(job: Job[Any]) -> None:
    """Ctrl-C during a waiting call: the job is canceled (its Spark work interrupted from another thread)."""
    job._cancel_requested = True
    _keep_cancelling(job)


def cancel_requested() -> bool:
    """Whether the job running in this thread (if any) was asked to stop: cancelled or Ctrl-C'd. A
    job that writes an output checks this right before its commit."""
    job = _current_job.get()
    return job is not None and job._cancel_requested
