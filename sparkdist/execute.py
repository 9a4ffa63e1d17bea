"""exec_job: many independent calls of one function in a single job (RevoScaleR's rxExec)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sparkdist._worker as _worker
from sparkdist import _serde, jobs
from sparkdist.context import ComputeContext, LocalComputeContext, resolve_context
from sparkdist.errors import ArgumentTypeError, InvalidArgumentError, JobError, SparkDistError, TaskError

__all__ = ["exec_job", "task_rng"]


def task_rng() -> Any:
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
        raise SparkDistError("task_rng() can only be called inside a function run by exec_job")
    return rng


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__


def _positive_int(value: Any, arg: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"{arg} must be a positive int, got {value!r}")
    return int(value)


def _check_bool(value: Any, arg: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{arg} must be True or False, got {value!r}")
    return value


def exec_job(
    func: Callable[..., Any],
    *args: Any,
    elem_args: Sequence[Any] | Mapping[Any, Any] | None = None,
    times_to_run: int | None = None,
    task_chunk_size: int | None = None,
    once_per_executor: bool = False,
    rng_seed: int | None = None,
    continue_on_failure: bool = True,
    console_output: bool = False,
    compute_context: ComputeContext | None = None,
    wait: bool | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Run many independent calls of ``func`` as one job (RevoScaleR's ``rxExec``).

    Parameters
    ----------
    func : callable
        The function to call.
    *args, **kwargs
        Shared arguments, given to every call after the per-call ones.
    elem_args : sequence or dict, optional
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
        Generator on it. Results then do not depend on the context, chunking or retries.
    continue_on_failure : bool
        True: a failing call leaves a :class:`TaskError` in its slot and one warning counts the
        failures. False: the first failure raises :class:`JobError` (the failing task's remaining
        calls are skipped).
    console_output : bool
        Show what each call printed, prefixed by its index (or name), after the job. False: nothing
        the calls print is shown.
    compute_context : ComputeContext, optional
        Where to run (default: the current context). All calls run as a single Spark job.
    wait : bool, optional
        False returns a :class:`sparkdist.Job` at once (its ``output()`` holds the captured console
        output); None uses the context's ``wait`` setting.
    progress : bool, optional
        Show a progress bar while waiting (default: only in an interactive terminal or notebook).

    Returns
    -------
    list (in call order), or dict (named calls, or ``once_per_executor``)

    Examples
    --------
    >>> exec_job(pow, 2, elem_args=[1, 2, 3])          # pow(1, 2), pow(2, 2), pow(3, 2)
    [1, 4, 9]
    >>> exec_job(pow, elem_args={"a": (2, 3), "b": {"base": 3, "exp": 2}})
    {'a': 8, 'b': 9}
    """
    if not callable(func):
        raise ArgumentTypeError(f"func must be callable, got {type(func).__name__}: {func!r}")
    names: list[Any] | None = None
    elems: tuple[Any, ...] | None
    if elem_args is None:
        elems = None
    elif isinstance(elem_args, Mapping):
        names, elems = list(elem_args.keys()), tuple(elem_args.values())
    elif isinstance(elem_args, Sequence) and not isinstance(elem_args, (str, bytes, bytearray)):
        elems = tuple(elem_args)
    else:
        raise ArgumentTypeError(
            f"elem_args must be a sequence (list, tuple) or a dict of per-call entries, got {type(elem_args).__name__}"
        )
    times = _positive_int(times_to_run, "times_to_run")
    if elems is not None and times is not None and times != len(elems):
        raise InvalidArgumentError(f"times_to_run={times} disagrees with len(elem_args)={len(elems)}; give one of them")
    chunk = _positive_int(task_chunk_size, "task_chunk_size")
    if rng_seed is not None and (not isinstance(rng_seed, numbers.Integral) or isinstance(rng_seed, bool)):
        raise ArgumentTypeError(f"rng_seed must be an int or None, got {type(rng_seed).__name__}: {rng_seed!r}")
    once = _check_bool(once_per_executor, "once_per_executor")
    _check_bool(continue_on_failure, "continue_on_failure")
    _check_bool(console_output, "console_output")
    ctx = resolve_context(compute_context)
    waiting = jobs.check_wait(wait, ctx)
    show = jobs.check_progress(progress)

    n_calls = 1 if once else (len(elems) if elems is not None else (times or 1))
    if once and elems is not None and len(elems) != 1:
        raise InvalidArgumentError(
            "once_per_executor=True runs one call per executor: give at most one elem_args entry"
        )
    batch = _worker.CallBatch(
        func=func,
        args=tuple(args),
        kwargs=dict(kwargs),
        elems=elems,
        rng_seed=None if rng_seed is None else int(rng_seed),
        capture=console_output,
        stop_on_failure=not continue_on_failure,
        result_limit=ctx.max_result_size,
    )
    if n_calls == 0:
        return {} if names is not None else []
    batch_bytes = b"" if isinstance(ctx, LocalComputeContext) else _pickle_batch(batch)
    if chunk is None:
        chunk = -(-n_calls // max(1, ctx.task_slots))
    size = chunk

    def run() -> Any:
        records = ctx._run_calls(batch_bytes, batch, n_calls, size, once)
        return _finish(records, func, names, once, continue_on_failure, console_output, n_calls)

    return jobs.run(f"exec_job({_name(func)})", ctx, run, wait=waiting, progress=show, unit="call")


def _pickle_batch(batch: _worker.CallBatch) -> bytes:
    return _serde.dumps_explained(
        batch,
        [
            (batch.func, f"func {_name(batch.func)!r}"),
            (batch.args, "the shared positional arguments (*args)"),
            (batch.kwargs, "the shared keyword arguments (**kwargs)"),
            (batch.elems, "elem_args"),
        ],
    )


def _finish(
    records: list[tuple[int, str, Any, str | None, str]],
    func: Callable[..., Any],
    names: list[Any] | None,
    once: bool,
    continue_on_failure: bool,
    console_output: bool,
    n_calls: int,
) -> Any:
    records = sorted(records, key=lambda r: r[0])
    label = (lambda i: names[i]) if names is not None else (lambda i: i)
    if console_output:
        for index, _status, _value, output, where in records:
            tag = f"[{where}]" if once else f"[{label(index)}]"
            for line in (output or "").splitlines():
                jobs.emit_output(f"{tag} {line}")
    values: list[Any] = []
    failures = 0
    for index, status, value, _output, _where in records:
        if status == _worker.ERROR:
            failures += 1
            err = _task_error(value, index, names[index] if names is not None else None, func)
            if not continue_on_failure:
                raise JobError(
                    str(err),
                    remote_type=err.remote_type,
                    remote_message=err.remote_message,
                    remote_traceback=err.remote_traceback,
                    split=index,
                ) from None
            value = err
        values.append(value)
    if failures:
        warnings.warn(
            f"{failures} of {n_calls if not once else len(records)} calls of {_name(func)!r} failed; "
            "their slots hold TaskError objects",
            RuntimeWarning,
            stacklevel=3,
        )
    if once:
        return {where: value for (_, _, _, _, where), value in zip(records, values, strict=True)}
    if names is not None:
        return dict(zip(names, values, strict=True))
    return values


def _task_error(info: _worker.ErrorInfo, index: int, name: Any, func: Callable[..., Any]) -> TaskError:
    call = f"call {index}" + (f" ({name!r})" if name is not None else "")
    tail = "\n".join(info["traceback"].strip().splitlines()[-12:])
    return TaskError(
        f"{call} of {info.get('where') or _name(func)!r} failed with {info['type']}: {info['message']}\n"
        f"on {info['host']}; last frames of the remote traceback:\n{tail}",
        remote_type=info["type"],
        remote_message=info["message"],
        remote_traceback=info["traceback"],
        index=index,
        name=name,
        host=info["host"],
    )
