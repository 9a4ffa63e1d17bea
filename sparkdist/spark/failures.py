"""Failures outside the user's code (Spark, Py4J, gRPC), condensed to what a user can act on."""

from __future__ import annotations

import re

from sparkdist.errors import JobError, ResultTooLargeError

__all__ = ["first_line", "is_spark_error", "spark_failure"]


def is_spark_error(err: BaseException) -> bool:
    mod = type(err).__module__
    return mod.startswith(("pyspark", "py4j", "grpc"))


_PY_TRACE = re.compile(r"Traceback \(most recent call last\):.*?(?=\n\s*at |\n\n|\Z)", re.S)


_MAX_RESULT = re.compile(
    r"Total size of serialized results of (\d+) tasks \(([^)]*)\) is bigger than "
    r"spark\.driver\.maxResultSize \(([^)]*)\)"
)


def spark_failure(err: BaseException) -> JobError | ResultTooLargeError:
    """A Spark/Py4J failure outside the user's code, condensed to what a user can act on.

    >>> spark_failure(RuntimeError("Job aborted due to stage failure: Total size of serialized results "
    ...     "of 3 tasks (1100.0 MiB) is bigger than spark.driver.maxResultSize (1024.0 MiB)")).setting
    'spark.driver.maxResultSize'
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
    match = _PY_TRACE.search(text)
    trace = match.group(0) if match else ""
    last = (
        trace.strip().splitlines()[-1]
        if trace
        else text.strip().splitlines()[0]
        if text.strip()
        else type(err).__name__
    )
    remote_type, _, remote_message = last.partition(": ")
    return JobError(
        f"the Spark job failed: {last[:500]}"
        + (f"\nLast frames of the worker traceback:\n{_tail(trace)}" if trace else ""),
        remote_type=remote_type if remote_message else type(err).__name__,
        remote_message=remote_message or last,
        remote_traceback=trace or text[:5000],
    )


def _tail(trace: str, lines: int = 12) -> str:
    return "\n".join(trace.strip().splitlines()[-lines:])


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300] if text else ''}"
