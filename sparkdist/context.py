"""Compute contexts: where work runs. ``set_compute_context`` sets the default of the whole process;
``with ctx:`` makes a context current for a block of one thread or asyncio task.

>>> from sparkdist import LocalComputeContext, get_compute_context, set_compute_context
>>> ctx = LocalComputeContext()
>>> previous = set_compute_context(ctx)
>>> get_compute_context() is ctx
True
>>> _ = set_compute_context(previous)
>>> with LocalComputeContext() as inner:
...     get_compute_context() is inner
True
"""

from __future__ import annotations

import abc
import atexit
import concurrent.futures
import contextlib
import contextvars
import multiprocessing
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sparkdist import _compat, _reduce, _serde, _worker
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError, JobError

if TYPE_CHECKING:
    from types import TracebackType

    from sparkdist._worker import Outcome
    from sparkdist.sources import DataSource

__all__ = [
    "ComputeContext",
    "LocalComputeContext",
    "LocalParallelComputeContext",
    "get_compute_context",
    "set_compute_context",
]

_active_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar("sparkdist_job_tag", default=None)
_current: contextvars.ContextVar[ComputeContext | None] = contextvars.ContextVar("sparkdist_context", default=None)
_tokens: contextvars.ContextVar[tuple[contextvars.Token[ComputeContext | None], ...]] = contextvars.ContextVar(
    "sparkdist_context_tokens", default=()
)


DEFAULT_MAX_RESULT_SIZE = 1 << 30
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.I)


def parse_size(value: Any, arg: str) -> int | None:
    """A size in bytes from an int or a string with a binary unit (Spark's style); None stays None.

    >>> parse_size("512m", "max_result_size"), parse_size("1.5g", "max_result_size"), parse_size(4096, "x")
    (536870912, 1610612736, 4096)
    >>> parse_size("lots", "max_result_size")
    Traceback (most recent call last):
    ...
    sparkdist.errors.InvalidArgumentError: max_result_size must be a positive number of bytes (int) or a size such as '512m' or '4g', or None for no limit; got 'lots'
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is not None:
        number = float(match.group(1)) * 1024 ** "bkmgt".index((match.group(2) or "b").lower())
        if number >= 1:
            return int(number)
    error = InvalidArgumentError if isinstance(value, (int, str)) and not isinstance(value, bool) else ArgumentTypeError
    raise error(
        f"{arg} must be a positive number of bytes (int) or a size such as '512m' or '4g', or None for no limit; "
        f"got {value!r}"
    )


class ComputeContext(abc.ABC):
    """Base class of compute contexts. Every context is a context manager that makes it current
    for the block and restores the previous one on exit (also on an exception).

    Settings of every context:

    ``wait``
        What calls do when their own ``wait`` is None: block until the result is ready (True)
        or return a :class:`sparkdist.Job` at once (False).
    ``max_result_size``
        The most that one job's results may add up to on the driver, in bytes or as ``"512m"``,
        ``"4g"`` (default ``"1g"``, like Spark's ``spark.driver.maxResultSize``); None: no limit.
        Past it the job stops with :class:`sparkdist.ResultTooLargeError` instead of filling the
        driver's memory. It counts results that travel (worker processes, Spark executors); the
        in-process LocalComputeContext has nothing to transfer and does not check it.
    """

    wait: bool = True
    _max_result_size: int | None = DEFAULT_MAX_RESULT_SIZE

    @property
    def max_result_size(self) -> int | None:
        """The limit on one job's results on the driver, in bytes (None: no limit); settable.

        >>> ctx = LocalParallelComputeContext(1, max_result_size="256m")
        >>> ctx.max_result_size
        268435456
        >>> ctx.max_result_size = None
        """
        return self._max_result_size

    @max_result_size.setter
    def max_result_size(self, value: int | str | None) -> None:
        self._max_result_size = parse_size(value, "max_result_size")

    def _init_settings(self, wait: Any, max_result_size: Any) -> None:
        """Check and keep the settings every context takes; start the per-job bookkeeping."""
        if not isinstance(wait, bool):
            raise ArgumentTypeError(f"wait must be True or False, got {wait!r}")
        self.wait = wait
        self.max_result_size = max_result_size
        self._jobs: dict[str, list[int]] = {}  # tag -> [done, total] splits or calls, in-process progress
        self._units: dict[str, tuple[int, int]] = {}  # tag -> (splits or calls in all, per Spark task)
        self._cancelled: set[str] = set()

    @contextlib.contextmanager
    def _job_scope(self, tag: str, description: str) -> Iterator[None]:
        """Everything run inside belongs to job ``tag`` (Spark: its job tag)."""
        token = _active_tag.set(tag)
        try:
            yield
        finally:
            _active_tag.reset(token)

    def _cancel(self, tag: str) -> None:
        """Stop job ``tag``'s work (in-process contexts stop at the next split or call)."""
        self._cancelled.add(tag)

    def _progress(self, tag: str) -> tuple[int, int]:
        done, total = self._jobs.get(tag, [0, 0])
        return done, total

    def _release(self, tag: str) -> tuple[int, int] | None:
        """Job ``tag`` has ended: forget what the context kept for it (so thousands of jobs leave
        nothing behind) and return its final progress, or None when it can still be looked up."""
        done, total = self._jobs.pop(tag, [0, 0])
        self._units.pop(tag, None)
        self._cancelled.discard(tag)
        return done, total

    def _check_cancelled(self) -> None:
        tag = _active_tag.get()
        if tag is not None and tag in self._cancelled:
            raise concurrent.futures.CancelledError(f"{tag} was canceled")

    def _plan_units(self, total: int, per_task: int = 1) -> None:
        """The running job processes ``total`` splits or calls, ``per_task`` of them in each task of its
        first Spark stage: progress is counted in those, not in tasks."""
        tag = _active_tag.get()
        if tag is not None:
            self._units[tag] = (total, max(1, per_task))

    def _count(self, done: int = 0, total: int = 0) -> None:
        tag = _active_tag.get()
        if tag is not None:
            counts = self._jobs.setdefault(tag, [0, 0])
            counts[0] += done
            counts[1] += total

    @property
    @abc.abstractmethod
    def is_distributed(self) -> bool:
        """True when work runs on Spark executors."""

    @property
    @abc.abstractmethod
    def task_slots(self) -> int:
        """How many splits can be processed at once."""

    def check_usable(self) -> None:  # noqa: B027 - a hook with a do-nothing default
        """Raise a ComputeContextError when the context cannot run work (e.g. a stopped session)."""

    @abc.abstractmethod
    def _run_splits(
        self, task_bytes: bytes, task: _worker.SplitTask, source: DataSource, reduce_bytes: bytes | None
    ) -> list[Outcome]:
        """Run the task on every split; with ``reduce_bytes`` the context may pre-reduce groups of
        consecutive splits. Returns outcomes sorted by split."""

    @abc.abstractmethod
    def _run_calls(
        self, batch_bytes: bytes, batch: _worker.CallBatch, n_calls: int, chunk: int, once: bool
    ) -> list[tuple[int, str, Any, str | None, str]]:
        """Run exec_job's calls; records ``(index, status, value, output, where)``."""

    def __enter__(self) -> ComputeContext:
        token = _current.set(self)
        _tokens.set((*_tokens.get(), token))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = _tokens.get()
        if stack:
            _tokens.set(stack[:-1])
            _current.reset(stack[-1])


class LocalComputeContext(ComputeContext):
    """Runs in this process, one split after another; no JVM (RevoScaleR's ``RxLocalSeq``).

    >>> LocalComputeContext().is_distributed
    False
    """

    def __init__(self, *, wait: bool = True, max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE) -> None:
        self._init_settings(wait, max_result_size)

    @property
    def is_distributed(self) -> bool:
        return False

    @property
    def task_slots(self) -> int:
        return 1

    def _run_splits(
        self, task_bytes: bytes, task: _worker.SplitTask, source: DataSource, reduce_bytes: bytes | None
    ) -> list[Outcome]:
        splits = source.local_splits(1)
        self._count(total=len(splits))
        outcomes = []
        for i, split in enumerate(splits):
            self._check_cancelled()
            outcomes.append(_worker.run_split(task, i, split.chunks()))
            self._count(done=1)
        return outcomes

    def _run_calls(
        self, batch_bytes: bytes, batch: _worker.CallBatch, n_calls: int, chunk: int, once: bool
    ) -> list[tuple[int, str, Any, str | None, str]]:
        where = _local_where()
        n = 1 if once else n_calls
        self._count(total=n)
        records = []
        for r in _worker.run_calls(batch, range(n)):
            records.append((*r, where))
            self._count(done=1)
            self._check_cancelled()
        return records

    def __repr__(self) -> str:
        return "LocalComputeContext()"


class LocalParallelComputeContext(ComputeContext):
    """A pool of worker processes on this machine; no JVM (RevoScaleR's ``RxLocalParallel``).

    Parameters
    ----------
    n_workers : int, optional
        Number of worker processes; default: the number of CPUs.

    The pool starts on first use and is kept for later jobs; :meth:`close` ends it (it also
    ends when the interpreter exits).

    >>> LocalParallelComputeContext(2).task_slots
    2
    """

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        wait: bool = True,
        max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE,
    ) -> None:
        self._init_settings(wait, max_result_size)
        if n_workers is not None and (not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1):
            raise InvalidArgumentError(f"n_workers must be a positive int or None, got {n_workers!r}")
        self.n_workers = n_workers or os.cpu_count() or 1
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._futures: dict[str, list[tuple[concurrent.futures.Future[bytes], int]]] = {}  # with their units
        self._kills = 0  # pools ended by a cancel: other jobs' work on them is run again
        _live_pools.add(self)

    @property
    def is_distributed(self) -> bool:
        return False

    @property
    def task_slots(self) -> int:
        return self.n_workers

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: safe next to a JVM and threads, unlike fork
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.n_workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _submit(self, fn: Any, *args: Any, units: int = 1) -> concurrent.futures.Future[bytes]:
        """Submit to the pool, remembering the future under the current job (for cancel, and for progress
        in ``units``: the splits or calls it runs)."""
        self._check_cancelled()
        future = self._get_pool().submit(fn, *args)
        tag = _active_tag.get()
        if tag is not None:
            self._futures.setdefault(tag, []).append((future, units))
        return future

    def _progress(self, tag: str) -> tuple[int, int]:
        futures = self._futures.get(tag, [])
        return sum(n for f, n in futures if f.done()), sum(n for _, n in futures)

    def _release(self, tag: str) -> tuple[int, int] | None:
        super()._release(tag)
        final = self._progress(tag)
        self._futures.pop(tag, None)  # they hold the job's pickled results
        return final

    def _cancel(self, tag: str) -> None:
        """Drop the job's queued calls and end the worker processes running its others."""
        super()._cancel(tag)
        futures = [f for f, _ in self._futures.get(tag, [])]
        if not any(f.running() for f in futures):
            for f in futures:
                f.cancel()
            return
        # Some are running: end the pool's workers. Its manager thread then fails every future of
        # the pool (running or queued) with BrokenProcessPool; cancelling them here first would make
        # it stumble on the cancelled ones. Other jobs' lost work is run again (see _run_units).
        with self._lock:
            pool, self._pool = self._pool, None
            self._kills += 1
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            # not cancel_futures: a future cancelled by shutdown never wakes an as_completed() waiting
            # on it; failing with BrokenProcessPool does
            pool.shutdown(wait=False)

    def close(self) -> None:
        """Shut the worker processes down."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_splits(
        self, task_bytes: bytes, task: _worker.SplitTask, source: DataSource, reduce_bytes: bytes | None
    ) -> list[Outcome]:
        splits = source.local_splits(self.n_workers)
        if not splits:
            return []
        payloads = [_serde.dumps((task_bytes, i, split)) for i, split in enumerate(splits)]
        budget = _reduce.ResultBudget(self.max_result_size)
        results: dict[int, tuple[str, bytes]] = {}

        def arrived(i: int, raw: bytes) -> bool:
            split, status, payload = _serde.loads(raw)
            budget.add(split, "split", status, payload)
            results[split] = (status, payload)
            return False

        try:
            self._run_units(_worker.run_local_payload, [(p,) for p in payloads], arrived)
        except concurrent.futures.process.BrokenProcessPool as err:
            raise JobError(
                f"a worker process of {self!r} died while running the job ({err}). In a script, keep the code that "
                "starts jobs under `if __name__ == '__main__':` (workers are spawned and import the main module); "
                "otherwise a worker ran out of memory or crashed. The pool will be restarted on the next job."
            ) from err
        return [(split, status, _serde.loads(payload)) for split, (status, payload) in sorted(results.items())]

    def _run_calls(
        self, batch_bytes: bytes, batch: _worker.CallBatch, n_calls: int, chunk: int, once: bool
    ) -> list[tuple[int, str, Any, str | None, str]]:
        if once:
            n_calls = 1
        groups = [list(range(start, min(n_calls, start + chunk))) for start in range(0, n_calls, chunk)]
        budget = _reduce.ResultBudget(self.max_result_size)
        done: list[tuple[str, list[tuple[int, str, Any, str | None]]]] = []

        def arrived(i: int, raw: bytes) -> bool:
            worker, records = _serde.loads(raw)
            for index, status, payload, _output in records:
                budget.add(index, "call", status, payload)
            done.append((worker, [(i, s, _serde.loads(p), o) for i, s, p, o in records]))
            # the first failure ends the job (the queued calls are dropped)
            return batch.stop_on_failure and any(r[1] == _worker.ERROR for r in records)

        try:
            self._run_units(
                _worker.run_local_calls, [(batch_bytes, g) for g in groups], arrived, [len(g) for g in groups]
            )
        except concurrent.futures.process.BrokenProcessPool as err:
            raise JobError(f"a worker process of {self!r} died while running the calls ({err})") from err
        where = _local_where() if once else None
        return [(*r, where or worker) for worker, records in done for r in records]

    def _run_units(
        self,
        fn: Any,
        units: list[tuple[Any, ...]],
        arrived: Callable[[int, bytes], bool],
        sizes: list[int] | None = None,
    ) -> None:
        """Run ``fn(*units[i])`` for every i in the pool; ``arrived(i, result)`` sees each result as it
        comes and may end the job early by returning True (the queued units are dropped).

        Units lost because *another* job's cancel ended the shared pool are run again on a fresh
        pool, so that cancel costs this job time but never its result."""
        pending = set(range(len(units)))
        while pending:
            kills = self._kills
            futures = {self._submit(fn, *units[i], units=sizes[i] if sizes else 1): i for i in sorted(pending)}
            try:
                for future in concurrent.futures.as_completed(futures):
                    raw = future.result()
                    pending.discard(futures[future])
                    if arrived(futures[future], raw):
                        pending.clear()
                        break
            except (concurrent.futures.CancelledError, concurrent.futures.process.BrokenProcessPool):
                # the pool is gone (its futures are failed by its own manager thread; leave them be)
                if self._kills != kills:  # ended by a cancel, which also replaced it
                    if _active_tag.get() not in self._cancelled:
                        continue  # another job's cancel: run what was lost again
                    raise
                with self._lock:  # a worker crashed: the next job gets a fresh pool
                    broken, self._pool = self._pool, None
                if broken is not None:
                    broken.shutdown(wait=False)
                raise
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            for future in futures:  # ended early: drop what is still queued
                future.cancel()

    def __repr__(self) -> str:
        return f"LocalParallelComputeContext(n_workers={self.n_workers})"


def _local_where() -> str:
    import socket

    return f"{socket.gethostname()}/local"


_live_pools: weakref.WeakSet[LocalParallelComputeContext] = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    for ctx in list(_live_pools):
        ctx.close()


_DEFAULT_LOCAL = LocalComputeContext()
_wrapped_sessions: dict[int, ComputeContext] = {}


def _default_context() -> ComputeContext:
    session = _compat.active_session()
    if session is None:
        return _DEFAULT_LOCAL
    ctx = _wrapped_sessions.get(id(session))
    if ctx is None or getattr(ctx, "_session", None) is not session:
        from sparkdist.spark import SparkComputeContext

        ctx = SparkComputeContext(session)
        _wrapped_sessions[id(session)] = ctx
    return ctx


_process_default: ComputeContext | None = None  # set_compute_context's, for every thread


def get_compute_context() -> ComputeContext:
    """The current compute context: the innermost ``with ctx:`` block of this thread or asyncio task,
    else the one :func:`set_compute_context` made the default of the whole process, else
    :class:`LocalComputeContext` -- except that when a SparkSession is already active in the process
    (a Databricks or Jupyter notebook with ``spark`` defined) the default wraps it.
    """
    ctx = _current.get()
    if ctx is not None:
        return ctx
    return _process_default if _process_default is not None else _default_context()


def set_compute_context(compute_context: ComputeContext | None) -> ComputeContext:
    """Make ``compute_context`` the default of the whole process, every thread included (RevoScaleR's
    ``rxSetComputeContext``); None goes back to the automatic default. Returns the context that was
    current before. Inside a ``with ctx:`` block that block's context stays current until it ends.

    >>> import threading
    >>> previous = set_compute_context(LocalParallelComputeContext(2))
    >>> seen = []
    >>> t = threading.Thread(target=lambda: seen.append(get_compute_context()))
    >>> t.start(); t.join()
    >>> seen[0]
    LocalParallelComputeContext(n_workers=2)
    >>> _ = set_compute_context(None)
    """
    global _process_default
    if compute_context is not None:
        check_context(compute_context, "compute_context")
    previous = get_compute_context()
    _process_default = compute_context
    return previous


def check_context(value: Any, arg: str) -> ComputeContext:
    """``value`` if it is a ComputeContext, else a clear ArgumentTypeError naming ``arg``."""
    if not isinstance(value, ComputeContext):
        raise ArgumentTypeError(
            f"{arg} must be a sparkdist ComputeContext (LocalComputeContext, LocalParallelComputeContext or "
            f"SparkComputeContext), got {type(value).__name__}: {value!r}"
        )
    return value


def resolve_context(compute_context: ComputeContext | None) -> ComputeContext:
    """The context a call should use: its argument, else the current one; checked usable."""
    ctx = get_compute_context() if compute_context is None else check_context(compute_context, "compute_context")
    ctx.check_usable()
    return ctx
