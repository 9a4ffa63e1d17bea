"""Code that runs on executors and pool workers.

Small module-level functions only. They import heavy modules inside, and never capture a
SparkSession, a compute context or ``self``: what they need arrives as pickled bytes made on
the driver (see ``sparkdist.distribute``).

A split's *outcome* is a tuple ``(split, status, value)`` where status is ``"ok"`` (value is
the function's result), ``"empty"`` (the split had no rows; the function was not called) or
``"error"`` (value is an :class:`ErrorInfo` dict).
"""

from __future__ import annotations

import functools
import os
import socket
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from sparkdist import _serde

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

OK, EMPTY, ERROR = "ok", "empty", "error"

#: Schema of every row that sparkdist's Spark tasks emit.
RESULT_SCHEMA = "split long, part int, nparts int, status string, payload binary"

Outcome = tuple[int, str, Any]


class ErrorInfo(TypedDict):
    """What a failed user call sends back instead of raising."""

    type: str
    message: str
    traceback: str
    where: str  # the function or method that failed
    host: str


@dataclass(frozen=True)
class SplitTask:
    """What one call of the user's function needs, besides its data."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    chunked: bool


def _error_info(err: BaseException, where: str) -> ErrorInfo:
    frames = traceback.format_exception(type(err), err, err.__traceback__)
    # Drop sparkdist's own frames so the user sees their code first.
    text = "".join(f for f in frames if f"sparkdist{os.sep}_worker.py" not in f)
    return ErrorInfo(
        type=type(err).__name__,
        message=str(err),
        traceback=text,
        where=getattr(err, "_sparkdist_where", where),
        host=_host(),
    )


def _host() -> str:
    try:
        from pyspark import TaskContext

        tc = TaskContext.get()
        if tc is not None:
            return f"{socket.gethostname()} (pid {os.getpid()}, stage {tc.stageId()}, partition {tc.partitionId()})"
    except Exception:  # pragma: no cover - pyspark always present, TaskContext optional
        pass
    return f"{socket.gethostname()} (pid {os.getpid()})"


def _peek(chunks: Iterator[pd.DataFrame]) -> tuple[pd.DataFrame | None, Iterator[pd.DataFrame]]:
    """First non-empty chunk, and an iterator that still yields it."""
    for chunk in chunks:
        if len(chunk):
            return chunk, chunks
    return None, chunks


def run_split(task: SplitTask, split: int, chunks: Iterator[pd.DataFrame]) -> Outcome:
    """Call the user's function on one split; never raises for a user error."""
    import itertools

    import pandas as pd

    try:
        first, rest = _peek(chunks)
        if first is None:
            return (split, EMPTY, None)
        if task.chunked:
            data: Any = itertools.chain([first], (c for c in rest if len(c)))
        else:
            others = [c for c in rest if len(c)]
            data = pd.concat([first, *others], ignore_index=True) if others else first.reset_index(drop=True)
        return (split, OK, task.func(data, *task.args, **task.kwargs))
    except Exception as err:
        return (split, ERROR, _error_info(err, _name(task.func)))


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def fold(reduce: Callable[[Any, Any], Any], outcomes: Iterable[Outcome]) -> Outcome | None:
    """Fold outcomes (sorted by split) with ``reduce``; the first error wins; empties are skipped."""
    acc: Outcome | None = None
    for outcome in outcomes:
        split, status, value = outcome
        if status == ERROR:
            return outcome
        if status == EMPTY:
            continue
        if acc is None:
            acc = outcome
            continue
        try:
            acc = (acc[0], OK, reduce(acc[2], value))
        except Exception as err:
            return (split, ERROR, _error_info(err, _name(reduce)))
    return acc


# ---------------------------------------------------------------------------------------------
# Local contexts: a task travels as one pickled payload and comes back as pickled bytes.


def run_local_payload(payload: bytes) -> bytes:
    """Entry point of LocalParallel's worker processes."""
    task_bytes, split, source_split = _serde.loads(payload)
    task: SplitTask = _serde.loads(task_bytes)
    outcome = run_split(task, split, source_split.chunks())
    try:
        return _serde.dumps(outcome)
    except Exception as err:
        return _serde.dumps((split, ERROR, _unpicklable_result(err, task)))


def _unpicklable_result(err: BaseException, task: SplitTask) -> ErrorInfo:
    info = _error_info(err, _name(task.func))
    info["message"] = f"the result of {_name(task.func)} cannot be pickled to return it: {err}"
    return info


# ---------------------------------------------------------------------------------------------
# Spark: functions given to mapInArrow. Each is wrapped in functools.partial with bytes made on
# the driver, so what Spark pickles is a reference to this module plus those bytes.


def _emit(split: int, status: str, value: Any) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    try:
        payload = _serde.dumps(value)
    except Exception as err:
        status, payload = ERROR, _serde.dumps(_error_info(err, "pickling the result"))
    parts = _serde.split_parts(payload)
    for i, part in enumerate(parts):
        yield pa.RecordBatch.from_pydict(
            {"split": [split], "part": [i], "nparts": [len(parts)], "status": [status], "payload": [part]},
            schema=_result_arrow_schema(),
        )


@functools.lru_cache(maxsize=1)
def _result_arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("split", pa.int64()),
            ("part", pa.int32()),
            ("nparts", pa.int32()),
            ("status", pa.string()),
            ("payload", pa.binary()),
        ]
    )


def _emit_outcome(outcome: Outcome) -> Iterator[pa.RecordBatch]:
    return _emit(*outcome)


def _partition_id() -> int:
    from pyspark import TaskContext

    tc = TaskContext.get()
    return tc.partitionId() if tc is not None else 0


def spark_map_frame(task_bytes: bytes, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over a DataFrame: this partition is one split."""
    task: SplitTask = _serde.loads(task_bytes)
    split = _partition_id()
    chunks = (b.to_pandas() for b in batches)
    yield from _emit_outcome(run_split(task, split, chunks))


def spark_map_splits(task_bytes: bytes, splits_bytes: bytes, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow over ``spark.range(n)``: each id names a split that this task reads itself."""
    task: SplitTask = _serde.loads(task_bytes)
    splits = _serde.loads(splits_bytes)
    for batch in ids:
        for split in batch.column(0).to_pylist():
            yield from _emit_outcome(run_split(task, split, splits[split].chunks()))


def spark_reduce_groups(
    reduce_bytes: bytes, group_size: int, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """One level of the tree reduce: rows arrive sorted by (split, part); fold each group of
    ``group_size`` consecutive splits and emit one outcome per group, keyed by its first split."""
    reduce = _serde.loads(reduce_bytes)
    for group, outcomes in _groups(_assemble(batches), group_size):
        folded = fold(reduce, outcomes)
        yield from _emit_outcome(folded if folded is not None else (group * group_size, EMPTY, None))


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
                    yield (current, status, _serde.loads(_serde.join_parts(parts)))
                current, status, parts = split, status_, []
            parts.append(payload)
    if current is not None:
        yield (current, status, _serde.loads(_serde.join_parts(parts)))


def assemble_rows(rows: Iterable[tuple[int, int, int, str, bytes]]) -> list[Outcome]:
    """Driver side: rebuild outcomes from collected result rows, sorted by split."""
    by_split: dict[int, list[tuple[int, str, bytes]]] = {}
    for split, part, _nparts, status, payload in rows:
        by_split.setdefault(split, []).append((part, status, payload))
    out: list[Outcome] = []
    for split in sorted(by_split):
        pieces = sorted(by_split[split], key=lambda p: p[0])
        out.append((split, pieces[0][1], _serde.loads(_serde.join_parts([p[2] for p in pieces]))))
    return out
