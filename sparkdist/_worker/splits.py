"""distribute_job on a worker: the user's function on one split, folds of consecutive outcomes, and
the same over Arrow batches of task ids, rows or result rows, which an engine's entry points
(``sparkdist.spark.tasks``) run for its tasks, with bytes made on the driver."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sparkdist import _compat_libs, _serde
from sparkdist._checks import name_of
from sparkdist._protocol import Outcome, Status
from sparkdist._worker.common import (
    IN_WORKER,
    SplitTask,
    checked_payload,
    emit_outcome,
    error_info,
    guard_exit,
    place,
    running_note,
    unpicklable,
    user_failures,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def _peek(chunks: Iterator[pd.DataFrame]) -> tuple[pd.DataFrame | None, Iterator[pd.DataFrame]]:
    """First non-empty chunk, and an iterator that still yields it."""
    for chunk in chunks:
        if len(chunk):
            return chunk, chunks
    return None, chunks


def run_split(task: SplitTask, split: int, chunks: Iterator[pd.DataFrame], *, in_process: bool = False) -> Outcome:
    """Call the user's function on one split; never raises for a user error (sys.exit() included;
    KeyboardInterrupt too, except ``in_process``, where it is the caller's Ctrl-C)."""
    import itertools

    import pandas as pd

    try:
        first, rest = _peek(chunks)
        if first is None:
            return Outcome(split, Status.EMPTY, None)
        if task.chunked:
            data: Any = itertools.chain([first], (c for c in rest if len(c)))
        else:
            others = [c for c in rest if len(c)]
            data = pd.concat([first, *others], ignore_index=True) if others else first.reset_index(drop=True)
        with guard_exit(in_process):
            value = task.func(data, *task.args, **task.kwargs)
        return Outcome(split, Status.OK, value)
    except user_failures(in_process) as err:
        return Outcome(split, Status.ERROR, error_info(err, name_of(task.func)))


def fold(reduce: Callable[[Any, Any], Any], outcomes: Iterable[Outcome]) -> Outcome | None:
    """Fold outcomes (sorted by split) with ``reduce``; the first error wins; empties are skipped."""
    acc: Outcome | None = None
    for outcome in outcomes:
        split, status, value = outcome = Outcome(outcome[0], Status(outcome[1]), outcome[2])
        if status in (Status.ERROR, Status.TOO_LARGE):
            return outcome
        if status == Status.EMPTY:
            continue
        if acc is None:
            acc = outcome
            continue
        try:
            acc = Outcome(acc.split, Status.OK, reduce(acc.value, value))
        except IN_WORKER as err:
            return Outcome(split, Status.ERROR, error_info(err, name_of(reduce)))
    return acc


def run_local_payload(payload: bytes, notes: str | None = None) -> bytes:
    """Entry point of LocalParallel's worker processes: a task travels as one pickled payload and
    comes back as pickled bytes. While it runs, a note in the folder ``notes`` says what."""
    task_bytes, split, source_split = _serde.loads(payload)
    task: SplitTask = _serde.loads(task_bytes)
    with running_note(notes, f"split {split} of '{name_of(task.func)}'"):
        split, status, value = run_split(task, split, source_split.chunks())
    try:
        status, payload = checked_payload(status, value, task.result_limit)
    except Exception as err:
        status, payload = Status.ERROR, _serde.dumps_result(unpicklable(err, name_of(task.func)))
    return _serde.dumps_result((split, status, payload))


# ---------------------------------------------------------------------------------------------
# Over Arrow batches: what an engine's tasks run (Spark: mapInArrow, mapPartitions).


def frame_split(
    task_bytes: bytes, names: tuple[str, ...], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """A partition of a DataFrame whose columns were renamed by position is one split (the task's
    partition), and its first ``len(names)`` columns get their own names back (none: a marker column
    that carried the rows of an empty selection)."""
    task: SplitTask = _serde.loads(task_bytes)
    split = place().partition
    keep = list(range(len(names)))
    chunks = (
        _compat_libs.rename_columns(_compat_libs.select_columns(b, keep), list(names)).to_pandas() for b in batches
    )
    yield from emit_outcome(run_split(task, split, chunks), task.result_limit, name_of(task.func))


def planned_splits(task_bytes: bytes, splits_bytes: bytes, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Each id (of ``range(n)``) names a planned split that this task reads itself."""
    task: SplitTask = _serde.loads(task_bytes)
    splits = _serde.loads(splits_bytes)
    for batch in ids:
        for split in batch.column(0).to_pylist():
            yield from emit_outcome(
                run_split(task, split, splits[split].chunks()), task.result_limit, name_of(task.func)
            )


def planned_groups(
    task_bytes: bytes,
    splits_bytes: bytes,
    reduce_bytes: bytes,
    group_size: int,
    n_splits: int,
    ids: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Each id (of ``range(n_groups)``) names a group g that reads splits [g*size, (g+1)*size) itself
    and folds them in order, so the first level of the tree needs no second stage."""
    task: SplitTask = _serde.loads(task_bytes)
    splits = _serde.loads(splits_bytes)
    reduce = _serde.loads(reduce_bytes)
    for batch in ids:
        for group in batch.column(0).to_pylist():
            first = group * group_size
            members = range(first, min(n_splits, first + group_size))
            folded = fold(reduce, (run_split(task, i, splits[i].chunks()) for i in members))
            yield from emit_outcome(
                folded if folded is not None else Outcome(first, Status.EMPTY, None),
                task.result_limit,
                name_of(task.func),
            )


def split_rows(
    task_bytes: bytes, reduce_bytes: bytes | None, rows: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Over rows (task, first split, pickled splits), one per task: many planned splits
    travel this way rather than inside this function, which every task receives whole. Each row's
    splits are run in order; with ``reduce_bytes`` they are folded into one outcome keyed by the
    first split, else each split's outcome is sent."""
    task: SplitTask = _serde.loads(task_bytes)
    reduce = _serde.loads(reduce_bytes) if reduce_bytes is not None else None
    for batch in rows:
        for first, splits_bytes in zip(batch.column(1).to_pylist(), batch.column(2).to_pylist(), strict=True):
            splits = _serde.loads(splits_bytes)
            outcomes = (run_split(task, first + i, split.chunks()) for i, split in enumerate(splits))
            if reduce is None:
                for outcome in outcomes:
                    yield from emit_outcome(outcome, task.result_limit, name_of(task.func))
                continue
            folded = fold(reduce, outcomes)
            yield from emit_outcome(
                folded if folded is not None else Outcome(first, Status.EMPTY, None),
                task.result_limit,
                name_of(task.func),
            )


def split_tasks(
    task_bytes: bytes,
    splits_bytes: bytes,
    reduce_bytes: bytes | None,
    group_size: int,
    n_splits: int,
    tasks: Iterator[int],
) -> Iterator[tuple[int, Status, bytes]]:
    """Over task numbers: task t runs splits [t*size, (t+1)*size) in order; with ``reduce_bytes`` it
    folds them into one outcome keyed by its first split, else it sends each split's. Results travel
    as ``(split, status, pickled value)``."""
    task: SplitTask = _serde.loads(task_bytes)
    splits = _serde.loads(splits_bytes)
    reduce = _serde.loads(reduce_bytes) if reduce_bytes is not None else None
    where = name_of(task.func)
    for t in tasks:
        first = t * group_size
        outcomes: Iterator[Outcome] = (
            run_split(task, i, splits[i].chunks()) for i in range(first, min(n_splits, first + group_size))
        )
        if reduce is not None:
            folded = fold(reduce, outcomes)
            outcomes = iter([folded if folded is not None else Outcome(first, Status.EMPTY, None)])
        for split, status, value in outcomes:
            try:
                yield (split, *checked_payload(status, value, task.result_limit))
            except Exception as err:
                yield (split, Status.ERROR, _serde.dumps_result(unpicklable(err, where)))


def reduce_groups(
    reduce_bytes: bytes, group_size: int, limit: int | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """One level of the tree reduce: rows arrive sorted by (split, part); fold each group of
    ``group_size`` consecutive splits and emit one outcome per group, keyed by its first split."""
    reduce = _serde.loads(reduce_bytes)
    for group, outcomes in _groups(_assemble(batches), group_size):
        folded = fold(reduce, outcomes)
        yield from emit_outcome(
            folded if folded is not None else Outcome(group * group_size, Status.EMPTY, None), limit, name_of(reduce)
        )


def _groups(outcomes: Iterator[Outcome], group_size: int) -> Iterator[tuple[int, Iterator[Outcome]]]:
    import itertools

    return itertools.groupby(outcomes, key=lambda o: o[0] // group_size)


def _assemble(batches: Iterator[pa.RecordBatch]) -> Iterator[Outcome]:
    """Rebuild outcomes from result rows sorted by (split, part); one split in memory at a time."""
    current: int | None = None
    status = ""
    parts: list[bytes] = []
    for batch in batches:
        cols = batch.to_pydict()
        for split, part, status_, payload in zip(
            cols["split"], cols["part"], cols["status"], cols["payload"], strict=False
        ):
            if part == 0:
                if current is not None:
                    yield Outcome(current, Status(status), _serde.loads(_serde.join_parts(parts)))
                current, status, parts = split, status_, []
            parts.append(payload)
    if current is not None:
        yield Outcome(current, Status(status), _serde.loads(_serde.join_parts(parts)))
