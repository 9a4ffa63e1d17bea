"""The one place that asks "Spark Connect or classic?" and "which pyspark?" (``_compat_libs`` asks
"which pandas, numpy, pyarrow?").

Everything here imports pyspark lazily: ``import sparkdist`` must stay fast and start no JVM.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def cloudpickle() -> Any:
    """The cloudpickle that sparkdist pickles with: the copy bundled with pyspark where pyspark is
    present (the same on every executor), else the cloudpickle package (the Local contexts)."""
    try:
        from pyspark import cloudpickle as bundled
    except ImportError:
        import cloudpickle as installed

        return installed
    return bundled


def _pyspark_class(obj: Any, name: str, package: str = "pyspark.sql") -> bool:
    """Whether ``obj``'s class is, or derives from, pyspark's class ``name`` in ``package`` (so that a
    subclass -- databricks-connect's, or a user's own -- counts as what it extends)."""
    return any(
        (c.__module__ or "").startswith(package) and c.__name__ == name for c in getattr(type(obj), "__mro__", ())
    )


def _connect_session_like(obj: Any) -> bool:
    """Duck typing for sessions pyspark's classes do not cover: a client connection, artifacts and
    DataFrames, and no JVM (checked on the class: a session's properties may raise when read)."""
    cls = type(obj)
    return all(hasattr(cls, a) for a in ("client", "addArtifacts", "createDataFrame", "range", "interruptTag"))


def is_spark_dataframe(obj: Any) -> bool:
    """True for a classic or Spark Connect DataFrame (without importing Connect's grpc stack)."""
    return "pyspark" in sys.modules and _pyspark_class(obj, "DataFrame")


def is_spark_session(obj: Any) -> bool:
    """True for a classic or Spark Connect SparkSession, also a subclass of either (a databricks-connect
    ``DatabricksSession`` is pyspark's Connect session) or a Connect session by its methods."""
    if "pyspark" not in sys.modules:
        return False
    return _pyspark_class(obj, "SparkSession") or _connect_session_like(obj)


def is_connect(obj: Any) -> bool:
    """True when a SparkSession or DataFrame belongs to Spark Connect: a Connect session is a Connect
    session, whoever made it (pyspark, databricks-connect, a subclass)."""
    if any((c.__module__ or "").startswith("pyspark.sql.connect") for c in getattr(type(obj), "__mro__", ())):
        return True
    return _connect_session_like(obj) and not _pyspark_class(obj, "SparkSession", "pyspark.sql.session")


def session_of(df: DataFrame) -> SparkSession:
    """The SparkSession a DataFrame belongs to."""
    return df.sparkSession


def is_stopped(session: SparkSession) -> bool:
    """Whether ``session`` can no longer run jobs."""
    if is_connect(session):
        return bool(getattr(session, "is_stopped", False))
    sc = getattr(session, "_sc", None)
    jsc = getattr(sc, "_jsc", None)
    if jsc is None:
        return True
    try:
        return bool(jsc.sc().isStopped())
    except Exception:  # the gateway itself is gone
        return True


def active_session() -> SparkSession | None:
    """The SparkSession already active in this process, if any; never starts one."""
    if "pyspark" not in sys.modules:
        return None
    if "pyspark.sql.connect.session" in sys.modules:
        from pyspark.sql.connect.session import SparkSession as ConnectSession

        # active in this thread, else the process's default one (what other threads see of it)
        default = getattr(ConnectSession, "_get_default_session", lambda: None)
        found: list[Any] = [ConnectSession.getActiveSession(), default()]
        for s in found:
            if s is not None and not is_stopped(s):
                return cast("SparkSession", s)
    try:
        from pyspark import SparkContext
    except ImportError:  # the Spark Connect-only client (pyspark-client) has no classic Spark
        return None
    if SparkContext._active_spark_context is None:
        return None
    from pyspark.sql import SparkSession

    # active in this thread, else the one builder.getOrCreate() would return (what other threads see of it)
    for classic in (SparkSession.getActiveSession(), getattr(SparkSession, "_instantiatedSession", None)):
        if classic is not None and not is_stopped(classic):
            return cast("SparkSession", classic)
    return None


_LOCAL_MASTER = re.compile(r"^local(?:\[(?P<n>\*|\d+)(?:,\s*\d+)?\])?$")
_LOCAL_CLUSTER = re.compile(r"^local-cluster\[\s*(?P<n>\d+)\s*,\s*(?P<c>\d+)\s*,\s*\d+\s*\]$")


def master_slots(master: str) -> int | None:
    """Task slots implied by a master URL, for the local masters; None for real clusters."""
    m = _LOCAL_MASTER.match(master.strip())
    if m:
        n = m.group("n")
        if n is None:
            return 1
        return os.cpu_count() or 1 if n == "*" else int(n)
    m = _LOCAL_CLUSTER.match(master.strip())
    if m:
        return int(m.group("n")) * int(m.group("c"))
    return None


def is_local_master(master: str) -> bool:
    """True for ``local``, ``local[n]`` and ``local-cluster[...]``: executors run on this machine."""
    return master_slots(master) is not None


def conf_get(session: SparkSession, key: str) -> str | None:
    """A Spark setting, or None when it is not set (works on classic and Connect)."""
    try:
        value = session.conf.get(key, None)
    except Exception:
        return None
    return None if value is None else str(value)


def task_slots(session: SparkSession) -> int | None:
    """How many tasks the session's cluster can run at once, when the driver can tell without a job.

    Classic Spark asks the scheduler (executors registered now, times their cores / CPUs per task), so
    executors that come and go are counted as they are; local masters (also the local server behind
    ``remote("local[...]")``) have it in their URL; otherwise ``spark.executor.instances``
    times ``spark.executor.cores`` when both are set. None: unknown (a Connect server on a cluster).
    """
    if not is_connect(session):
        try:
            sc: Any = session.sparkContext._jsc.sc()
            running = int(sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile()))
            if running > 0:
                return running
        except Exception:  # another pyspark, or no executor registered yet
            pass
    master = conf_get(session, "spark.master") or ""
    slots = master_slots(master)
    if slots:
        return slots
    inst, cores = conf_get(session, "spark.executor.instances"), conf_get(session, "spark.executor.cores")
    if inst and cores and inst.isdigit() and cores.isdigit():
        return max(1, int(inst) * int(cores))
    if not is_connect(session):
        try:
            return max(1, int(session.sparkContext.defaultParallelism))
        except Exception:
            pass
    return None


def executor_count(session: SparkSession) -> int | None:
    """How many executors run tasks now: classic Spark's status tracker (1 for local masters, whose
    tasks run in the driver); a local master's URL under Connect; None when unknown (a Connect server
    on a cluster)."""
    if not is_connect(session):
        try:
            infos = session.sparkContext.statusTracker()._jtracker.getExecutorInfos()
            return max(1, len(infos) - 1)  # the driver is listed too
        except Exception:
            return None
    master = conf_get(session, "spark.master") or ""
    if master.startswith("local-cluster"):
        m = _LOCAL_CLUSTER.match(master.strip())
        return int(m.group("n")) if m else None
    return 1 if is_local_master(master) else None


def ship_python_file(session: SparkSession, path: str) -> None:
    """Make a .zip/.py importable on the session's executors."""
    if is_connect(session):
        session.addArtifacts(path, pyfile=True)
    else:
        session.sparkContext.addPyFile(path)


def ship_archive(session: SparkSession, path: str) -> None:
    """Send an archive to the session's executors, which unpack it into a folder named after it in
    their files folder (classic: SparkContext.addArchive; Connect: an archive artifact)."""
    if is_connect(session):
        session.addArtifacts(path, archive=True)
    else:
        session.sparkContext.addArchive(path)


def executors_share_filesystem(session: SparkSession) -> bool:
    """True when the executors certainly see this machine's files: a local master (classic, or the
    local server behind ``remote("local[...]")``)."""
    master = conf_get(session, "spark.master") or ""
    return is_local_master(master)


def known_partitions(df: DataFrame) -> int | None:
    """The DataFrame's partition count when it can be read off the physical plan without running
    anything: classic Spark, plans without a shuffle. None otherwise (Connect has no RDD, and with
    adaptive execution a shuffle's partition count is only known once it has run)."""
    if is_connect(df):
        return None
    try:
        plan = df._jdf.queryExecution().executedPlan()
        if "Exchange" in plan.toString() or plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
            return None
        return int(plan.execute().getNumPartitions())
    except Exception:
        return None


def iter_collect(df: DataFrame) -> Generator[tuple[Any, ...], None, None]:
    """The rows of a small DataFrame as tuples. Spark Connect streams them (``toLocalIterator``
    runs the same single query), so a caller that stops early never fetches the rest; classic
    Spark's ``collect`` is one transfer, bounded by ``spark.driver.maxResultSize`` on the JVM side
    (its per-partition ``toLocalIterator`` would run the map stage one partition at a time)."""
    rows = df.toLocalIterator() if is_connect(df) else df.collect()
    return (tuple(r) for r in rows)


def repartition_by_id(df: DataFrame, num_partitions: int, column: str) -> DataFrame:
    """Send each row to the partition its ``column`` names (hash partitioning before pyspark 4.1)."""
    if hasattr(df, "repartitionById"):
        return df.repartitionById(num_partitions, column)
    return df.repartition(num_partitions, column)


def set_job_description(session: SparkSession, text: str) -> None:
    """Label the next jobs in the Spark UI (classic only; Connect labels its operations itself)."""
    if not is_connect(session):
        session.sparkContext.setJobDescription(text)


#: The thread's local properties that sparkdist's jobs set (classic Spark); restored after each job.
_JOB_PROPERTIES = ("spark.job.description", "spark.job.interruptOnCancel")


def save_local_properties(session: SparkSession) -> dict[str, str | None]:
    """This thread's job properties as they are now (classic; Connect has none to save)."""
    if is_connect(session):
        return {}
    sc = session.sparkContext
    return {key: sc.getLocalProperty(key) for key in _JOB_PROPERTIES}


def restore_local_properties(session: SparkSession, saved: dict[str, str | None]) -> None:
    """Put back what :func:`save_local_properties` saw (None removes a property)."""
    if saved:
        sc = session.sparkContext
        for key, value in saved.items():
            sc.setLocalProperty(key, value)  # type: ignore[arg-type]  # None unsets it


def add_tag(session: SparkSession, tag: str) -> None:
    """Tag this thread's next Spark jobs (Spark >= 3.5). Classic: SparkContext job tags, which cover
    RDD jobs as well as SQL; Connect: the session's operation tags."""
    if is_connect(session):
        session.addTag(tag)
    else:
        sc = session.sparkContext
        sc.addJobTag(tag)
        sc.setInterruptOnCancel(True)


def remove_tag(session: SparkSession, tag: str) -> None:
    if is_connect(session):
        session.removeTag(tag)
    else:
        session.sparkContext.removeJobTag(tag)


def interrupt_tag(session: SparkSession, tag: str) -> None:
    """Cancel every running Spark job carrying ``tag`` and kill its tasks."""
    if is_connect(session):
        session.interruptTag(tag)
    else:
        session.sparkContext.cancelJobsWithTag(tag)


def tag_progress(session: SparkSession, tag: str) -> tuple[int, int]:
    """(completed, total) tasks of the first stage (the one that runs the user's function) of the
    newest classic Spark job carrying ``tag``, from Spark's status tracker; (0, 0) before it starts."""
    try:
        tracker = session.sparkContext._jsc.sc().statusTracker()
        for job_id in sorted(tracker.getJobIdsForTag(tag), reverse=True):
            info = tracker.getJobInfo(job_id)
            stages = [] if info.isEmpty() else sorted(info.get().stageIds())
            stage = tracker.getStageInfo(stages[0]) if stages else None
            if stage is not None and not stage.isEmpty():
                return int(stage.get().numCompletedTasks()), int(stage.get().numTasks())
    except Exception:
        pass
    return 0, 0


def failed_task_messages(session: SparkSession, tag: str) -> list[str]:
    """The error messages of the failed tasks of the classic Spark jobs carrying ``tag`` (read from
    Spark's status store; empty where that cannot be read, and always under Connect)."""
    if is_connect(session):
        return []
    messages: list[str] = []
    try:
        sc: Any = session.sparkContext._jsc.sc()
        tracker = sc.statusTracker()
        for job_id in tracker.getJobIdsForTag(tag):
            info = tracker.getJobInfo(job_id)
            if info.isEmpty():
                continue
            for stage_id in info.get().stageIds():
                stage = tracker.getStageInfo(stage_id)
                if stage.isEmpty() or stage.get().numFailedTasks() == 0:
                    continue
                tasks = sc.statusStore().taskList(stage_id, stage.get().currentAttemptId(), 1 << 20).iterator()
                while tasks.hasNext():
                    error = tasks.next().errorMessage()
                    if error.isDefined():
                        messages.append(str(error.get()))
    except Exception:  # another pyspark or Spark version: no early stop, the job still ends
        return messages
    return messages


def registered_executors(session: SparkSession) -> list[tuple[str, str]] | None:
    """(executor id, host) of the executors registered with a classic driver now (in local mode the
    driver itself, whose JVM runs the tasks); None under Spark Connect or where it cannot be read."""
    if is_connect(session):
        return None
    found: list[tuple[str, str]] = []
    try:
        listed = session.sparkContext._jsc.sc().statusStore().executorList(True).iterator()
        while listed.hasNext():
            summary = listed.next()
            found.append((str(summary.id()), str(summary.hostPort()).rsplit(":", 1)[0]))
    except Exception:  # another Spark version: unknown
        return None
    return [f for f in found if f[0] != "driver"] or found
