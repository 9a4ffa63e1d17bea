"""exec_by (RevoScaleR's rxExecBy): one call of a function per group of rows that share the values
of key columns — "small data, many models" — in parallel, with every group's outcome kept.

Where the data's layout already separates the groups (Parquet hive folders of the keys) each group
is read straight from its folders, with no shuffle. Otherwise a Spark context moves the rows once by
the keys and streams every group to the function; the local contexts group the rows in the driver.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from sparkdist import _compat_libs, _options, _serde, _worker, jobs, outputs
from sparkdist._checks import check_bool, check_callable, check_columns, check_seed, name_of
from sparkdist._console import check_progress
from sparkdist._current import resolve_context
from sparkdist._grouping import Chooser, group_in_driver, order
from sparkdist._protocol import GroupRecord, Status, task_error
from sparkdist.context import CallWork, ComputeContext, GroupWork
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError, JobError, TaskError
from sparkdist.jobs import Job
from sparkdist.sources import DataSource, as_data_source

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GroupResult", "GroupResults", "exec_by"]


R = TypeVar("R")  # what the function returns for a group


@dataclass(frozen=True)
class GroupResult(Generic[R]):
    """The outcome of one group: its ``keys`` (``{key column: value}``), the function's ``result``
    (a :class:`sparkdist.TaskError` when it failed) and its ``status``: "OK", or the error's type and
    message. ``GroupResult[R]``: ``result`` is an ``R | TaskError`` to a type checker."""

    keys: dict[str, Any]
    result: R | TaskError
    status: str

    @property
    def ok(self) -> bool:
        """Whether the function returned (rather than raised) for this group."""
        return self.status == "OK"


class GroupResults(list[GroupResult[R]]):
    """exec_by's result: one :class:`GroupResult` per group, sorted by key (nulls first, as Spark sorts).
    ``GroupResults[R]`` holds ``GroupResult[R]`` items, R being what the function returns. With
    ``output=``, ``.output`` is the data source of what the job wrote (each result: rows written)."""

    output: DataSource | None = None

    def to_dict(self) -> dict[tuple[Any, ...], R | TaskError]:
        """``{key values as a tuple: result}``, in key order."""
        return {tuple(g.keys.values()): g.result for g in self}

    def to_pandas(self) -> pd.DataFrame:
        """One row per group: the key columns, then ``result`` and ``status``."""
        import pandas as pd

        rows = [{**g.keys, "result": g.result, "status": g.status} for g in self]
        frame: pd.DataFrame = pd.DataFrame(rows, columns=[*(self[0].keys if self else []), "result", "status"])
        return frame


# The overloads say what comes back: GroupResults of what func returns; in a Job with wait=False.
# fmt: off
@overload
def exec_by(
    func: Callable[..., R], data: Any, keys: Sequence[str] | str, *args: Any, wait: Literal[True] | None = ...,
    filter: Callable[[pd.DataFrame], pd.DataFrame] | None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., continue_on_failure: bool = ..., rng_seed: int | None = ...,
    console_output: bool = ..., compute_context: ComputeContext | None = ..., packages: Sequence[str] | None = ...,
    progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> GroupResults[R]: ...

@overload
def exec_by(
    func: Callable[..., R], data: Any, keys: Sequence[str] | str, *args: Any, wait: Literal[False],
    filter: Callable[[pd.DataFrame], pd.DataFrame] | None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., continue_on_failure: bool = ..., rng_seed: int | None = ...,
    console_output: bool = ..., compute_context: ComputeContext | None = ..., packages: Sequence[str] | None = ...,
    progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> Job[GroupResults[R]]: ...

@overload
def exec_by(
    func: Callable[..., R], data: Any, keys: Sequence[str] | str, *args: Any, wait: bool | None,
    filter: Callable[[pd.DataFrame], pd.DataFrame] | None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., continue_on_failure: bool = ..., rng_seed: int | None = ...,
    console_output: bool = ..., compute_context: ComputeContext | None = ..., packages: Sequence[str] | None = ...,
    progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> GroupResults[R] | Job[GroupResults[R]]: ...

# with output=: each group's rows written (or its TaskError) with .output, or the output's data source
@overload
def exec_by(
    func: Callable[..., Any], data: Any, keys: Sequence[str] | str, *args: Any, output: outputs.OutputArg,
    mode: outputs.Mode = ..., partition_by: Sequence[str] | str | None = ..., wait: bool | None = ...,
    filter: Callable[[pd.DataFrame], pd.DataFrame] | None = ..., chunked: bool = ...,
    columns: Sequence[str] | None = ..., continue_on_failure: bool = ..., rng_seed: int | None = ...,
    console_output: bool = ..., compute_context: ComputeContext | None = ..., packages: Sequence[str] | None = ...,
    progress: bool | None = ..., **kwargs: Any,
) -> Any: ...
# fmt: on


def exec_by(
    func: Callable[..., Any],
    data: Any,
    keys: Sequence[str] | str,
    *args: Any,
    filter: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    chunked: bool = False,
    columns: Sequence[str] | None = None,
    continue_on_failure: bool = True,
    rng_seed: int | None = None,
    console_output: bool = False,
    compute_context: ComputeContext | None = None,
    packages: Sequence[str] | None = None,
    wait: bool | None = None,
    progress: bool | None = None,
    output: Any = None,
    mode: str = "error",
    partition_by: Sequence[str] | str | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``func(keys, group, *args, **kwargs)`` once per group of rows sharing the values of the
    ``keys`` columns, in parallel (RevoScaleR's ``rxExecBy``).

    Parameters
    ----------
    func : callable
        Receives ``keys``, a dict ``{key column: value}``, and ``group``, a pandas DataFrame of the
        group's rows (key columns included) — with ``chunked=True`` an iterator of such DataFrames,
        so a group never has to fit in memory — then ``*args`` / ``**kwargs``.
    data : DataSource, pyspark DataFrame, pandas DataFrame, or path(s) to Parquet data
        What to group. Parquet data in hive folders of the keys (``store=3/...``) is read folder by
        folder where it lies: no rows move between workers. Other data on Spark is moved once by the
        keys (a shuffle) and every group streamed to ``func`` as its rows pass.
    keys : list of str (or one str)
        The key columns. A null key value forms a group of its own, as in Spark's ``groupBy``.
    filter : callable, optional
        ``filter(keys_frame) -> keys_frame``: receives a pandas DataFrame with one row per group (the
        key columns and ``rows``, its row count) before any group runs, and returns the rows of the
        groups to run (rxExecBy's ``filterFunc``).
    chunked : bool
        Pass an iterator of chunks instead of one DataFrame.
    columns : list of str, optional
        Read only these columns (the key columns are always read).
    continue_on_failure : bool
        True: a failing group's :class:`GroupResult` holds a :class:`sparkdist.TaskError` (type,
        message, traceback, keys, host) and one warning counts the failures. False: the first
        failure (in key order) raises :class:`sparkdist.JobError` naming the group's keys.
    rng_seed : int, optional
        Each group gets random streams derived from the seed and its keys (Python's ``random``,
        numpy's global state, :func:`sparkdist.task_rng`): a group's result does not depend on the
        context, the split of the data or which other groups exist.
    console_output : bool
        Show what each group printed, prefixed by its keys, after the job.
    compute_context, packages, wait, progress
        As for :func:`sparkdist.distribute_job`.
    output, mode, partition_by
        Write each group's frames (the key columns added unless ``func`` returns them) to a Parquet
        dataset or Delta table from where the group runs, as for :func:`sparkdist.distribute_job`.
        With ``continue_on_failure=True`` the groups that succeeded are written and each result
        holds its rows written (or its TaskError), with the output's data source as ``.output``;
        with False the output's data source is returned. See the user guide's page "Results that stay distributed".

    Returns
    -------
    GroupResults, or Job
        A list of :class:`GroupResult`, one per group, sorted by key; ``.to_dict()`` and
        ``.to_pandas()`` give other views. ``GroupResults[R]`` for a ``func`` returning ``R``; with
        ``wait=False``, a :class:`sparkdist.Job` of it.

    Examples
    --------
    >>> import pandas as pd
    >>> sales = pd.DataFrame({"store": [1, 1, 2, 2, 2], "amount": [3.0, 5.0, 1.0, 2.0, 6.0]})
    >>> res = exec_by(lambda keys, g: float(g["amount"].sum()), sales, ["store"])
    >>> [(r.keys["store"], r.result, r.status) for r in res]
    [(1, 8.0, 'OK'), (2, 9.0, 'OK')]
    >>> res.to_dict()
    {(1,): 8.0, (2,): 9.0}
    >>> exec_by(lambda keys, g: len(g), sales, ["store"], filter=lambda k: k[k["rows"] > 2]).to_dict()
    {(2,): 3}
    """
    check_callable(func, "func")
    check_callable(filter, "filter", optional=True)
    key_names = _check_keys(keys)
    _check_signature(func, args, kwargs)
    check_bool(chunked, "chunked")
    check_bool(continue_on_failure, "continue_on_failure")
    check_bool(console_output, "console_output")
    seed = check_seed(rng_seed)
    ctx = resolve_context(compute_context)
    wanted = _compat_libs.requirements(packages, "packages")
    ctx.check_packages(wanted)  # the local contexts: this Python must have them, before any job
    waiting = jobs.check_wait(wait, ctx)
    show = check_progress(progress)
    source = as_data_source(data).prepare(ctx)
    check_columns(key_names, source.column_names(), "keys")
    if columns is not None:
        picked = check_columns(columns, source.column_names(), "columns") or ()
        source = source.with_columns([*(k for k in key_names if k not in picked), *picked])
    _check_key_types(source, key_names)
    out = outputs.resolve(output, mode=mode, partition_by=partition_by, source=source)
    task = _worker.GroupTask(
        func=func if out is None else out.wrap(func, [(k, source.arrow_schema().field(k).type) for k in key_names]),
        keys=key_names,
        args=tuple(args),
        kwargs=dict(kwargs),
        chunked=chunked,
        rng_seed=seed,
        capture=console_output,
        stop_on_failure=not continue_on_failure,
        result_limit=ctx.max_result_size,
    )
    task_bytes = _pickle_task(task) if ctx.ships_work else b""
    choose = None if filter is None else Chooser(filter, key_names)

    def run() -> Any:
        ctx.ship_packages(wanted)
        if out is None:
            return _finish(_run(ctx, task, task_bytes, source, choose), task, continue_on_failure)
        with out.writing():  # a failed (continue_on_failure=False), cancelled or interrupted job commits nothing
            records = sorted(_run(ctx, task, task_bytes, source, choose), key=lambda r: order(r.keys))
            out.written((_label(key_names, r.keys), i, r.value) for i, r in enumerate(records) if r.status == Status.OK)
            results = _finish(records, task, continue_on_failure)
            return _with_output(results, out.commit(), continue_on_failure)

    return jobs.run(f"exec_by({name_of(func)})", ctx, run, wait=waiting, progress=show, unit="group")


# -- checks --------------------------------------------------------------------------------------


def _check_keys(keys: Any) -> tuple[str, ...]:
    names = [keys] if isinstance(keys, str) else keys
    if not isinstance(names, (list, tuple)) or not all(isinstance(k, str) for k in names):
        raise ArgumentTypeError(f"keys must be a list of column names (str), got {type(keys).__name__}: {keys!r}")
    if not names:
        raise InvalidArgumentError("keys must name at least one column, got an empty list")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"keys must not repeat a column, got {list(names)!r}")
    return tuple(names)


def _check_signature(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """func must take (keys, group) positionally, then the shared arguments."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: their call will tell
        return
    try:
        signature.bind(None, None, *args, **kwargs)
    except TypeError as err:
        shared = f", then the {len(args)} positional and {len(kwargs)} keyword arguments given to exec_by"
        raise ArgumentTypeError(
            f"func {name_of(func)!r} must take two positional arguments, keys (a dict) and the group's rows"
            f"{shared if args or kwargs else ''}; its signature is {name_of(func)}{signature}: {err}"
        ) from None


def _check_key_types(source: DataSource, keys: tuple[str, ...]) -> None:
    import pyarrow as pa

    schema = source.arrow_schema()
    for key in keys:
        t = schema.field(key).type
        if pa.types.is_nested(t):
            raise ArgumentTypeError(
                f"key column {key!r} has type {t}, which cannot form groups (lists, structs and maps are not "
                "hashable); keys must be columns of scalar types (numbers, strings, dates, booleans)"
            )


def _pickle_task(task: _worker.GroupTask) -> bytes:
    return _serde.dumps_explained(
        task,
        [
            (task.func, f"func {name_of(task.func)!r}"),
            (task.args, "the shared positional arguments (*args) for func"),
            (task.kwargs, "the shared keyword arguments (**kwargs) for func"),
        ],
    )


# -- running -------------------------------------------------------------------------------------


def _run(
    ctx: ComputeContext,
    task: _worker.GroupTask,
    task_bytes: bytes,
    source: DataSource,
    choose: Chooser | None,
) -> list[GroupRecord]:
    """Groups from the data's layout (hive folders) run as calls; else the context forms them where
    the data is (Spark: one shuffle); else the driver groups the rows and they run as calls."""
    planned = source.key_groups(task.keys)
    in_memory = False
    _options.debug(
        "plan: exec_by groups %s",
        "read from their own folders, no shuffle" if planned is not None else f"formed in {ctx!r}",
    )
    if planned is None:
        records = ctx.run_groups(GroupWork(task, task_bytes, source, choose))
        if records is not None:
            return records
        planned, in_memory = group_in_driver(source, task.keys), True
        _options.debug("plan: exec_by formed %d groups in the driver's process", len(planned))
    if choose is not None:
        chosen = choose([g.keys for g in planned], [g.rows for g in planned])
        planned = [g for g in planned if _worker.same_keys(g.keys) in chosen]
    if not planned:
        return []
    batch = _worker.CallBatch(
        func=_worker.GroupCall(task),
        args=(),
        kwargs={},
        elems=tuple((g.keys, g.split) for g in planned),
        rng_seed=None,
        capture=task.capture,
        stop_on_failure=task.stop_on_failure,
        result_limit=task.result_limit,
    )
    # groups that carry their rows travel once per task: fewer tasks; groups read where they lie: more
    tasks = max(1, ctx.task_slots * (1 if in_memory else 2))
    batch_bytes = _serde.dumps_checked(batch, what=f"the groups of {name_of(task.func)!r}") if ctx.ships_work else b""
    work = CallWork(batch, batch_bytes, len(planned), -(-len(planned) // tasks))
    return [GroupRecord(planned[r.call].keys, r.status, r.value, r.output, r.where) for r in ctx.run_calls(work)]


def _label(names: tuple[str, ...], keys: tuple[Any, ...]) -> str:
    return "group " + ", ".join(f"{k}={v!r}" for k, v in zip(names, keys, strict=True))


def _with_output(results: GroupResults[Any], source: DataSource, continue_on_failure: bool) -> Any:
    """Under ``output=``: the source alone, or each group's rows written (or TaskError) and ``.output``."""
    if not continue_on_failure:
        return source
    done: GroupResults[int] = GroupResults(
        GroupResult(g.keys, g.result if isinstance(g.result, TaskError) else g.result.rows, g.status) for g in results
    )
    done.output = source
    return done


def _finish(records: list[GroupRecord], task: _worker.GroupTask, continue_on_failure: bool) -> GroupResults[Any]:
    records = sorted(records, key=lambda r: order(r.keys))
    out: GroupResults[Any] = GroupResults()
    failures = 0
    for r in records:
        keys = dict(zip(task.keys, r.keys, strict=True))
        if task.capture:
            tag = "[" + ", ".join(f"{k}={v!r}" for k, v in keys.items()) + "]"
            for line in (r.output or "").splitlines():
                jobs.emit_output(f"{tag} {line}")
        if r.status != Status.ERROR:
            out.append(GroupResult(keys, r.value, "OK"))
            continue
        failures += 1
        err = task_error(r.value, -1, None, task.func, keys=keys)
        if not continue_on_failure:
            raise JobError(
                str(err),
                remote_type=err.remote_type,
                remote_message=err.remote_message,
                remote_traceback=err.remote_traceback,
            ) from None
        out.append(GroupResult(keys, err, f"{err.remote_type}: {err.remote_message}"))
    if failures:
        warnings.warn(
            f"{failures} of {len(records)} groups of {name_of(task.func)!r} failed; their results hold TaskError "
            "objects (status says why)",
            RuntimeWarning,
            stacklevel=5,
        )
    return out
