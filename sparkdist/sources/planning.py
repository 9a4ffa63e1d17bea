"""Planning Parquet splits on the driver, from footers only: runs of whole row groups sized toward a
number of bytes and balanced over the task slots, and the split that whoever runs it reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist import _compat_libs
from sparkdist.errors import DataSourceError
from sparkdist.sources.base import KeyGroup, LocalSplit
from sparkdist.sources.discovery import Discovery, RowGroup

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["MIN_SPLIT_BYTES", "READ_BUFFER", "ParquetSplit", "all_null", "group_row_groups", "hive_groups"]

#: No split is planned below this size unless the data is that small.
MIN_SPLIT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ParquetSplit(LocalSplit):
    """Whole row groups of one or more files, read with pyarrow by whoever runs the split."""

    filesystem: Any
    pieces: tuple[tuple[str, tuple[int, ...], Any], ...]  # (path, row group ids, partition expression)
    schema: Any
    columns: tuple[str, ...] | None
    filter: Any
    rows_per_chunk: int
    filter_columns: tuple[str, ...] | None = None  # the columns ``filter`` names (None: not known)

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Chunks of exactly ``rows_per_chunk`` rows (the last one fewer), across the split's files, so
        that a split of many small files costs one pandas conversion per chunk, not one per file.

        Each file is read with ``pyarrow.parquet.ParquetFile.iter_batches`` from a buffered stream, page
        by page: a worker holds about one chunk as Arrow and one as pandas plus :data:`READ_BUFFER`
        per column, whatever the size of the split and its row groups. (pyarrow.dataset's scanner
        decodes whole row groups and reads the next ones ahead, so its memory grows with them.)"""
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in self._batches():
            if not batch.num_rows:
                continue
            pending.append(batch)
            held += batch.num_rows
            while held >= self.rows_per_chunk:
                table = pa.Table.from_batches(pending)
                pending, held = [], 0
                yield _to_pandas(table.slice(0, self.rows_per_chunk))
                rest = table.slice(self.rows_per_chunk)
                del table
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield _to_pandas(pa.Table.from_batches(pending))

    def _batches(self) -> Iterator[pa.RecordBatch]:
        """The pieces' rows as batches of the split's schema (selected columns), filtered."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = list(self.columns) if self.columns is not None else list(self.schema.names)
        if self.filter is not None:  # the filter's columns are read too (an Expression's: all of them)
            named = self.filter_columns if self.filter_columns is not None else tuple(self.schema.names)
            wanted += [c for c in named if c not in wanted]
        target = pa.schema([self.schema.field(c) for c in wanted])
        for path, ids, pexpr in self.pieces:
            keys = _compat_libs.partition_keys(pexpr) if pexpr is not None else {}
            try:
                with self.filesystem.open_input_file(path) as file:
                    parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=READ_BUFFER)
                    present = set(parquet.schema_arrow.names)
                    for batch in parquet.iter_batches(
                        batch_size=self.rows_per_chunk,
                        row_groups=list(ids),
                        columns=[c for c in wanted if c in present and c not in keys],
                        use_threads=False,
                    ):
                        batch = _conform(batch, target, keys)
                        if self.filter is not None:
                            batch = _compat_libs.filter_batch(batch, self.filter)
                            if self.columns is not None and len(self.columns) < len(wanted):
                                batch = _compat_libs.select_columns(batch, list(self.columns))
                        yield batch
            except (OSError, pa.ArrowException) as err:
                raise DataSourceError(f"cannot read Parquet file '{path}': {type(err).__name__}: {err}") from err


def _conform(batch: pa.RecordBatch, target: pa.Schema, keys: dict[str, Any]) -> pa.RecordBatch:
    """A file's batch as the data set's schema: its columns cast where the file's type differs (e.g.
    large_string), partition columns from the file's folders, columns the file lacks as nulls."""
    import pyarrow as pa

    if batch.schema.equals(target) and not keys:
        return batch
    n = batch.num_rows
    names = batch.schema.names
    columns = []
    for fld in target:
        if fld.name in keys:
            columns.append(pa.repeat(pa.scalar(keys[fld.name], type=fld.type), n))
        elif fld.name in names:
            column = batch.column(fld.name)
            columns.append(column if column.type.equals(fld.type) else column.cast(fld.type))
        else:
            columns.append(pa.nulls(n, fld.type))
    return pa.RecordBatch.from_arrays(columns, schema=target)


#: Bytes a file is read in at a time, per column: pages stream through a buffer this size instead of
#: each column's whole chunk of a row group being read at once.
READ_BUFFER = 1024 * 1024


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()
    return frame


def all_null(disc: Discovery, columns: list[str]) -> list[str]:
    """Which of ``columns`` hold only nulls, from the footers' null counts (a column without statistics
    counts as having values)."""
    nulls = {c: 0 for c in columns}
    rows = 0
    for f in disc.files:
        meta = f.metadata
        names = meta.schema.names
        rows += meta.num_rows
        for c in nulls:
            if c not in names:
                nulls[c] += meta.num_rows
                continue
            idx = names.index(c)
            for rg in range(meta.num_row_groups):
                stats = meta.row_group(rg).column(idx).statistics
                if stats is None or not stats.has_null_count:
                    nulls[c] = -(10**18)  # unknown: assume values exist
                    break
                nulls[c] += stats.null_count
    return [c for c, n in nulls.items() if rows and n == rows]


def group_row_groups(rgs: list[RowGroup], slots: int, split_bytes: int) -> list[list[RowGroup]]:
    """Consecutive row groups packed into splits of at most ``split_bytes``, as many as a multiple of
    the task slots (so that no slot waits for a last, lone split), but none below 1 MiB unless the
    data is that small."""
    if not rgs:
        return []
    slots = max(1, slots)
    total = sum(rg.bytes for rg in rgs)
    wanted = max(slots, -(-total // split_bytes))
    wanted = -(-wanted // slots) * slots  # round up to whole waves
    wanted = min(wanted, max(slots, -(-total // MIN_SPLIT_BYTES)))
    target = min(split_bytes, max(1, -(-total // wanted)))
    groups: list[list[RowGroup]] = [[]]
    size = 0
    for rg in rgs:
        if groups[-1] and size + rg.bytes > target:
            groups.append([])
            size = 0
        groups[-1].append(rg)
        size += rg.bytes
    return groups


def hive_groups(
    disc: Discovery, keys: list[str], columns: tuple[str, ...] | None, rows_per_chunk: int
) -> list[KeyGroup]:
    """exec_by groups straight from hive folders: the files whose partition values of ``keys`` agree
    form one group (a folder missing a key's value, ``__HIVE_DEFAULT_PARTITION__``, has null there)."""
    files: dict[tuple[Any, ...], list[int]] = {}
    for index, f in enumerate(disc.files):
        values = _compat_libs.partition_keys(f.partition_expression)
        files.setdefault(tuple(values.get(k) for k in keys), []).append(index)
    by_file: dict[int, list[RowGroup]] = {}
    for rg in disc.row_groups:
        by_file.setdefault(rg.file, []).append(rg)
    groups: list[KeyGroup] = []
    for key, members in files.items():
        pieces = tuple(
            (disc.files[i].path, tuple(rg.id for rg in by_file[i]), disc.files[i].partition_expression)
            for i in members
            if by_file.get(i)
        )
        rows = sum(rg.rows for i in members for rg in by_file.get(i, []))
        if rows:
            groups.append(
                KeyGroup(key, ParquetSplit(disc.filesystem, pieces, disc.schema, columns, None, rows_per_chunk), rows)
            )
    return groups
