"""exec_by on a worker: the user's function on one key group, with the group's own seeded streams;
and, over Arrow batches of rows shuffled by the keys and sorted within partitions (Spark's
``mapInArrow``), the function that cuts each partition's stream of rows into groups and streams every group to the
function in chunks (a group never has to fit in memory with ``chunked=True``).

A group's outcome travels as ``(keys, value, output, where)``: value is the result or an ErrorInfo.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist import _compat_libs, _serde
from sparkdist._checks import name_of
from sparkdist._protocol import Status
from sparkdist._worker.common import (
    checked_payload,
    emit_many,
    error_info,
    guard_exit,
    host,
    place,
    unpicklable,
    user_failures,
)
from sparkdist._worker.streams import captured_output, rng_holder, seeded_globals

__all__ = ["GroupCall", "GroupTask", "group_frames", "key_spawn", "run_group", "same_keys"]

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from sparkdist._worker.common import SplitReader


@dataclass(frozen=True)
class GroupTask:
    """What every group's call needs, besides its rows."""

    func: Callable[..., Any]
    keys: tuple[str, ...]  # the key columns
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    chunked: bool
    rng_seed: int | None
    capture: bool = False
    stop_on_failure: bool = False
    result_limit: int | None = None


def key_spawn(keys: tuple[Any, ...]) -> tuple[int, ...]:
    """Words of a digest of the group's keys, to spawn its random streams from: the same group gets
    the same streams whatever the context, the split of the data or the other groups.

    >>> key_spawn((1, "a")) == key_spawn((1, "a")) != key_spawn((2, "a"))
    True
    """
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return (0x5D1B, *(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)))


def run_group(task: GroupTask, keys: tuple[Any, ...], chunks: Iterator[pd.DataFrame]) -> Any:
    """``func(keys, group, *args, **kwargs)`` with the group's seeded streams; raises what func raises."""
    import pandas as pd

    holder = rng_holder()
    with seeded_globals(task.rng_seed, key_spawn(keys)) as rng:
        token = holder.set(rng)
        try:
            if task.chunked:
                data: Any = (c for c in chunks if len(c))
            else:
                parts = [c for c in chunks if len(c)]
                data = pd.concat(parts, ignore_index=True) if len(parts) != 1 else parts[0].reset_index(drop=True)
            return task.func(dict(zip(task.keys, keys, strict=True)), data, *task.args, **task.kwargs)
        finally:
            holder.reset(token)


class GroupCall:
    """An exec_by group as an exec_job call: ``call(keys, reader)`` reads the group's rows from
    ``reader`` (a hive folder's files, or rows the driver grouped) and runs the user's function on
    them. It carries the function's name, so errors name the user's function."""

    def __init__(self, task: GroupTask) -> None:
        self.task = task
        self.__qualname__ = name_of(task.func)

    def __call__(self, keys: tuple[Any, ...], reader: SplitReader) -> Any:
        return run_group(self.task, keys, reader.chunks())


# ---------------------------------------------------------------------------------------------
# Rows shuffled by the keys and sorted within partitions.


def _runs(
    batches: Iterator[pa.RecordBatch], names: tuple[str, ...], key_idx: tuple[int, ...]
) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame]]:
    """``(keys, rows)`` runs of equal keys, batch by batch (a group may span batches: consecutive
    runs then have the same keys)."""
    import numpy as np

    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = _compat_libs.rename_columns(
            _compat_libs.select_columns(batch, list(range(len(names)))), list(names)
        ).to_pandas()
        change = np.zeros(batch.num_rows, dtype=bool)
        change[0] = True
        for i in key_idx:
            col = frame.iloc[:, i]
            values, missing = col.to_numpy(), col.isna().to_numpy()
            same = (values[1:] == values[:-1]) | (missing[1:] & missing[:-1])
            change[1:] |= ~np.asarray(same, dtype=bool)
        starts = np.flatnonzero(change).tolist()
        key_cols = [batch.column(i) for i in key_idx]
        for start, end in zip(starts, [*starts[1:], batch.num_rows], strict=True):
            yield tuple(c[start].as_py() for c in key_cols), frame.iloc[start:end]


def same_keys(keys: tuple[Any, ...]) -> tuple[Any, ...]:
    """What keys compare by: NaN equals NaN (Spark groups them together).

    >>> same_keys((float("nan"), 1)) == same_keys((float("nan"), 1))
    True
    """
    return tuple(("NaN",) if isinstance(v, float) and v != v else v for v in keys)


def group_frames(
    task_bytes: bytes,
    selected_bytes: bytes,
    names: tuple[str, ...],
    key_idx: tuple[int, ...],
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Over rows shuffled by the keys and sorted within partitions (columns renamed by position;
    ``names`` gives them back): each group, as its rows stream past, is one call. Only the
    groups in ``selected`` (pickled :func:`same_keys` of each, or None: all) run."""
    task: GroupTask = _serde.loads(task_bytes)
    selected: frozenset[tuple[Any, ...]] | None = _serde.loads(selected_bytes)
    base = place().partition << 32
    where = name_of(task.func)

    def outcomes() -> Iterator[tuple[int, Status, bytes]]:
        for n, (_, runs_) in enumerate(
            itertools.groupby(_runs(batches, names, key_idx), key=lambda r: same_keys(r[0]))
        ):
            keys, first = next(runs_)
            if selected is not None and same_keys(keys) not in selected:
                continue
            chunks = itertools.chain([first], (frame for _, frame in runs_))
            with captured_output() as buffer:
                try:
                    with guard_exit(False):
                        status, value = Status.OK, run_group(task, keys, chunks)
                except user_failures(False) as err:
                    status, value = Status.ERROR, error_info(err, where)
            for _ in chunks:  # the rest of a group the function did not read
                pass
            output = buffer.getvalue() if task.capture else None
            yield _pickled(base + n, status, (keys, value, output, host()), task.result_limit, where)
            if status == Status.ERROR and task.stop_on_failure:
                return

    yield from emit_many(outcomes())


def _pickled(key: int, status: Status, value: Any, limit: int | None, where: str) -> tuple[int, Status, bytes]:
    try:
        return (key, *checked_payload(status, value, limit))
    except Exception as err:
        keys, _, output, place = value
        return (key, Status.ERROR, _serde.dumps_result((keys, unpicklable(err, where), output, place)))
