"""Failures outside the user's code (Spark, Py4J, gRPC), condensed to what a user can act on."""

from __future__ import annotations

import re
from collections.abc import Callable

from sparkdist._protocol import environment_hint
from sparkdist.errors import JobError, ResultTooLargeError, WorkerDiedError

__all__ = ["first_line", "is_spark_error", "spark_failure"]


def is_spark_error(err: BaseException) -> bool:
    mod = type(err).__module__
    return mod.startswith(("pyspark", "py4j", "grpc"))


_PY_TRACE = re.compile(r"Traceback \(most recent call last\):.*?(?=\n\s*at |\n\n|\n\s*SQLSTATE: |\Z)", re.S)
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\s*$")
_WORKER_DIED = "Python worker exited unexpectedly"
_LOST_TASK = re.compile(r"Lost task (\d+)\.\d+ in stage [\d.]+ \(TID \d+\) \(([^ )]+) executor ([^)]+)\)")


_MAX_RESULT = re.compile(
    r"Total size of serialized results of (\d+) tasks \(([^)]*)\) is bigger than "
    r"spark\.driver\.maxResultSize \(([^)]*)\)"
)


def spark_failure(err: BaseException, unit: Callable[[int], str] | None = None) -> JobError | ResultTooLargeError:
    """A Spark/Py4J failure outside the user's code, condensed to what a user can act on;
    ``unit(partition)`` names what a task of the job runs (e.g. "split 3 of 'f'").

    >>> spark_failure(RuntimeError("Job aborted due to stage failure: Total size of serialized results "
    ...     "of 3 tasks (1100.0 MiB) is bigger than spark.driver.maxResultSize (1024.0 MiB)")).setting
    'spark.driver.maxResultSize'
    >>> print(spark_failure(RuntimeError("Lost task 2.3 in stage 4.0 (TID 9) (10.0.0.5 executor 1): "
    ...     "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)"),
    ...     unit=lambda p: f"split {p} of 'fit'"))
    the Python worker running split 2 of 'fit' died on 10.0.0.5 (executor 1) without sending a result \
or an error: a signal (SIGKILL, e.g. from the out-of-memory killer), a crash in native code or an exit \
outside the function's own call. The job was stopped; the executor's log on that host may say more.
    """
    text = str(err)
    limit = _MAX_RESULT.search(text)
    if limit is not None:
        tasks, size, cap = limit.groups()
        return ResultTooLargeError(
            f"the results of {tasks} Spark tasks ({size}) passed Spark's spark.driver.maxResultSize ({cap}); "
            "the job was stopped. Return less from each call, combine results on the executors (distribute_job's "
            "reduce=), or raise spark.driver.maxResultSize when the session is created (it cannot change later).",
            setting="spark.driver.maxResultSize",
        )
    if _WORKER_DIED in text:
        return _worker_died(text, unit)
    match = _PY_TRACE.search(text)
    trace = _SQLSTATE.sub("", match.group(0)) if match else ""
    first = _SQLSTATE.sub("", text).strip()
    last = trace.strip().splitlines()[-1] if trace else first.splitlines()[0] if first else type(err).__name__
    remote_type, _, remote_message = last.partition(": ")
    return JobError(
        f"the Spark job failed: {last[:500]}"
        + (f"\nLast frames of the worker traceback:\n{_tail(trace)}" if trace else "")
        + environment_hint(remote_type, remote_message),
        remote_type=remote_type if remote_message else type(err).__name__,
        remote_message=remote_message or last,
        remote_traceback=trace or text[:5000],
    )


def _worker_died(text: str, unit: Callable[[int], str] | None) -> WorkerDiedError:
    lost = _LOST_TASK.search(text)
    where = "a Spark task"
    host = ""
    if lost is not None:
        partition, host_name, executor = int(lost.group(1)), lost.group(2), lost.group(3)
        where = unit(partition) if unit is not None else f"partition {partition}"
        host = f" on {host_name} (executor {executor})"
    return WorkerDiedError(
        f"the Python worker running {where} died{host} without sending a result or an error: a signal (SIGKILL, "
        "e.g. from the out-of-memory killer), a crash in native code or an exit outside the function's own call. The job "
        "was stopped; the executor's log on that host may say more.",
        remote_type="WorkerDied",
        remote_message=f"the Python worker running {where} died{host}",
        remote_traceback=text[:5000],
    )


def _tail(trace: str, lines: int = 12) -> str:
    return "\n".join(trace.strip().splitlines()[-lines:])


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300] if text else ''}"
