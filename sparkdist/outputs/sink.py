"""The files one task attempt writes: one Parquet file per partition folder (a new one when a later
chunk needs wider types than the file was opened with), hive folders named as Spark names them, and
Delta's per-file statistics. Runs on executors: pyarrow and the standard library only.

>>> folder_of((("store", "a/b"), ("day", None)))
'store=a%2Fb/day=__HIVE_DEFAULT_PARTITION__'
>>> partition_text(2.5), partition_text(True), partition_text("")
('2.5', 'true', None)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

from sparkdist.errors import SchemaConflictError
from sparkdist.outputs.records import FileRecord, WriteRecord
from sparkdist.outputs.schemas import cast_to, widen

if TYPE_CHECKING:
    import pyarrow as pa

    from sparkdist.outputs.writer import Target

__all__ = ["DEFAULT_PARTITION", "Sink", "folder_of", "partition_text"]

#: The folder name of a null (or empty string) partition value, as Spark and Hive write it.
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: The characters Spark escapes in partition folder names (``ExternalCatalogUtils.escapePathName``).
_ESCAPED = frozenset("\"#%'*/:=?\\\x7f{[]^") | {chr(i) for i in range(1, 32)}
#: Delta's statistics keep strings up to this many characters (longer ones get none).
_STAT_CHARS = 32


def _escape(text: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)


def partition_text(value: Any) -> str | None:
    """A partition value as text, as Spark casts it to a string (None: null; an empty string is null too)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return ("Infinity" if value > 0 else "-Infinity") if math.isinf(value) else repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value)
    return text or None


def folder_of(partition: tuple[tuple[str, str | None], ...]) -> str:
    """The hive folder of a partition: ``col=value/...``, escaped as Spark escapes it."""
    return "/".join(f"{_escape(c)}={DEFAULT_PARTITION if v is None else _escape(v)}" for c, v in partition)


def _partitions(table: pa.Table, columns: tuple[str, ...]) -> list[tuple[tuple[tuple[str, str | None], ...], pa.Table]]:
    """``table``'s rows by the values of ``columns`` (each part without them), rows in their order."""
    import numpy as np

    if not columns:
        return [((), table)]
    rest = table.drop_columns(list(columns)) if hasattr(table, "drop_columns") else table.drop(list(columns))
    keys = table.select(list(columns))
    if all(c.null_count in (0, len(c)) and len(c.unique()) == 1 for c in keys.columns):  # one partition
        return [(tuple((c, partition_text(keys.column(c)[0].as_py())) for c in columns), rest)]
    ids = keys.to_pandas().groupby(list(columns), dropna=False, sort=False).ngroup().to_numpy()
    order = np.argsort(ids, kind="stable")
    bounds = np.flatnonzero(np.diff(ids[order])) + 1
    out = []
    for rows in np.split(order, bounds):
        first = int(rows[0])
        partition = tuple((c, partition_text(keys.column(c)[first].as_py())) for c in columns)
        out.append((partition, rest.take(rows)))
    return out


class _Stats:
    """Delta's statistics of one file: null counts of the top-level columns, minimum and maximum of
    its numbers, dates and short strings (none for a float column holding NaN)."""

    def __init__(self) -> None:
        self.low: dict[str, Any] = {}
        self.high: dict[str, Any] = {}
        self.nulls: dict[str, int] = {}
        self.skip: set[str] = set()

    def add(self, table: pa.Table) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        for name, column in zip(table.column_names, table.columns, strict=True):
            kind = column.type
            if pa.types.is_nested(kind):
                continue
            self.nulls[name] = self.nulls.get(name, 0) + column.null_count
            ranged = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_date(kind)
            ranged = ranged or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            if not ranged or name in self.skip or column.null_count == len(column):
                continue
            if pa.types.is_floating(kind) and pc.any(pc.is_nan(column)).as_py():
                self.skip.add(name)
                continue
            bounds = pc.min_max(column).as_py()
            low, high = bounds["min"], bounds["max"]
            if isinstance(high, str) and len(high) > _STAT_CHARS:
                self.skip.add(name)
                continue
            self.low[name] = low if name not in self.low else min(self.low[name], low)
            self.high[name] = high if name not in self.high else max(self.high[name], high)

    def json(self, rows: int) -> str:
        def text(value: Any) -> Any:
            return value.isoformat() if isinstance(value, datetime.date) else value

        keep = [n for n in self.low if n not in self.skip]
        return json.dumps(
            {
                "numRecords": rows,
                "minValues": {n: text(self.low[n]) for n in keep},
                "maxValues": {n: text(self.high[n]) for n in keep},
                "nullCount": self.nulls,
            }
        )


class _File:
    """One open Parquet file."""

    def __init__(self, target: Target, path: str, folder: str, partition: Any, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.path, self.folder, self.partition, self.schema = path, folder, partition, schema
        try:
            self.stream = target.filesystem.open_output_stream(path)
        except FileNotFoundError:  # a file system with folders (local): the file's folder is made first
            target.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
            self.stream = target.filesystem.open_output_stream(path)
        self.writer = pq.ParquetWriter(self.stream, schema, compression=target.compression)
        self.rows = 0
        self.stats = _Stats() if target.kind == "delta" else None

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows
        if self.stats is not None:
            self.stats.add(table)

    def close(self) -> FileRecord:
        self.writer.close()
        size = self.stream.tell()
        self.stream.close()
        stats = self.stats.json(self.rows) if self.stats is not None else None
        return FileRecord(self.path, self.folder, self.partition, self.rows, size, stats)


class Sink:
    """The files of one task attempt, under a name no other attempt uses."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.attempt = f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:12]}"
        self.open: dict[str, _File] = {}
        self.done: list[FileRecord] = []
        self.schema: pa.Schema | None = None
        self.made: list[str] = []
        self.chunks = 0

    def add(self, table: pa.Table) -> None:
        """Write one chunk of the function's result (its partition columns split it into folders)."""
        self.chunks += 1
        self.schema = table.schema if self.schema is None else self._widened(table.schema)
        if not table.num_rows:
            return
        for partition, part in _partitions(table, self.target.partition_by):
            folder = folder_of(partition)
            file = self.open.get(folder)
            if file is not None and not part.schema.equals(file.schema, check_metadata=False):
                conformed = cast_to(part, file.schema)
                if conformed.schema.equals(file.schema, check_metadata=False):
                    part = conformed
                else:  # wider than the file: the file ends, a new one takes the wider types
                    self.done.append(file.close())
                    file = None
            if file is None:
                path = self.target.file_path(self.attempt, folder, len(self.made))
                self.made.append(path)
                file = self.open[folder] = _File(self.target, path, folder, partition, part.schema)
            file.write(part)

    def _widened(self, schema: pa.Schema) -> pa.Schema:
        import pyarrow as pa

        assert self.schema is not None
        fields = []
        for field in self.schema:
            other = schema.field(field.name).type if field.name in schema.names else None
            wide = widen(field.type, other) if other is not None else None
            if wide is None or set(schema.names) != set(self.schema.names):
                raise SchemaConflictError(
                    f"chunk {self.chunks} of the function's result has columns {schema.names} ({schema.types}), "
                    f"which do not agree with the earlier chunks' {self.schema.names} ({self.schema.types}) after "
                    "safe widening (int32->int64, float32->float64, null-typed columns)"
                )
            fields.append(pa.field(field.name, wide))
        return pa.schema(fields, metadata=self.schema.metadata)

    def close(self) -> WriteRecord:
        """Finish every file: the attempt's commit record."""
        for file in self.open.values():
            self.done.append(file.close())
        self.open.clear()
        return WriteRecord(tuple(self.done), self.schema)

    def discard(self) -> None:
        """The attempt failed: close and remove what it wrote (as far as it can)."""
        for file in self.open.values():
            try:
                file.writer.close()
                file.stream.close()
            except Exception:  # noqa: BLE001 - removing the file is what matters
                pass
        self.open.clear()
        for path in self.made:
            with contextlib.suppress(Exception):  # best effort: an unreferenced file is never committed
                self.target.filesystem.delete_file(path)
