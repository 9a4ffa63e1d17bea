"""What the executors run, and whether they answer (RevoScaleR's ``rxGetNodeInfo`` and ``rxPingNodes``).

The first thing to check on a new cluster, and when a job fails with ``ModuleNotFoundError`` or an
unpickling error on the executors: their Python and library versions next to the driver's.

>>> import sparkdist as sd
>>> info = sd.executor_info(sd.LocalComputeContext())
>>> info[["executor", "cores"]].to_dict("records")
[{'executor': 'local', 'cores': 1}]
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sparkdist import _compat, _worker, jobs
from sparkdist._checks import check_positive_number
from sparkdist._current import resolve_context
from sparkdist.errors import JobError, VersionMismatchWarning
from sparkdist.jobs import Job, JobTimeoutError

if TYPE_CHECKING:
    import pandas as pd

    from sparkdist.context import ComputeContext

__all__ = ["INFO_COLUMNS", "PING_COLUMNS", "executor_info", "ping_executors"]

#: Columns of :func:`executor_info`'s frame.
INFO_COLUMNS = (
    "host", "executor", "pid", "cores", "memory", "python", "python_executable", "platform", "cpus",
    *_worker.LIBRARIES, "shipped", "packages",
)  # fmt: skip
#: Columns of :func:`ping_executors`'s frame.
PING_COLUMNS = ("executor", "host", "ok", "seconds", "error")
#: The longest ping_executors waits, after its timeout, for the canceled job to end.
_CANCEL_GRACE = 5.0


def executor_info(compute_context: ComputeContext | None = None) -> pd.DataFrame:
    """One row per executor: what it runs (RevoScaleR's ``rxGetNodeInfo``).

    A small job runs once on every executor (for ``LocalParallelComputeContext``: in every worker
    process; for ``LocalComputeContext``: in this process). Warns with a
    :class:`sparkdist.VersionMismatchWarning` when an executor runs another Python minor version or
    another major version of a library in the frame than the driver (0.x versions: another minor).

    Parameters
    ----------
    compute_context : ComputeContext, optional
        Where to look (default: the current context).

    Returns
    -------
    pandas.DataFrame
        Sorted by host and executor, with the columns:

        - ``host``, ``executor`` (Spark's executor id; "driver" in local mode, where the driver's JVM
          runs the tasks; "local" for this process; "worker-<pid>" for a pool's worker), ``pid`` of
          the Python process that answered;
        - ``cores`` (task slots of the executor, None where unknown), ``memory`` (the executor JVM's
          heap as Spark sets it from ``spark.executor.memory``, e.g. "4g"; None without a JVM),
          ``cpus`` (of the host);
        - ``python`` (version), ``python_executable``, ``platform``;
        - the versions of ``pyspark``, ``pyarrow``, ``pandas``, ``numpy``, ``cloudpickle`` (the one
          sparkdist pickles with: pyspark's bundled copy where pyspark is present) and ``sparkdist``
          (None where a library cannot be imported);
        - ``shipped``: those of them loaded from an archive put on the path for the job (sparkdist
          ships itself; pyspark comes from Spark's own ``python/lib/pyspark.zip`` on a cluster)
          rather than installed in the executor's Python, e.g. "pyspark, sparkdist";
        - ``packages``: the distributions shipped with ``packages=``, e.g. "msgpack 1.1.0, tabulate 0.9.0".

    Examples
    --------
    >>> import platform, sparkdist as sd
    >>> info = sd.executor_info(sd.LocalComputeContext())
    >>> list(info.columns[:5]), info.loc[0, "python"] == platform.python_version()
    (['host', 'executor', 'pid', 'cores', 'memory'], True)

    On a cluster, e.g. to see which executors lack a library or run another Python::

        sd.executor_info(sd.SparkComputeContext(spark))[["host", "executor", "python", "numpy", "shipped"]]
    """
    ctx = resolve_context(compute_context)
    run = functools.partial(ctx.run_on_executors, _worker.environment)
    rows = jobs.run("executor_info", ctx, run, wait=True, progress=False)
    failed = [row for row in rows if "error" in row]
    if failed:
        info = failed[0]["error"]
        raise JobError(
            f"executor_info's probe failed on {failed[0]['executor']} with {info['type']}: {info['message']}",
            remote_type=info["type"],
            remote_message=info["message"],
            remote_traceback=info["traceback"],
        )
    rows = _sorted(_fill_cores(rows, ctx))
    warn_mismatches(rows, _worker.environment(), stacklevel=2)
    return _frame(rows, INFO_COLUMNS)


def ping_executors(compute_context: ComputeContext | None = None, timeout: float = 30) -> pd.DataFrame:
    """Run a trivial task on every executor and report which answered and how fast (RevoScaleR's
    ``rxPingNodes``).

    Warns with a :class:`sparkdist.VersionMismatchWarning` as :func:`executor_info` does. It does not
    hang: after ``timeout`` seconds the ping job is canceled (its Spark work interrupted by job tag,
    a pool's workers ended) and what is known is reported.

    Parameters
    ----------
    compute_context : ComputeContext, optional
        Where to ping (default: the current context).
    timeout : float
        Seconds to wait for the answers (a positive number).

    Returns
    -------
    pandas.DataFrame
        One row per executor, with the columns ``executor``, ``host``, ``ok`` (it answered),
        ``seconds`` (from the start of the ping on the driver to the executor's answer, by the
        executor's clock: the round trip, give or take the clocks' difference on a cluster of several
        machines) and ``error`` (why it did not answer, else None). Executors the driver knows of but
        that did not answer (classic Spark: those registered with it) have ``ok`` False; where the
        driver cannot list them (Spark Connect, the local contexts) a ping that failed or timed out
        is one row with ``executor`` None.

    Examples
    --------
    >>> import sparkdist as sd
    >>> ping = sd.ping_executors(sd.LocalComputeContext(), timeout=10)
    >>> ping[["executor", "ok", "error"]].to_dict("records")
    [{'executor': 'local', 'ok': True, 'error': None}]
    >>> sd.ping_executors(timeout=0)
    Traceback (most recent call last):
    ...
    sparkdist.errors.InvalidArgumentError: timeout must be a positive, finite number of seconds, got 0
    """
    limit = check_positive_number(timeout, "timeout", hint=" of seconds")
    ctx = resolve_context(compute_context)
    started = time.time()
    run = functools.partial(ctx.run_on_executors, _worker.environment)
    rows: list[dict[str, Any]] = []
    problem: str | None = None
    job = jobs.run("ping_executors", ctx, run, wait=False, progress=False)
    try:
        rows = job.result(timeout=limit) if isinstance(job, Job) else job
    except JobTimeoutError:
        problem = f"no answer within {limit:g} s; the ping job was canceled"
        job.cancel()
        job.wait(_CANCEL_GRACE)
    except Exception as err:  # noqa: BLE001 - a ping reports a failed job instead of raising it
        text = str(err).strip()
        problem = f"the ping job failed: {type(err).__name__}: {text.splitlines()[0] if text else ''}"
    answered = [row for row in rows if "error" not in row]
    warn_mismatches(answered, _worker.environment(), stacklevel=2)
    return _frame(_ping_rows(rows, started, problem, _known_executors(ctx)), PING_COLUMNS)


# -- helpers ------------------------------------------------------------------------------------------


def _fill_cores(rows: list[dict[str, Any]], ctx: ComputeContext) -> list[dict[str, Any]]:
    """In local mode the driver runs the tasks: its cores are the context's task slots."""
    for row in rows:
        if row.get("executor") == "driver" and row.get("cores") is None:
            row["cores"] = ctx.task_slots
    return rows


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[str, int, int, str]:
        executor = str(row.get("executor") or "")
        return str(row.get("host") or ""), not executor.isdigit(), int(executor) if executor.isdigit() else 0, executor

    return sorted(rows, key=key)


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(
        [[row.get(c) for c in columns] for row in rows], columns=list(columns), dtype=object
    ).infer_objects()
    return frame


def _known_executors(ctx: ComputeContext) -> list[tuple[str, str]] | None:
    """(id, host) of the executors the driver knows of (classic Spark), else None."""
    session = ctx.spark_session if ctx.is_distributed else None
    return _compat.registered_executors(session) if session is not None else None


def _ping_rows(
    rows: list[dict[str, Any]], started: float, problem: str | None, known: list[tuple[str, str]] | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        if "error" in row:  # the probe itself failed there: where is "host/executor"
            host, _, executor = str(row["executor"]).partition("/")
            info = row["error"]
            out.append({"executor": executor, "host": host, "ok": False, "error": f"{info['type']}: {info['message']}"})
        else:
            seconds = round(max(0.0, float(row["time"]) - started), 3)
            out.append({"executor": row["executor"], "host": row["host"], "ok": True, "seconds": seconds})
    seen = {str(row["executor"]) for row in out}
    silent = [(eid, host) for eid, host in known or [] if eid not in seen]
    why = problem or "no answer: its task slots stayed busy with other work, or it was lost"
    out += [{"executor": eid, "host": host, "ok": False, "error": why} for eid, host in silent]
    if not out:
        out.append({"executor": None, "host": None, "ok": False, "error": problem or "no executor answered"})
    return _sorted(out)


def _major(version: str) -> str:
    """The part of a version that must agree: the major version, or major.minor for 0.x.

    >>> _major("2.1.3"), _major("0.1.0"), _major("17.0.0.dev1")
    ('2', '0.1', '17')
    """
    parts = version.split(".")
    return ".".join(parts[:2]) if parts[0] == "0" else parts[0]


def mismatches(rows: Sequence[Mapping[str, Any]], driver: Mapping[str, Any]) -> dict[str, list[str]]:
    """What differs from the driver, e.g. ``{"numpy 1.26.4 (driver: 2.1.0)": ["host-a/1", ...]}``:
    another Python minor version, or another major version of a library (0.x: another minor).

    >>> mismatches([{"host": "h", "executor": "1", "python": "3.10.2", "numpy": "2.0.1"}],
    ...            {"python": "3.11.7", "numpy": "2.1.0"})
    {'Python 3.10.2 (driver: 3.11.7)': ['h/1']}
    """
    found: dict[str, list[str]] = {}
    for row in rows:
        where = f"{row.get('host')}/{row.get('executor')}"
        theirs, ours = row.get("python"), driver.get("python")
        if theirs and ours and str(theirs).split(".")[:2] != str(ours).split(".")[:2]:
            found.setdefault(f"Python {theirs} (driver: {ours})", []).append(where)
        for name in _worker.LIBRARIES:
            theirs, ours = row.get(name), driver.get(name)
            if theirs and ours and _major(str(theirs)) != _major(str(ours)):
                found.setdefault(f"{name} {theirs} (driver: {ours})", []).append(where)
    return found


def warn_mismatches(rows: Sequence[Mapping[str, Any]], driver: Mapping[str, Any], *, stacklevel: int = 1) -> None:
    """One :class:`VersionMismatchWarning` listing every difference from the driver, if any."""
    found = mismatches(rows, driver)
    if not found:
        return
    lines = "\n".join(
        f"  {what} on {', '.join(where[:5])}" + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        for what, where in found.items()
    )
    warnings.warn(
        f"executors run other versions than the driver:\n{lines}\nFunctions, arguments and results pickled on "
        "one side may fail to load on the other (ModuleNotFoundError, AttributeError, unpickling errors). "
        "Install the driver's versions where the work runs (sparkdist.executor_info() lists them all).",
        VersionMismatchWarning,
        stacklevel=stacklevel + 1,
    )
