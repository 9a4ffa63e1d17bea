"""What runs on executors under ``output=``: the user's function, wrapped so that each split's (group's,
call's) return value is written with pyarrow where it was made, and only a small
:class:`~sparkdist.outputs.records.WriteRecord` travels back as the task's result.

The wrapper is a module-level dataclass: it pickles by reference (executors import it from the
sparkdist zip every Spark context ships), and the user's function inside it by value, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist.errors import ArgumentTypeError, ColumnNotFoundError
from sparkdist.outputs.records import WriteRecord
from sparkdist.outputs.schemas import cast_to
from sparkdist.outputs.sink import Sink

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = ["OutputWriter", "Target", "write"]


@dataclass(frozen=True)
class Target:
    """Where a job's tasks write: ``folder`` on ``filesystem`` (Parquet: the job's private staging
    folder; Delta: the table's folder, files unreferenced until the driver commits them)."""

    kind: str  # "parquet" or "delta"
    filesystem: pafs.FileSystem
    folder: str
    job: str
    partition_by: tuple[str, ...] = ()
    schema: pa.Schema | None = None  # the existing output's (append): frames are widened to it when safe
    compression: str = "snappy"

    def file_path(self, attempt: str, folder: str, n: int) -> str:
        """The path of file ``n`` of a task attempt in partition folder ``folder``."""
        if self.kind == "parquet":  # staging (made by the driver): the driver renames it into place at commit
            return "/".join(p for p in (self.folder, folder, f"{attempt}-{n:05d}.parquet") if p)
        return "/".join(p for p in (self.folder, folder, f"part-{n:05d}-{self.job}-{attempt}.snappy.parquet") if p)


@dataclass(frozen=True)
class OutputWriter:
    """``func`` whose results are written to ``target``; with ``keys`` (exec_by: the key columns and
    their types) the group's key values are added to its rows unless ``func`` returned them."""

    func: Callable[..., Any]
    target: Target
    keys: tuple[tuple[str, pa.DataType], ...] | None = None

    def __post_init__(self) -> None:  # the user's function's name, for messages
        name = getattr(self.func, "__qualname__", None) or getattr(self.func, "__name__", None)
        object.__setattr__(self, "__qualname__", str(name or type(self.func).__name__))

    def __call__(self, *args: Any, **kwargs: Any) -> WriteRecord:
        result = self.func(*args, **kwargs)
        keys = dict(args[0]) if self.keys is not None and args else None
        return write(self.target, result, keys, self.keys)


def write(
    target: Target,
    result: Any,
    keys: dict[str, Any] | None = None,
    key_types: tuple[tuple[str, pa.DataType], ...] | None = None,
) -> WriteRecord:
    """Write ``result`` (a frame, table, batch, None, or an iterator of those) to ``target``."""
    sink = Sink(target)
    try:
        for table in _tables(result):
            sink.add(_prepared(table, target, keys, key_types))
        return sink.close()
    except BaseException:
        sink.discard()
        raise


def _tables(result: Any) -> Iterator[pa.Table]:
    import pandas as pd
    import pyarrow as pa

    if result is None:
        return
    if isinstance(result, pd.DataFrame):
        yield _from_pandas(result)
    elif isinstance(result, pa.Table):
        yield result
    elif isinstance(result, pa.RecordBatch):
        yield pa.Table.from_batches([result])
    elif isinstance(result, (Iterator, list, tuple)):
        for item in result:
            if isinstance(item, (Iterator, list, tuple)):
                raise _wrong(item, "an item of the iterator it returned is itself an iterator")
            yield from _tables(item)
    else:
        raise _wrong(result, "it returned")


def _wrong(value: Any, what: str) -> ArgumentTypeError:
    return ArgumentTypeError(
        f"with output=, the function must return a pandas DataFrame, a pyarrow Table or RecordBatch, None, "
        f"or an iterator (generator) of those; {what} {type(value).__module__}.{type(value).__name__}"
    )


def _from_pandas(frame: pd.DataFrame) -> pa.Table:
    """A pandas frame as Arrow: its index only when named (then as columns), as Spark would not keep it."""
    import pyarrow as pa

    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)  # no thread pool per frame: groups are small


def _prepared(
    table: pa.Table,
    target: Target,
    keys: dict[str, Any] | None,
    key_types: tuple[tuple[str, pa.DataType], ...] | None,
) -> pa.Table:
    import pyarrow as pa

    if keys is not None and key_types is not None:
        missing = [(name, kind) for name, kind in key_types if name not in table.column_names]
        for i, (name, kind) in enumerate(missing):
            table = table.add_column(i, pa.field(name, kind), pa.array([keys[name]] * table.num_rows, type=kind))
    absent = [c for c in target.partition_by if c not in table.column_names]
    if absent:
        raise ColumnNotFoundError(
            f"partition_by names column(s) {absent} that the function's result does not have; it has "
            f"{table.column_names}"
        )
    if target.kind == "delta":
        table = _delta_types(table)
    return cast_to(table, target.schema) if target.schema is not None else table


def _delta_types(table: pa.Table) -> pa.Table:
    """Types a Delta table holds: timestamps in microseconds (UTC when zoned; finer ones truncated),
    signed integers wide enough for unsigned ones, dictionaries decoded."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        stamp = pa.types.is_timestamp(t) and (t.unit != "us" or t.tz not in (None, "UTC"))
        if stamp:
            t = pa.timestamp("us", tz=None if t.tz is None else "UTC")
        if pa.types.is_unsigned_integer(t):
            t = {8: pa.int16(), 16: pa.int32()}.get(t.bit_width, pa.int64())
        if not t.equals(f.type):
            table = table.set_column(i, pa.field(f.name, t, f.nullable), table.column(i).cast(t, safe=not stamp))
    return table
