"""exec_job: many independent calls of one function in a single job (RevoScaleR's rxExec)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast, overload

from sparkdist import _compat_libs, _options, _serde, _worker, jobs, outputs
from sparkdist._checks import check_bool, check_callable, check_positive_int, check_seed, name_of
from sparkdist._console import check_progress
from sparkdist._current import resolve_context
from sparkdist._protocol import CallRecord, Status, task_error
from sparkdist.context import CallWork, ComputeContext
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError, JobError, SparkDistError, TaskError
from sparkdist.jobs import Job

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    #: What elem_args can be besides a dict: one entry per call
    ElemArgs: TypeAlias = Sequence[Any] | np.ndarray[Any, Any] | pd.Series[Any] | pd.Index[Any]

__all__ = ["exec_job", "task_rng"]

R = TypeVar("R")  # what func returns
K = TypeVar("K")  # the names of named calls (elem_args a dict)


def task_rng() -> np.random.Generator:
    """The ``numpy.random.Generator`` of the exec_job call that is running.

    With ``exec_job(..., rng_seed=s)`` call *i* gets a stream derived from ``(s, i)``: the same in
    every compute context, whatever the chunking or the number of executors.

    >>> from sparkdist import exec_job, task_rng
    >>> a = exec_job(lambda: task_rng().integers(1000), times_to_run=3, rng_seed=42)
    >>> a == exec_job(lambda: task_rng().integers(1000), times_to_run=3, rng_seed=42)
    True
    """
    rng = _worker.current_task_rng()
    if rng is None:
        raise SparkDistError("task_rng() can only be called inside a function run by exec_job or exec_by")
    return cast("np.random.Generator", rng)


# The overloads say what comes back: a list, or a dict for named calls (elem_args a dict) and for
# once_per_executor, each slot the call's result or its TaskError; in a Job with wait=False. Each family
# ends with wait=<a bool> (either); elem_args keeps one type within a family, so an argument typed with Any
# (a pandas Series[Any]) still picks one. Written compactly so their differences show.
# fmt: off
@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | None = ..., once_per_executor: Literal[False] = ...,
    wait: Literal[True] | None = ...,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> list[R | TaskError]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | None = ..., once_per_executor: Literal[False] = ...,
    wait: Literal[False],
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> Job[list[R | TaskError]]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | None = ..., once_per_executor: Literal[False] = ...,
    wait: bool | None,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> list[R | TaskError] | Job[list[R | TaskError]]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: Mapping[K, Any], once_per_executor: Literal[False] = ...,
    wait: Literal[True] | None = ...,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> dict[K, R | TaskError]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: Mapping[K, Any], once_per_executor: Literal[False] = ...,
    wait: Literal[False],
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> Job[dict[K, R | TaskError]]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: Mapping[K, Any], once_per_executor: Literal[False] = ...,
    wait: bool | None,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> dict[K, R | TaskError] | Job[dict[K, R | TaskError]]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | Mapping[Any, Any] | None = ..., once_per_executor: Literal[True],
    wait: Literal[True] | None = ...,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> dict[str, R | TaskError]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | Mapping[Any, Any] | None = ..., once_per_executor: Literal[True],
    wait: Literal[False],
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> Job[dict[str, R | TaskError]]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | Mapping[Any, Any] | None = ..., once_per_executor: Literal[True],
    wait: bool | None,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> dict[str, R | TaskError] | Job[dict[str, R | TaskError]]: ...

@overload
def exec_job(
    func: Callable[..., R], *args: Any,
    elem_args: ElemArgs | Mapping[Any, Any] | None = ..., once_per_executor: bool,
    wait: bool | None = ...,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., output: None = ..., **kwargs: Any,
) -> list[R | TaskError] | dict[Any, R | TaskError] | Job[list[R | TaskError]] | Job[dict[Any, R | TaskError]]: ...

# with output=: each call's rows written (or its TaskError) with .output, or the output's data source
@overload
def exec_job(
    func: Callable[..., Any], *args: Any, output: outputs.OutputArg,
    mode: outputs.Mode = ..., partition_by: Sequence[str] | str | None = ...,
    elem_args: ElemArgs | Mapping[Any, Any] | None = ..., once_per_executor: bool = ..., wait: bool | None = ...,
    times_to_run: int | None = ..., task_chunk_size: int | None = ..., rng_seed: int | None = ...,
    continue_on_failure: bool = ..., console_output: bool = ..., compute_context: ComputeContext | None = ...,
    packages: Sequence[str] | None = ..., progress: bool | None = ..., **kwargs: Any,
) -> Any: ...
# fmt: on


def exec_job(
    func: Callable[..., Any],
    *args: Any,
    elem_args: Sequence[Any] | np.ndarray[Any, Any] | pd.Series[Any] | pd.Index[Any] | Mapping[Any, Any] | None = None,
    times_to_run: int | None = None,
    task_chunk_size: int | None = None,
    once_per_executor: bool = False,
    rng_seed: int | None = None,
    continue_on_failure: bool = True,
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
    """Run many independent calls of ``func`` as one job (RevoScaleR's ``rxExec``).

    Parameters
    ----------
    func : callable
        The function to call.
    *args, **kwargs
        Shared arguments, given to every call after the per-call ones.
    elem_args : sequence, 1-D array, range or dict, optional
        One entry per call: a ``dict`` gives keyword arguments, a ``tuple`` positional arguments,
        anything else is the first positional argument. A dict ``{name: entry}`` names the calls:
        the result is then a dict with the same keys in the same order.
    times_to_run : int, optional
        Number of calls when ``elem_args`` is None (default 1). Given both, they must agree.
    task_chunk_size : int, optional
        Calls per Spark task (per pool task locally). Default: the calls spread evenly over the
        task slots.
    once_per_executor : bool
        Exactly one call on each executor; the result is a dict keyed by "host/executor id".
        In local contexts, one call.
    rng_seed : int, optional
        Call *i* gets its own random stream derived from ``(rng_seed, i)``: Python's ``random`` and
        numpy's global state are seeded with it during the call, and :func:`task_rng` returns a
        Generator on it. Results then do not depend on the context, chunking or retries. Any int
        (negative ones too, as in R) gives its own streams.
    continue_on_failure : bool
        True: a failing call leaves a :class:`TaskError` in its slot and one warning counts the
        failures. False: the first failure raises :class:`JobError` (the failing task's remaining
        calls are skipped).
    console_output : bool
        Show what each call printed, prefixed by its index (or name), after the job. False: nothing
        the calls print is shown.
    compute_context : ComputeContext, optional
        Where to run (default: the current context). All calls run as a single Spark job.
    packages : list of str, optional
        Requirements (``"statsmodels>=0.14"``) this job's function needs where it runs: a Spark context
        ships them to the executors (with its own ``packages``); the local contexts check that this
        Python has them (:class:`sparkdist.MissingPackageError` names what is missing).
    wait : bool, optional
        False returns a :class:`sparkdist.Job` at once (its ``output()`` holds the captured console
        output); None uses the context's ``wait`` setting.
    progress : bool, optional
        Show a progress bar while waiting (default: only in an interactive terminal or notebook).
    output, mode, partition_by
        Write what each call returns (frames, as for :func:`sparkdist.distribute_job`) to a Parquet
        dataset or Delta table from where it runs. With ``continue_on_failure=True`` the calls that
        succeeded are written and the results hold each call's rows written (or its TaskError), with
        the output's data source as their ``.output``; with False the output's data source is
        returned. See the user guide's page "Results that stay distributed".

    Returns
    -------
    list (in call order), or dict (named calls, or ``once_per_executor``), or Job
        For a ``func`` returning ``R``: ``list[R | TaskError]``, ``dict[K, R | TaskError]`` for
        ``elem_args`` a dict with keys ``K``, ``dict[str, R | TaskError]`` with ``once_per_executor``;
        with ``wait=False``, a :class:`sparkdist.Job` of it.

    Examples
    --------
    >>> exec_job(pow, 2, elem_args=[1, 2, 3])          # pow(1, 2), pow(2, 2), pow(3, 2)
    [1, 4, 9]
    >>> exec_job(pow, elem_args={"a": (2, 3), "b": {"base": 3, "exp": 2}})
    {'a': 8, 'b': 9}
    """
    check_callable(func, "func")
    names, elems = _elements(elem_args)
    times = check_positive_int(times_to_run, "times_to_run")
    if elems is not None and times is not None and times != len(elems):
        raise InvalidArgumentError(f"times_to_run={times} disagrees with len(elem_args)={len(elems)}; give one of them")
    chunk = check_positive_int(task_chunk_size, "task_chunk_size")
    seed = check_seed(rng_seed)
    once = check_bool(once_per_executor, "once_per_executor")
    check_bool(continue_on_failure, "continue_on_failure")
    check_bool(console_output, "console_output")
    ctx = resolve_context(compute_context)
    wanted = _compat_libs.requirements(packages, "packages")
    ctx.check_packages(wanted)  # the local contexts: this Python must have them, before any job
    waiting = jobs.check_wait(wait, ctx)
    show = check_progress(progress)
    if once and elems is not None and len(elems) != 1:
        raise InvalidArgumentError(
            "once_per_executor=True runs one call per executor: give at most one elem_args entry"
        )
    n_calls = 1 if once else (len(elems) if elems is not None else (times or 1))
    out = outputs.resolve(output, mode=mode, partition_by=partition_by)
    batch = _worker.CallBatch(
        func=func if out is None else out.wrap(func),
        args=tuple(args),
        kwargs=dict(kwargs),
        elems=elems,
        rng_seed=seed,
        capture=console_output,
        stop_on_failure=not continue_on_failure,
        result_limit=ctx.max_result_size,
    )
    if n_calls == 0:  # no Spark job, but a Job all the same when not waiting
        empty: dict[Any, Any] | list[Any] = {} if names is not None else []
        return jobs.run(f"exec_job({name_of(func)})", ctx, lambda: empty, wait=waiting, progress=False, unit="call")
    work = CallWork(
        batch,
        _pickle_batch(batch) if ctx.ships_work else b"",
        n_calls,
        chunk or -(-n_calls // max(1, ctx.task_slots)),
        once,
    )

    _options.debug(
        "plan: exec_job(%s): %s calls, %s per task, in %r",
        name_of(func),
        "one per executor" if once else n_calls,
        work.chunk,
        ctx,
    )

    def run() -> Any:
        ctx.ship_packages(wanted)
        if out is None:
            return _finish(ctx.run_calls(work), func, names, once, continue_on_failure, console_output, n_calls)
        return out.calls(  # the calls that succeeded are committed
            lambda: ctx.run_calls(work),
            lambda records: _finish(records, func, names, once, continue_on_failure, console_output, n_calls),
            names,
            continue_on_failure,
        )

    return jobs.run(f"exec_job({name_of(func)})", ctx, run, wait=waiting, progress=show, unit="call")


def _elements(elem_args: Any) -> tuple[list[Any] | None, tuple[Any, ...] | None]:
    """(call names, per-call entries) from ``elem_args``: a dict names the calls; sequences, ranges
    and 1-D arrays give one entry each (numpy scalars become Python ones)."""
    if elem_args is None:
        return None, None
    if isinstance(elem_args, Mapping):
        return list(elem_args.keys()), tuple(elem_args.values())
    if getattr(elem_args, "ndim", None) == 1 and hasattr(elem_args, "tolist"):  # numpy arrays, pandas Series
        return None, tuple(elem_args.tolist())
    if isinstance(elem_args, Sequence) and not isinstance(elem_args, (str, bytes, bytearray)):
        return None, tuple(elem_args)
    raise ArgumentTypeError(
        "elem_args must be a sequence (list, tuple, range), a 1-D array or a dict of per-call entries, "
        f"got {type(elem_args).__name__}" + (f" with {elem_args.ndim} dimensions" if hasattr(elem_args, "ndim") else "")
    )


def _pickle_batch(batch: _worker.CallBatch) -> bytes:
    return _serde.dumps_explained(
        batch,
        [
            (batch.func, f"func {name_of(batch.func)!r}"),
            (batch.args, "the shared positional arguments (*args)"),
            (batch.kwargs, "the shared keyword arguments (**kwargs)"),
            (batch.elems, "elem_args"),
        ],
    )


def _finish(
    records: list[CallRecord],
    func: Callable[..., Any],
    names: list[Any] | None,
    once: bool,
    continue_on_failure: bool,
    console_output: bool,
    n_calls: int,
) -> Any:
    records = sorted(records, key=lambda r: r.call)
    if console_output:
        for r in records:
            tag = f"[{r.where}]" if once else f"[{names[r.call] if names is not None else r.call}]"
            for line in (r.output or "").splitlines():
                jobs.emit_output(f"{tag} {line}")
    values: list[Any] = []
    failures = 0
    for r in records:
        value = r.value
        if r.status == Status.ERROR:
            failures += 1
            err = task_error(r.value, r.call, names[r.call] if names is not None else None, func)
            if not continue_on_failure:
                raise JobError(
                    str(err),
                    remote_type=err.remote_type,
                    remote_message=err.remote_message,
                    remote_traceback=err.remote_traceback,
                    split=r.call,
                ) from None
            value = err
        values.append(value)
    if failures:
        warnings.warn(
            f"{failures} of {n_calls if not once else len(records)} calls of {name_of(func)!r} failed; "
            "their slots hold TaskError objects",
            RuntimeWarning,
            stacklevel=5,
        )
    if once:
        return {r.where: value for r, value in zip(records, values, strict=True)}
    if names is not None:
        return dict(zip(names, values, strict=True))
    return values
