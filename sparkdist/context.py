"""ComputeContext: the interface every compute context implements, and the settings they share.

The API (``distribute_job``, ``exec_job``, ``pema_compute``) and the jobs machinery talk to a
context only through the methods below; a context reads data only through the data source's own
methods (``plan``, ``spark_frame``), so neither side switches on the other's type.

>>> from sparkdist import LocalComputeContext, get_compute_context
>>> with LocalComputeContext() as inner:
...     get_compute_context() is inner
True
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import contextvars
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sparkdist import _compat_libs, _serde
from sparkdist._checks import check_bool
from sparkdist._protocol import Status
from sparkdist._worker import CallBatch, GroupTask, SplitTask
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError, MissingPackageError

if TYPE_CHECKING:
    from types import TracebackType

    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

    from sparkdist._protocol import CallRecord, GroupRecord, Outcome
    from sparkdist._worker import SplitReader

__all__ = [
    "DEFAULT_MAX_RESULT_SIZE",
    "CallWork",
    "ComputeContext",
    "GroupSource",
    "GroupWork",
    "SplitSource",
    "SplitWork",
    "parse_size",
]

#: The job (its tag) that the code running in this thread or asyncio task belongs to.
active_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar("sparkdist_job_tag", default=None)
#: The context of the innermost ``with ctx:`` block of this thread or asyncio task.
scoped: contextvars.ContextVar[ComputeContext | None] = contextvars.ContextVar("sparkdist_context", default=None)
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


class SplitSource(Protocol):
    """What a context asks of a data source it runs splits of (every DataSource has these)."""

    def plan(self, slots: int) -> Sequence[SplitReader]: ...

    def spark_frame(self, session: SparkSession) -> DataFrame | None: ...

    def readable_on(self, session: SparkSession | None) -> bool: ...


class GroupSource(Protocol):
    """What a context asks of a data source whose rows it regroups by key (every DataSource has it)."""

    def shuffle_frame(self, session: SparkSession) -> DataFrame | None: ...


@dataclass(frozen=True)
class SplitWork:
    """A distribute_job for a context: the task, pickled when the context sends work elsewhere
    (:attr:`ComputeContext.ships_work`), the data source, and the pickled reduce, if any."""

    task: SplitTask
    task_bytes: bytes
    source: SplitSource
    reduce_bytes: bytes | None = None


@dataclass(frozen=True)
class CallWork:
    """An exec_job for a context: ``n_calls`` calls in batches of ``chunk``, or one call on each
    executor (``once``)."""

    batch: CallBatch
    batch_bytes: bytes
    n_calls: int
    chunk: int
    once: bool = False


@dataclass(frozen=True)
class GroupWork:
    """An exec_by whose groups a context forms itself by moving rows between its workers (Spark:
    one shuffle by the keys): the task, pickled, and the data source."""

    task: GroupTask
    task_bytes: bytes
    source: GroupSource
    #: With exec_by's ``filter``: given every group's keys and row count, returns the groups to run
    #: (their :func:`sparkdist._worker.same_keys`).
    choose: Callable[[list[tuple[Any, ...]], list[int]], frozenset[tuple[Any, ...]]] | None = None


class ComputeContext(abc.ABC):
    """Base class of compute contexts: where work runs. Every context is a context manager that makes
    it current for the block and restores the previous one on exit (also on an exception).

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

    What a context implements (for sparkdist's own modules): :attr:`is_distributed`,
    :attr:`task_slots`, :meth:`run_splits`, :meth:`run_calls`; and, where it differs from the
    in-process default, :meth:`run_groups`, :attr:`ships_work`, :attr:`spark_session`, :meth:`executors_can_open`,
    :meth:`accepts`, :meth:`job_scope`, :meth:`cancel`, :meth:`progress`, :meth:`release`,
    :meth:`run_on_executors`.
    """

    wait: bool = True
    _max_result_size: int | None = DEFAULT_MAX_RESULT_SIZE

    def __init__(self, *, wait: bool = True, max_result_size: int | str | None = DEFAULT_MAX_RESULT_SIZE) -> None:
        self.wait = check_bool(wait, "wait")
        self.max_result_size = max_result_size
        self._jobs: dict[str, list[int]] = {}  # tag -> [done, total] splits or calls, counted in-process
        self._units: dict[str, tuple[int, int]] = {}  # tag -> (splits or calls in all, per Spark task)
        self._cancelled: set[str] = set()

    @property
    def max_result_size(self) -> int | None:
        """The limit on one job's results on the driver, in bytes (None: no limit); settable."""
        return self._max_result_size

    @max_result_size.setter
    def max_result_size(self, value: int | str | None) -> None:
        self._max_result_size = parse_size(value, "max_result_size")

    # -- what every context implements ------------------------------------------------------------

    @property
    @abc.abstractmethod
    def is_distributed(self) -> bool:
        """True when work runs on Spark executors."""

    @property
    @abc.abstractmethod
    def task_slots(self) -> int:
        """How many splits can be processed at once."""

    @abc.abstractmethod
    def run_splits(self, work: SplitWork) -> list[Outcome]:
        """Run the task on every split of the source; with a reduce the context may fold groups of
        consecutive splits. Returns outcomes sorted by split."""

    @abc.abstractmethod
    def run_calls(self, work: CallWork) -> list[CallRecord]:
        """Run exec_job's calls; one record per call that ran."""

    @property
    def ships_work(self) -> bool:
        """Whether work travels to other processes (so the API pickles it, naming what cannot be)."""
        return True

    @property
    def spark_session(self) -> SparkSession | None:
        """The SparkSession work runs in (started if needed), None for contexts without Spark."""
        return None

    def executors_can_open(self, filesystem: pafs.FileSystem, paths: list[str]) -> tuple[bool, str]:
        """Whether the machines that run the work can open these files with pyarrow, and if not why."""
        return True, ""

    def accepts(self, source: SplitSource) -> bool:
        """Whether the executors can process ``source`` split-wise (without it passing through the
        driver). Starts nothing."""
        return False

    def run_groups(self, work: GroupWork) -> list[GroupRecord] | None:
        """Form exec_by's groups where the data is, by moving rows between workers (Spark: one
        shuffle by the keys), and run the task on each; None when this context does not (the groups
        are then formed on the driver, or from a hive layout, and run as calls)."""
        return None

    def persisted(self, frame: DataFrame, *, original: DataFrame) -> contextlib.AbstractContextManager[DataFrame]:
        """``frame`` (columns selected from the user's DataFrame ``original``) kept where the workers
        read it while the block runs, so that several passes over it run its lineage once (Spark:
        persisted, and released when the block ends, also on error). This default keeps nothing."""
        return contextlib.nullcontext(frame)

    def check_usable(self) -> None:  # noqa: B027 - a hook with a do-nothing default
        """Raise a ComputeContextError when the context cannot run work (e.g. a stopped session)."""

    def check_packages(self, packages: tuple[str, ...]) -> None:
        """Before a job with ``packages=`` (requirement strings, checked): where work runs in this Python
        (the local contexts), raise MissingPackageError naming those this Python does not satisfy."""
        missing = _compat_libs.unsatisfied(packages)
        if missing:
            raise MissingPackageError(
                f"packages= asks for what this Python does not have: {', '.join(missing)}. The local contexts run "
                f"work in this Python, so install them here: pip install {' '.join(repr(p) for p in packages)}",
                requirement=", ".join(missing),
            )

    def ship_packages(self, packages: tuple[str, ...]) -> None:  # noqa: B027 - a hook with a do-nothing default
        """In a job's thread, before its work: make ``packages`` importable where the work runs (a Spark
        context ships them to the executors); nothing for contexts whose work runs in this Python."""

    def run_on_executors(self, probe: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
        """Run ``probe`` (a module-level function of ``sparkdist._worker``, no arguments) once on
        every executor -- each worker process of a pool, this process for the in-process context --
        and return its rows, one per executor that answered. A probe that failed there gives
        ``{"executor": "host/id", "error": ErrorInfo}``.

        This default runs it as an exec_job call with ``once_per_executor``: in this process, or on
        each executor of a Spark cluster (executors busy with other work get it in further rounds).
        """
        batch = CallBatch(probe, (), {}, None, None, False, False, self.max_result_size)
        work = CallWork(batch, _serde.dumps(batch) if self.ships_work else b"", 1, 1, once=True)
        return [
            dict(r.value) if r.status == Status.OK else {"executor": r.where, "error": r.value}
            for r in self.run_calls(work)
        ]

    # -- jobs -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def job_scope(self, tag: str, description: str) -> Iterator[None]:
        """Everything run inside belongs to job ``tag`` (Spark: its job tag)."""
        token = active_tag.set(tag)
        try:
            yield
        finally:
            active_tag.reset(token)

    def cancel(self, tag: str) -> None:
        """Stop job ``tag``'s work (in-process contexts stop at the next split or call)."""
        self._cancelled.add(tag)

    def progress(self, tag: str) -> tuple[int, int]:
        """(done, in all) splits or calls of job ``tag``, as far as known."""
        done, total = self._jobs.get(tag, [0, 0])
        return done, total

    def release(self, tag: str) -> tuple[int, int]:
        """Job ``tag`` has ended: forget what the context kept for it (so thousands of jobs leave
        nothing behind) and return its final progress."""
        final = self.progress(tag)
        self._jobs.pop(tag, None)
        self._units.pop(tag, None)
        self._cancelled.discard(tag)
        return final

    # -- helpers for the contexts ------------------------------------------------------------------

    def _check_cancelled(self) -> None:
        tag = active_tag.get()
        if tag is not None and tag in self._cancelled:
            raise concurrent.futures.CancelledError(f"{tag} was canceled")

    def _plan_units(self, total: int, per_task: int = 1) -> None:
        """The running job processes ``total`` splits or calls, ``per_task`` of them in each task of its
        first Spark stage: progress is counted in those, not in tasks."""
        tag = active_tag.get()
        if tag is not None:
            self._units[tag] = (total, max(1, per_task))

    def _count(self, done: int = 0, total: int = 0) -> None:
        tag = active_tag.get()
        if tag is not None:
            counts = self._jobs.setdefault(tag, [0, 0])
            counts[0] += done
            counts[1] += total

    # -- with ctx: ---------------------------------------------------------------------------------

    def __enter__(self) -> ComputeContext:
        token = scoped.set(self)
        _tokens.set((*_tokens.get(), token))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = _tokens.get()
        if stack:
            _tokens.set(stack[:-1])
            scoped.reset(stack[-1])
