"""Running sparkdist's work as Spark jobs, with DataFrame operations only where Spark Connect is in
use: the splits of a source (a DataFrame mapped with ``mapInArrow``, or planned splits read by the
tasks themselves), exec_job's calls, and the probes that ask executors about themselves."""

from __future__ import annotations

import contextlib
import functools
import math
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sparkdist import _compat, _reduce, _serde, _worker
from sparkdist._checks import name_of
from sparkdist._protocol import RESULT_SCHEMA, ROW_MARKER, CallRecord, GroupRecord, Outcome, Status
from sparkdist.context import CallWork, GroupWork, SplitWork
from sparkdist.errors import ResultTooLargeError
from sparkdist.spark import reduce, tasks
from sparkdist.spark.failures import first_line, is_spark_error, spark_failure
from sparkdist.spark.tracking import StopWatcher

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SPLITS_IN_FUNCTION",
    "SPLIT_BYTES_IN_FUNCTION",
    "Run",
    "calls_job",
    "groups_job",
    "probe_files",
    "probe_slots",
    "run_splits",
    "slots_from_probe",
    "split_rows",
]


class Run:
    """What a run needs from its context: the session, task slots, the result limit, the job's tag,
    and where to report how many splits or calls each task runs."""

    def __init__(
        self,
        session: SparkSession,
        slots: int,
        limit: int | None,
        tag: str | None,
        plan_units: Callable[[int, int], None],
    ) -> None:
        self.session, self.slots, self.limit, self.tag, self.plan_units = session, slots, limit, tag, plan_units

    def stop_rest(self) -> None:
        """Stop what the job still runs (after a refused result or a failure that ends it: Connect
        streams results, so its query may still be going)."""
        if self.tag is not None:
            with contextlib.suppress(Exception):
                _compat.interrupt_tag(self.session, self.tag)


def _positional(frame: DataFrame) -> tuple[DataFrame, tuple[str, ...]]:
    """The frame with its columns renamed ``_0, _1, ...`` by position (Spark's analyzer cannot
    resolve every name in mapInArrow's input, e.g. one with a backtick), and the names the workers
    give back; a lone row marker (an empty selection) gives no names."""
    names = tuple(frame.columns)
    if names == (ROW_MARKER,):
        return frame, ()
    return frame.toDF(*[f"_{i}" for i in range(len(names))]), names


def units(kind: str, func: Any, size: int, total: int | None) -> Callable[[int], str]:
    """What Spark task ``p`` of a job runs, for messages: e.g. "split 3 of 'f'", "calls 10-19 of 'f'"."""

    def unit(p: int) -> str:
        first = p * size
        last = first + size - 1 if total is None else min(total, first + size) - 1
        return (
            f"{kind} {first} of '{name_of(func)}'" if last <= first else f"{kind}s {first}-{last} of '{name_of(func)}'"
        )

    return unit


def run_splits(run: Run, work: SplitWork) -> list[Outcome]:
    """The task on every split of the source: a DataFrame of this session is mapped partition by
    partition; other sources are planned into splits that each task reads itself."""
    frame = work.source.spark_frame(run.session)
    size, total = 1, None
    try:
        if frame is not None:
            frame, names = _positional(frame)
            mapped = frame.mapInArrow(functools.partial(tasks.map_frame, work.task_bytes, names), RESULT_SCHEMA)
            n_splits = _compat.known_partitions(frame) if work.reduce_bytes is not None else None
        else:
            splits = work.source.plan(run.slots)
            if not splits:
                return []
            total = len(splits)
            size = _grouping(run, work, total)
            grouped = _planned(run, work, splits, size)
            if isinstance(grouped, list):
                return grouped
            mapped, n_splits = grouped, len(splits)
        if work.reduce_bytes is None:
            return reduce.collect_outcomes(mapped, run.limit)
        return reduce.tree_reduce(mapped, n_splits, work.reduce_bytes, run.limit, run.slots)
    except ResultTooLargeError:
        run.stop_rest()
        raise
    except Exception as err:
        if is_spark_error(err):
            raise spark_failure(err, units("split", work.task.func, size, total)) from None
        raise


def _grouping(run: Run, work: SplitWork, n_splits: int) -> int:
    """How many consecutive planned splits one task reads (and folds, with a reduce): more than 1
    with a reduce and enough groups to fill every slot, or, without one, for more splits than
    :data:`SPLITS_IN_FUNCTION` (a Spark task per split would cost more than small splits do)."""
    # about √n groups, as many as a multiple of the slots, so that no slot waits for a last lone group
    waves = max(1, round(math.sqrt(n_splits) / max(1, run.slots)))
    size = -(-n_splits // (waves * max(1, run.slots)))
    n_groups = -(-n_splits // size)
    enough = 1 < n_groups < n_splits and n_groups >= run.slots
    if work.reduce_bytes is None:
        return size if enough and n_splits > SPLITS_IN_FUNCTION else 1
    return size if enough else 1


#: Up to this many planned splits, and this many bytes of them pickled, the splits travel inside
#: the function given to ``mapInArrow`` (one broadcast, fastest for a few); beyond, Spark would send
#: every task all of them, so they travel as rows of a DataFrame, each task receiving its own.
SPLITS_IN_FUNCTION = 1_000
SPLIT_BYTES_IN_FUNCTION = 4 * 1024 * 1024


def _planned(run: Run, work: SplitWork, splits: Sequence[Any], size: int) -> DataFrame | list[Outcome]:
    """Planned splits: ``spark.range(n)`` whose task i reads split i. With groups (``size`` > 1, from
    :func:`_grouping`), each task reads (and, with a reduce, folds) its own group of consecutive
    splits instead (one stage; folded outcomes are returned at once). Many splits come to the tasks
    as rows of a DataFrame (:func:`split_rows`) rather than inside the function."""
    n_splits = len(splits)
    folds = size > 1 and work.reduce_bytes is not None
    run.plan_units(n_splits, size)
    splits_bytes = _serde.dumps(splits) if n_splits <= SPLITS_IN_FUNCTION else None
    if splits_bytes is None or len(splits_bytes) > SPLIT_BYTES_IN_FUNCTION:
        func = functools.partial(tasks.map_split_rows, work.task_bytes, work.reduce_bytes if folds else None)
        mapped = split_rows(run.session, splits, size).mapInArrow(func, RESULT_SCHEMA)
        return reduce.collect_outcomes(mapped, run.limit) if folds else mapped
    if not _compat.is_connect(run.session):  # classic: an RDD of task numbers skips SQL planning
        n_tasks = -(-n_splits // size)
        part = functools.partial(
            tasks.rdd_map_splits, work.task_bytes, splits_bytes, work.reduce_bytes if folds else None, size, n_splits
        )
        rows = run.session.sparkContext.parallelize(range(n_tasks), n_tasks).mapPartitions(part).collect()
        outcomes = _reduce.assemble(((key, 0, 1, status, payload) for key, status, payload in rows), run.limit, "split")
        if work.reduce_bytes is None or folds:
            return outcomes
        folded = _worker.fold(_serde.loads(work.reduce_bytes), outcomes)  # few splits: the driver folds them
        return [folded] if folded is not None else []
    if folds:
        assert work.reduce_bytes is not None
        n_groups = -(-n_splits // size)
        fold = functools.partial(
            tasks.map_fold_groups, work.task_bytes, splits_bytes, work.reduce_bytes, size, n_splits
        )
        grouped = run.session.range(0, n_groups, 1, numPartitions=n_groups).mapInArrow(fold, RESULT_SCHEMA)
        return reduce.collect_outcomes(grouped, run.limit)
    func = functools.partial(tasks.map_splits, work.task_bytes, splits_bytes)
    return run.session.range(0, n_splits, 1, numPartitions=n_splits).mapInArrow(func, RESULT_SCHEMA)


def split_rows(session: SparkSession, splits: Sequence[Any], size: int) -> DataFrame:
    """A DataFrame of one row per task, ``(task, first split, pickled splits)``, task t holding
    splits [t*size, (t+1)*size), each row in partition t (DataFrame operations only, for Connect)."""
    n_tasks = -(-len(splits) // size)
    rows = [(t, t * size, _serde.dumps(list(splits[t * size : (t + 1) * size]))) for t in range(n_tasks)]
    frame = session.createDataFrame(rows, "task int, first long, splits binary")
    return _compat.repartition_by_id(frame, n_tasks, "task")


def calls_job(
    run: Run, work: CallWork, n_calls: int, chunk: int, n_tasks: int, once_tag: str | None
) -> list[CallRecord]:
    """One Spark job running exec_job's calls: ``n_tasks`` tasks of ``chunk`` calls each (with
    ``once_tag``: the first task on each executor runs one call)."""
    session, batch = run.session, work.batch
    connect = _compat.is_connect(session)
    stop = _worker.StopPolicy(uuid.uuid4().hex, raise_=not connect) if batch.stop_on_failure else None
    watcher = StopWatcher(session, run.tag) if stop is not None and stop.raise_ else None
    try:
        if connect:
            func = functools.partial(tasks.exec_tasks, work.batch_bytes, chunk, n_calls, once_tag, stop)
            mapped = session.range(0, n_tasks, 1, numPartitions=n_tasks).mapInArrow(func, RESULT_SCHEMA)
            outcomes = reduce.collect_outcomes(mapped, run.limit, "call", until_error=batch.stop_on_failure)
            if batch.stop_on_failure and any(o.status == Status.ERROR for o in outcomes):
                run.stop_rest()  # the first failure ends the job: stop the tasks still running
        else:  # classic: an RDD of task numbers skips SQL planning, the cheapest job Spark has
            part = functools.partial(tasks.rdd_exec_tasks, work.batch_bytes, chunk, n_calls, once_tag, stop)
            rows = session.sparkContext.parallelize(range(n_tasks), n_tasks).mapPartitions(part).collect()
            outcomes = _reduce.assemble(
                ((key, 0, 1, status, payload) for key, status, payload in rows), run.limit, "call"
            )
    except ResultTooLargeError:
        run.stop_rest()
        raise
    except Exception as err:
        if not is_spark_error(err):
            raise
        stopped = (watcher.stopped if watcher is not None else None) or _worker.parse_stop(str(err))
        if stopped is None:
            raise spark_failure(err, units("call", batch.func, 1 if once_tag else chunk, n_calls)) from None
        index, info = stopped  # continue_on_failure=False: the job was cancelled at the first failure
        return [CallRecord(index, Status.ERROR, info, None, info["host"])]
    finally:
        if watcher is not None:
            watcher.close()
    return [CallRecord(o.split, o.status, *o.value) for o in outcomes]


def groups_job(run: Run, work: GroupWork, frame: DataFrame) -> list[GroupRecord]:
    """exec_by by one shuffle: ``frame``'s rows repartitioned by the keys and sorted within partitions
    (DataFrame operations only), each partition's groups streamed to the function as they pass."""
    task = work.task
    frame, names = _positional(frame)
    key_idx = tuple(names.index(k) for k in task.keys)
    by = [f"_{i}" for i in key_idx]
    try:
        selected = None
        if work.choose is not None:  # the filter sees every group's keys and rows first: one small job
            counts = frame.groupBy(*by).count().collect()
            selected = work.choose([tuple(row[:-1]) for row in counts], [int(row[-1]) for row in counts])
            if not selected:
                return []
        func = functools.partial(tasks.group_frames, work.task_bytes, _serde.dumps(selected), names, key_idx)
        partitions = 2 * run.slots  # more tasks than slots evens out groups of uneven size
        mapped = frame.repartition(partitions, *by).sortWithinPartitions(*by).mapInArrow(func, RESULT_SCHEMA)
        outcomes = reduce.collect_outcomes(mapped, run.limit, "group", until_error=task.stop_on_failure)
    except ResultTooLargeError:
        run.stop_rest()
        raise
    except Exception as err:
        if is_spark_error(err):
            raise spark_failure(err, lambda p: f"the groups of partition {p} of '{name_of(task.func)}'") from None
        raise
    if task.stop_on_failure and any(o.status == Status.ERROR for o in outcomes):
        run.stop_rest()  # the first failure ends the job: stop the tasks still running
    return [GroupRecord(o.value[0], o.status, *o.value[1:]) for o in outcomes]


def probe_slots(session: SparkSession) -> tuple[int, int]:
    """(task slots, executors) from a short job of many tasks: the cores of each executor seen (from
    its command line) and, as a floor, how many tasks ran at the same time."""
    rows: list[Any] = []
    n_tasks = 64
    for _ in range(3):  # more tasks while every one found a slot of its own (a bigger cluster)
        probe = functools.partial(tasks.probe_slots, 0.05)
        rows = session.range(0, n_tasks, 1, numPartitions=n_tasks).mapInArrow(probe, _worker.PROBE_SCHEMA).collect()
        slots = slots_from_probe(rows)
        if slots < n_tasks // 2 or n_tasks >= 4096:
            break
        n_tasks *= 4
    return slots_from_probe(rows), len({row.executor for row in rows})


def slots_from_probe(rows: list[Any]) -> int:
    """Task slots from :func:`sparkdist._worker.probe_slots` rows: the cores of every executor seen,
    divided by CPUs per task, or at least the most tasks seen running at once."""
    per_executor: dict[str, int] = {}
    for row in rows:
        if row.cores:
            per_executor[row.executor] = max(per_executor.get(row.executor, 0), row.cores // max(1, row.task_cpus))
    events = sorted([(r.start, 1) for r in rows] + [(r.end, -1) for r in rows])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return max(1, sum(per_executor.values()), most)


def probe_files(session: SparkSession, filesystem: pafs.FileSystem, paths: list[str]) -> tuple[bool, str]:
    """One tiny job: can an executor open these files with pyarrow?"""
    probe = functools.partial(tasks.probe_files, filesystem, paths)
    try:
        row = session.range(0, 1, 1, numPartitions=1).mapInArrow(probe, "ok boolean, reason string").collect()[0]
    except Exception as err:  # noqa: BLE001 - the probe itself failed (e.g. sparkdist missing there): answer no
        return False, f"the probe job failed: {first_line(err)}"
    return bool(row.ok), str(row.reason)
