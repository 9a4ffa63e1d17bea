"""Reading a planned Parquet split, by whoever runs it (this process, a pool worker, a Spark task):
its files' row groups batch by batch, conformed to the data set's schema (partition columns, a
table's column mapping), without the rows a deletion vector deletes, filtered, in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sparkdist import _compat_libs
from sparkdist.errors import DataSourceError, SparkDistError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs

    from sparkdist.sources.delta_files import ColumnMapping

from sparkdist.sources.base import LocalSplit

__all__ = ["READ_BUFFER", "DeletedRows", "ParquetSplit", "Piece", "read_planned_splits"]

#: Bytes a file is read in at a time, per column: pages stream through a buffer this size instead of
#: each column's whole chunk of a row group being read at once.
READ_BUFFER = 1024 * 1024


class DeletedRows(Protocol):
    """Rows of a data file that are not part of the data (a table's deletion vector)."""

    def rows(self, filesystem: pafs.FileSystem | None) -> np.ndarray:
        """The deleted rows' positions in the file (sorted int64)."""
        ...


class Piece(NamedTuple):
    """Row groups of one file as a split reads them."""

    path: str
    row_groups: tuple[int, ...]
    partition: dict[str, Any] | None  # partition column -> value, for columns the file does not hold
    deletes: DeletedRows | None = None


@dataclass(frozen=True)
class ParquetSplit(LocalSplit):
    """Whole row groups of one or more files, read with pyarrow by whoever runs the split."""

    filesystem: Any
    pieces: tuple[Piece, ...]
    schema: Any
    columns: tuple[str, ...] | None
    filter: Any
    rows_per_chunk: int
    filter_columns: tuple[str, ...] | None = None  # the columns ``filter`` names (None: not known)
    mapping: ColumnMapping | None = None  # a Delta table's column mapping (files hold physical names)

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

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The split's rows as Arrow batches of its schema (selected columns), filtered."""
        return self._batches()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        """The pieces' rows as batches of the split's schema (selected columns), filtered."""
        import pyarrow as pa

        wanted = list(self.columns) if self.columns is not None else list(self.schema.names)
        if self.filter is not None:  # the filter's columns are read too (an Expression's: all of them)
            named = self.filter_columns if self.filter_columns is not None else tuple(self.schema.names)
            wanted += [c for c in named if c not in wanted]
        target = pa.schema([self.schema.field(c) for c in wanted])
        for piece in self.pieces:
            try:
                for batch in self._piece_batches(piece, wanted, target):
                    if self.filter is not None:
                        batch = _compat_libs.filter_batch(batch, self.filter)
                        if self.columns is not None and len(self.columns) < len(wanted):
                            batch = _compat_libs.select_columns(batch, list(self.columns))
                    yield batch
            except SparkDistError:
                raise
            except (OSError, pa.ArrowException) as err:
                raise DataSourceError(f"cannot read Parquet file '{piece.path}': {type(err).__name__}: {err}") from err

    def _piece_batches(self, piece: Piece, wanted: list[str], target: pa.Schema) -> Iterator[pa.RecordBatch]:
        """One file's row groups as batches of ``target``, without its deleted rows."""
        import pyarrow.parquet as pq

        keys = piece.partition or {}
        in_file = [c for c in wanted if c not in keys]
        deleted = piece.deletes.rows(self.filesystem) if piece.deletes is not None else None
        with self.filesystem.open_input_file(piece.path) as file:
            parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=READ_BUFFER)
            if self.mapping is not None:
                found = self.mapping.file_columns(parquet.schema_arrow, in_file)
                columns = list(found.values())
            else:
                present = set(parquet.schema_arrow.names)
                found, columns = {}, [c for c in in_file if c in present]
            keep = None if deleted is None else _Survivors(deleted, parquet.metadata, piece.row_groups)
            for batch in parquet.iter_batches(
                batch_size=self.rows_per_chunk, row_groups=list(piece.row_groups), columns=columns, use_threads=False
            ):
                if keep is not None:
                    batch = keep.next(batch)
                if self.mapping is not None:
                    batch = self.mapping.to_logical(batch, found)
                yield _conform(batch, target, keys)


def read_planned_splits(splits_bytes: bytes, ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` over split numbers: the rows of the planned splits whose numbers arrive (planned
    splits as a DataFrame, for work that regroups rows)."""
    from sparkdist import _serde

    splits = _serde.loads(splits_bytes)
    for batch in ids:
        for i in batch.column(0).to_pylist():
            yield from splits[i].batches()


class _Survivors:
    """The rows a deletion vector keeps, batch by batch, as the planned row groups stream by: the
    deleted positions are kept sorted (as many as the vector holds) and each batch's slice of them is
    found by binary search, so no mask of the whole file is ever built."""

    def __init__(self, deleted: np.ndarray, metadata: Any, row_groups: tuple[int, ...]) -> None:
        import numpy as np

        if len(deleted) and (deleted[0] < 0 or deleted[-1] >= metadata.num_rows):
            raise DataSourceError(
                f"a deletion vector deletes row {int(deleted[-1])} of a file of {metadata.num_rows} rows: "
                "it does not belong to this file"
            )
        starts = np.zeros(metadata.num_row_groups + 1, dtype=np.int64)
        for i in range(metadata.num_row_groups):
            starts[i + 1] = starts[i] + metadata.row_group(i).num_rows
        # positions in the stream of the planned row groups (read in this order)
        shifted, offset = [], 0
        for rg in row_groups:
            lo, hi = np.searchsorted(deleted, [starts[rg], starts[rg + 1]])
            shifted.append(deleted[lo:hi] - starts[rg] + offset)
            offset += int(starts[rg + 1] - starts[rg])
        self.deleted = np.concatenate(shifted) if shifted else np.zeros(0, dtype=np.int64)
        self.seen = 0

    def next(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import numpy as np
        import pyarrow as pa

        n = batch.num_rows
        lo, hi = np.searchsorted(self.deleted, [self.seen, self.seen + n])
        gone = self.deleted[lo:hi] - self.seen
        self.seen += n
        if not len(gone):
            return batch
        mask = np.ones(n, dtype=bool)
        mask[gone] = False
        return batch.filter(pa.array(mask))


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


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()
    return frame
