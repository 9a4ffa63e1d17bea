"""What Spark's tasks run: the functions given to ``mapInArrow`` and ``mapPartitions``, each wrapped
in functools.partial with bytes made on the driver, so that what Spark pickles is a reference to
this module plus those bytes. Each says where its task runs (:class:`sparkdist._worker.Place`, from
Spark's TaskContext and SparkFiles) and runs ``sparkdist._worker``'s engine-free function.

Executors receive sparkdist as a shipped zip: this module imports pyspark only inside its
functions, and only what every executor has (``TaskContext``, ``SparkFiles``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sparkdist import _worker
from sparkdist._protocol import Status

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "exec_tasks",
    "group_frames",
    "map_fold_groups",
    "map_frame",
    "map_split_rows",
    "map_splits",
    "probe_files",
    "probe_slots",
    "rdd_exec_tasks",
    "rdd_map_splits",
    "reduce_groups",
    "task_place",
]


def task_place() -> _worker.Place:
    """Where the Spark task running now runs; the default Place outside a task."""
    from pyspark import SparkFiles, TaskContext

    tc = TaskContext.get()
    if tc is None:
        return _worker.Place()
    try:
        shared: str | None = SparkFiles.getRootDirectory()
    except Exception:  # noqa: BLE001 - no files folder here: markers are then not shared
        shared = None
    _worker.packages.activate(shared)  # packages= archives on sys.path before the task unpickles its work
    cpus = tc.cpus() if hasattr(tc, "cpus") else 1
    return _worker.Place(tc.partitionId(), tc.stageId(), tc.attemptNumber(), shared, cpus or 1)


@contextlib.contextmanager
def _in_task() -> Iterator[None]:
    with _worker.at(task_place()):
        yield


def map_frame(task_bytes: bytes, names: tuple[str, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over a DataFrame: each partition is one split (see :func:`sparkdist._worker.frame_split`)."""
    with _in_task():
        yield from _worker.frame_split(task_bytes, names, batches)


def map_splits(task_bytes: bytes, splits_bytes: bytes, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n)``: each id names a planned split this task reads itself."""
    with _in_task():
        yield from _worker.planned_splits(task_bytes, splits_bytes, ids)


def map_fold_groups(
    task_bytes: bytes, splits_bytes: bytes, reduce_bytes: bytes, size: int, n_splits: int, ids: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n_groups)``: each task reads and folds its group of splits."""
    with _in_task():
        yield from _worker.planned_groups(task_bytes, splits_bytes, reduce_bytes, size, n_splits, ids)


def map_split_rows(
    task_bytes: bytes, reduce_bytes: bytes | None, rows: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """mapInArrow over rows (task, first split, pickled splits), one per task."""
    with _in_task():
        yield from _worker.split_rows(task_bytes, reduce_bytes, rows)


def rdd_map_splits(
    task_bytes: bytes,
    splits_bytes: bytes,
    reduce_bytes: bytes | None,
    size: int,
    n_splits: int,
    tasks: Iterator[int],
) -> Iterator[tuple[int, Status, bytes]]:
    """Classic Spark: mapPartitions over task numbers (the cheapest job Spark has, no SQL planning)."""
    with _in_task():
        yield from _worker.split_tasks(task_bytes, splits_bytes, reduce_bytes, size, n_splits, tasks)


def reduce_groups(
    reduce_bytes: bytes, size: int, limit: int | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """mapInArrow over result rows routed by group and sorted: one level of the tree reduce."""
    with _in_task():
        yield from _worker.reduce_groups(reduce_bytes, size, limit, batches)


def exec_tasks(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: _worker.StopPolicy | None,
    ids: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Spark Connect: mapInArrow over ``spark.range(n_tasks)`` running exec_job's calls."""
    with _in_task():
        yield from _worker.call_batches(batch_bytes, chunk, n_calls, once_tag, stop, ids)


def rdd_exec_tasks(
    batch_bytes: bytes,
    chunk: int,
    n_calls: int,
    once_tag: str | None,
    stop: _worker.StopPolicy | None,
    tasks: Iterator[int],
) -> Iterator[tuple[int, Status, bytes]]:
    """Classic Spark: mapPartitions over task numbers running exec_job's calls."""
    with _in_task():
        yield from _worker.call_rows(batch_bytes, chunk, n_calls, once_tag, stop, tasks)


def group_frames(
    task_bytes: bytes,
    selected_bytes: bytes,
    names: tuple[str, ...],
    key_idx: tuple[int, ...],
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """mapInArrow over rows shuffled by exec_by's keys and sorted within partitions."""
    with _in_task():
        yield from _worker.group_frames(task_bytes, selected_bytes, names, key_idx, batches)


def probe_slots(pause: float, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n, numPartitions=n)``: which executor and when each task ran."""
    with _in_task():
        yield from _worker.probe_slots(pause, ids)


def probe_files(filesystem: Any, paths: list[str], ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(1)``: can an executor open these files with pyarrow?"""
    with _in_task():
        yield from _worker.probe_files(filesystem, paths, ids)
