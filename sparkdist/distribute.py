"""distribute_job and is_distributed_context (RevoScaleR's rxDistributeJob / rxIsDistributedContext)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sparkdist import _serde, _worker, jobs
from sparkdist.context import ComputeContext, LocalComputeContext, get_compute_context, resolve_context
from sparkdist.errors import ArgumentTypeError, EmptyDataError, JobError
from sparkdist.sources import DataSource, PandasData, ParquetData, SparkData, as_data_source

__all__ = ["distribute_job", "is_distributed_context"]


def is_distributed_context(compute_context: ComputeContext | None = None, data: Any = None) -> bool:
    """Whether ``compute_context`` (default: the current one) runs work on Spark executors, and,
    when ``data`` is given, whether those executors can process that data split-wise.

    True for a Spark DataFrame of the context's own session and for Parquet data; False for
    in-memory pandas data and for a DataFrame of another session. Never starts a Spark job.

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
    if source is None:
        return True
    if isinstance(source, PandasData):
        return False
    session = ctx.session  # type: ignore[attr-defined]
    return source.is_compatible_with(session)


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__


def distribute_job(
    func: Callable[..., Any],
    data: Any,
    *args: Any,
    reduce: Callable[[Any, Any], Any] | None = None,
    chunked: bool = False,
    columns: Sequence[str] | None = None,
    compute_context: ComputeContext | None = None,
    wait: bool | None = None,
    progress: bool | None = None,
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
        order; on Spark in a tree on the executors) and one value is returned. Without it, the
        list of per-split results is returned in split order.
    chunked : bool
        Pass an iterator of chunks instead of one DataFrame, so a split never has to fit in
        memory at once.
    columns : list of str, optional
        Read only these columns.
    compute_context : ComputeContext, optional
        Where to run (default: the current context).
    wait : bool, optional
        False returns a :class:`sparkdist.Job` at once; None uses the context's ``wait`` setting.
    progress : bool, optional
        Show a progress bar while waiting (default: only in an interactive terminal or notebook).

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
    if not callable(func):
        raise ArgumentTypeError(f"func must be callable, got {type(func).__name__}: {func!r}")
    if reduce is not None and not callable(reduce):
        raise ArgumentTypeError(f"reduce must be callable or None, got {type(reduce).__name__}: {reduce!r}")
    if not isinstance(chunked, bool):
        raise ArgumentTypeError(f"chunked must be True or False, got {chunked!r}")
    ctx = resolve_context(compute_context)
    waiting = jobs.check_wait(wait, ctx)
    show = jobs.check_progress(progress)
    source = as_data_source(data)
    spark_reads = ctx.is_distributed and isinstance(source, ParquetData) and source.engine == "spark"
    if isinstance(source, ParquetData) and (columns is not None or not spark_reads):
        # discovers the files and reads their footers (in a Spark context, through Spark's reader when
        # pyarrow cannot open the path): bad paths fail here, on the driver
        source._schema_in(ctx)
    if columns is not None:
        source = source.with_columns(columns)
    task = _worker.SplitTask(
        func=func, args=tuple(args), kwargs=dict(kwargs), chunked=chunked, result_limit=ctx.max_result_size
    )
    needs_pickle = not isinstance(ctx, LocalComputeContext)  # everything else sends work elsewhere
    task_bytes = _pickle_task(task) if needs_pickle else b""
    reduce_bytes = _serde.dumps_checked(reduce, what=f"reduce {_name(reduce)!r}") if reduce and needs_pickle else None

    def run() -> Any:
        return _finish(ctx._run_splits(task_bytes, task, source, reduce_bytes), func, reduce, source)

    return jobs.run(f"distribute_job({_name(func)})", ctx, run, wait=waiting, progress=show)


def _pickle_task(task: _worker.SplitTask) -> bytes:
    return _serde.dumps_explained(
        task,
        [
            (task.func, f"func {_name(task.func)!r}"),
            (task.args, "the positional arguments (*args) for func"),
            (task.kwargs, "the keyword arguments (**kwargs) for func"),
        ],
    )


def _finish(
    outcomes: list[_worker.Outcome],
    func: Callable[..., Any],
    reduce: Callable[[Any, Any], Any] | None,
    source: DataSource,
) -> Any:
    outcomes = sorted(outcomes, key=lambda o: o[0])
    for split, status, value in outcomes:
        if status == _worker.ERROR:
            raise _job_error(split, value, func)
    if reduce is None:
        return [value for _, status, value in outcomes if status == _worker.OK]
    folded = _worker.fold(reduce, outcomes)
    if folded is None:
        raise EmptyDataError(f"nothing to reduce: the data has no rows ({_describe(source)})")
    if folded[1] == _worker.ERROR:
        raise _job_error(folded[0], folded[2], reduce)
    return folded[2]


def _describe(source: DataSource) -> str:
    if isinstance(source, ParquetData):
        return f"Parquet {', '.join(source.paths)}" + (f" with filters {source.filters!r}" if source.filters else "")
    if isinstance(source, SparkData):
        return "Spark DataFrame"
    return repr(source)


def _job_error(split: int, info: _worker.ErrorInfo, func: Callable[..., Any]) -> JobError:
    where = info.get("where") or _name(func)
    tail = "\n".join(info["traceback"].strip().splitlines()[-12:])
    return JobError(
        f"{where!r} failed on split {split} with {info['type']}: {info['message']}\n"
        f"on {info['host']}; last frames of the remote traceback:\n{tail}",
        remote_type=info["type"],
        remote_message=info["message"],
        remote_traceback=info["traceback"],
        split=split,
    )
