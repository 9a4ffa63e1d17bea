"""distribute_job and is_distributed_context (RevoScaleR's rxDistributeJob / rxIsDistributedContext)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, overload

from sparkdist import _compat_libs, _explain, _serde, _worker, jobs, outputs
from sparkdist._checks import check_bool, check_callable, name_of
from sparkdist._console import check_progress
from sparkdist._current import get_compute_context, resolve_context
from sparkdist._protocol import Outcome, Status, job_error
from sparkdist.context import ComputeContext, SplitWork
from sparkdist.errors import ArgumentTypeError, EmptyDataError
from sparkdist.jobs import Job
from sparkdist.sources import DataSource, as_data_source

__all__ = ["distribute_job", "is_distributed_context"]

R = TypeVar("R")  # what func returns


def is_distributed_context(compute_context: ComputeContext | None = None, data: Any = None) -> bool:
    """Whether ``compute_context`` (default: the current one) runs work on Spark executors, and,
    when ``data`` is given, whether those executors can process that data split-wise.

    True for a Spark DataFrame of the context's own session and for Parquet data; False for
    in-memory pandas data and for a DataFrame of another session. Starts no session and no job.

    Examples
    --------
    >>> import pandas as pd
    >>> from sparkdist import LocalComputeContext
    >>> is_distributed_context(LocalComputeContext())
    False
    >>> is_distributed_context(LocalComputeContext(), data=pd.DataFrame({"x": [1]}))
    False
    """
    ctx = get_compute_context() if compute_context is None else compute_context
    if not isinstance(ctx, ComputeContext):
        raise ArgumentTypeError(
            f"compute_context must be a sparkdist ComputeContext or None, got {type(ctx).__name__}: {ctx!r}"
        )
    source = None if data is None else as_data_source(data)
    if not ctx.is_distributed:
        return False
    return source is None or ctx.accepts(source)


# The overloads say what comes back: func's results in a list, or one value with a reduce; in a Job with
# wait=False. Written compactly so their differences show.
# fmt: off
@overload
def distribute_job(
    func: Callable[..., R], data: Any, *args: Any, reduce: None = ..., wait: Literal[True] | None = ...,
    chunked: bool = ..., columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> list[R]: ...

@overload
def distribute_job(
    func: Callable[..., R], data: Any, *args: Any, reduce: Callable[[R, R], R], wait: Literal[True] | None = ...,
    chunked: bool = ..., columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> R: ...

@overload
def distribute_job(
    func: Callable[..., R], data: Any, *args: Any, reduce: None = ..., wait: Literal[False],
    chunked: bool = ..., columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> Job[list[R]]: ...

@overload
def distribute_job(
    func: Callable[..., R], data: Any, *args: Any, reduce: Callable[[R, R], R], wait: Literal[False],
    chunked: bool = ..., columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> Job[R]: ...

@overload
def distribute_job(
    func: Callable[..., R], data: Any, *args: Any, reduce: None = ..., wait: bool | None,
    chunked: bool = ..., columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> list[R] | Job[list[R]]: ...

@overload
def distribute_job(
    func: Callable[..., R], data: Any, *args: Any, reduce: Callable[[R, R], R], wait: bool | None,
    chunked: bool = ..., columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> R | Job[R]: ...

# with output=: the output's data source (a Job of it with wait=False)
@overload
def distribute_job(
    func: Callable[..., Any], data: Any, *args: Any, output: outputs.OutputArg, wait: Literal[True] | None = ...,
    mode: outputs.Mode = ..., partition_by: Sequence[str] | str | None = ..., reduce: None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., **kwargs: Any,
) -> DataSource: ...

@overload
def distribute_job(
    func: Callable[..., Any], data: Any, *args: Any, output: outputs.OutputArg, wait: Literal[False],
    mode: outputs.Mode = ..., partition_by: Sequence[str] | str | None = ..., reduce: None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., **kwargs: Any,
) -> Job[DataSource]: ...

@overload
def distribute_job(
    func: Callable[..., Any], data: Any, *args: Any, output: outputs.OutputArg, wait: bool | None,
    mode: outputs.Mode = ..., partition_by: Sequence[str] | str | None = ..., reduce: None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., **kwargs: Any,
) -> DataSource | Job[DataSource]: ...
# fmt: on


def distribute_job(
    func: Callable[..., Any],
    data: Any,
    *args: Any,
    reduce: Callable[[Any, Any], Any] | None = None,
    chunked: bool = False,
    columns: Sequence[str] | None = None,
    compute_context: ComputeContext | None = None,
    packages: Sequence[str] | None = None,
    wait: bool | None = None,
    progress: bool | None = None,
    output: Any = None,
    mode: str = "error",
    partition_by: Sequence[str] | str | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``func(split, *args, **kwargs)`` once per split of ``data``, in parallel.

    In a Spark context each call runs on an executor (the data is never collected to the
    driver); in local contexts the data is split into row groups / contiguous pieces.

    Parameters
    ----------
    func : callable
        Receives a pandas DataFrame (the split), or with ``chunked=True`` an iterator of pandas
        DataFrame chunks of the split, plus ``*args`` / ``**kwargs``. Its result may be any
        picklable object.
    data : DataSource, pyspark DataFrame, pandas DataFrame, or path(s) to Parquet data
        What to process.
    reduce : callable, optional
        An associative ``fn(a, b) -> c``. Given, the per-split results are combined (in split
        order; on Spark as results arrive when there are few splits or under Spark Connect, else in a
        tree on the executors) and one value is returned. Without it, the list of per-split results
        is returned in split order.
    chunked : bool
        Pass an iterator of chunks instead of one DataFrame, so a split never has to fit in
        memory at once.
    columns : list of str, optional
        Read only these columns.
    compute_context : ComputeContext, optional
        Where to run (default: the current context).
    packages : list of str, optional
        Requirements (``"statsmodels>=0.14"``) this job's function needs where it runs: a Spark context
        ships them to the executors (with its own ``packages``); the local contexts check that this
        Python has them (:class:`sparkdist.MissingPackageError` names what is missing).
    wait : bool, optional
        False returns a :class:`sparkdist.Job` at once; None uses the context's ``wait`` setting.
    progress : bool, optional
        Show a progress bar while waiting (default: only in an interactive terminal or notebook).
    output : str, os.PathLike, ParquetData or DeltaData, optional
        Write what ``func`` returns for each split (a pandas DataFrame, a pyarrow Table or RecordBatch,
        None, or an iterator of those) to this Parquet dataset (a path) or Delta table, from where it
        runs; the call then returns the output as a data source (its ``.report`` says what was written).
        Not with ``reduce``. See the user guide's page "Results that stay distributed".
    mode : {"error", "overwrite", "append"}
        With ``output``: refuse an output that holds data (default), replace it, or add to it.
    partition_by : list of str, optional
        With ``output``: write hive folders (``col=value/``) of these columns.

    Returns
    -------
    list, or one value with reduce, or Job
        For a ``func`` returning ``R``: the per-split results in split order (``list[R]``); with
        ``reduce``, the one reduced value (``R``); with ``wait=False``, a :class:`sparkdist.Job` of either
        (``Job[list[R]]``, ``Job[R]``). With ``output``: the output's data source (``ParquetData`` or
        ``DeltaData``), or a Job of it.

    Notes
    -----
    Splits without rows are skipped: ``func`` is never called with zero rows.

    Raises
    ------
    JobError
        ``func`` or ``reduce`` raised on a worker; the message has the remote exception type,
        message and last frames of its traceback.
    EmptyDataError
        ``reduce`` was given but the data has no rows.
    ResultTooLargeError
        The results coming back to the driver passed the context's ``max_result_size``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sparkdist import LocalComputeContext
    >>> df = pd.DataFrame({"x": range(1, 101)})
    >>> distribute_job(lambda s: int(s["x"].sum()), df, reduce=lambda a, b: a + b,
    ...                compute_context=LocalComputeContext())
    5050
    """
    check_callable(func, "func")
    check_callable(reduce, "reduce", optional=True)
    check_bool(chunked, "chunked")
    ctx = resolve_context(compute_context)
    wanted = _compat_libs.requirements(packages, "packages")
    ctx.check_packages(wanted)  # the local contexts: this Python must have them, before any job
    waiting = jobs.check_wait(wait, ctx)
    show = check_progress(progress)
    given = as_data_source(data)
    out = outputs.resolve(output, mode=mode, partition_by=partition_by, reduce=reduce, source=given)
    source = given.prepare(ctx)  # how ctx reads it: bad paths fail here, on the driver
    if columns is not None:
        source = source.with_columns(columns)
    _explain.job_plan(
        f"distribute_job({name_of(func)})", ctx, given, source, _explain.reduce_note(ctx, reduce, chunked)
    )
    task = _worker.SplitTask(
        func=func if out is None else out.wrap(func),
        args=tuple(args),
        kwargs=dict(kwargs),
        chunked=chunked,
        result_limit=ctx.max_result_size,
    )
    ships = ctx.ships_work
    work = SplitWork(
        task,
        _pickle_task(task) if ships else b"",
        source,
        _serde.dumps_checked(reduce, what=f"reduce {name_of(reduce)!r}") if reduce is not None and ships else None,
    )

    def run() -> Any:
        ctx.ship_packages(wanted)
        if out is None:
            return _finish(ctx.run_splits(work), func, reduce, source)
        with out.writing():  # a failed, cancelled or interrupted job commits nothing
            outcomes = ctx.run_splits(work)
            out.written((f"split {o.split}", o.split, o.value) for o in outcomes if o.status == Status.OK)
            _finish(outcomes, func, None, source)
            return out.commit()

    return jobs.run(f"distribute_job({name_of(func)})", ctx, run, wait=waiting, progress=show)


def _pickle_task(task: _worker.SplitTask) -> bytes:
    return _serde.dumps_explained(
        task,
        [
            (task.func, f"func {name_of(task.func)!r}"),
            (task.args, "the positional arguments (*args) for func"),
            (task.kwargs, "the keyword arguments (**kwargs) for func"),
        ],
    )


def _finish(
    outcomes: list[Outcome],
    func: Callable[..., Any],
    reduce: Callable[[Any, Any], Any] | None,
    source: DataSource,
) -> Any:
    outcomes = sorted(outcomes, key=lambda o: o.split)
    for split, status, value in outcomes:
        if status == Status.ERROR:
            raise job_error(value, split, func)
    if reduce is None:
        return [o.value for o in outcomes if o.status == Status.OK]
    folded = _worker.fold(reduce, outcomes)
    if folded is None:
        raise EmptyDataError(f"nothing to reduce: the data has no rows ({source!r})")
    if folded.status == Status.ERROR:
        raise job_error(folded.value, folded.split, reduce)
    return folded.value
