"""Reading a planned Iceberg split where it runs, with pyarrow, numpy and pandas only (no pyiceberg):
a data file's row groups, its positional delete files applied row by row, and its columns matched
to the table's schema by Iceberg field id, so that ``func`` sees the table's current names.

- Columns are matched by the field ids Iceberg writers store in each Parquet column
  (``PARQUET:field_id``), or, for files written without ids, by the table's name mapping
  (``schema.name-mapping.default``). A renamed column (or nested field) arrives under its current
  name; a column the file lacks arrives as nulls (or, for an identity partition column, as the
  file's partition value); a promoted type (int to long, float to double, wider decimals) is cast.
- Positional delete files (``file_path``, ``pos``, as the Iceberg spec writes them) are read batch by
  batch, keeping only the positions of the data file being read (row groups whose ``file_path``
  statistics rule it out are skipped); each batch of the data file then drops its deleted rows by
  position. Memory: about 8 bytes per deleted row of the file being read, plus one batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist.errors import DataSourceError
from sparkdist.sources.base import LocalSplit

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = ["FIELD_ID", "IcebergPiece", "IcebergSplit"]

#: Where Parquet files (and pyarrow schemas) keep a column's Iceberg field id.
FIELD_ID = b"PARQUET:field_id"
#: Bytes a file is read in at a time, per column (as ParquetSplit reads).
_READ_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class IcebergPiece:
    """One data file of a split: its row groups (id, index of its first row in the file), the
    positional delete files that apply to it, and what the driver knows of its partition."""

    path: str  # on the split's file system
    location: str  # the file's location as the table's metadata (and its delete files) name it
    row_groups: tuple[tuple[int, int], ...]
    deletes: tuple[str, ...] = ()  # positional delete files, paths on the split's file system
    constants: tuple[tuple[int, Any], ...] = ()  # (field id, value) of identity partition fields
    filtered: bool = True  # whether the row filter can drop rows of this file (pyiceberg's residual)


@dataclass(frozen=True)
class IcebergSplit(LocalSplit):
    """Row groups of Iceberg data files, read with pyarrow by whoever runs the split."""

    filesystem: Any
    pieces: tuple[IcebergPiece, ...]
    target: pa.Schema  # the columns read (selected + filter columns), with field ids in their metadata
    columns: tuple[str, ...]  # the columns handed to func
    filter: Any  # a pyarrow Expression over the target's names, or None
    rows_per_chunk: int
    name_mapping: tuple[tuple[tuple[str, ...], int], ...] = ()  # (path of names, field id), for files without ids

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Chunks of ``rows_per_chunk`` rows (the last fewer), across the split's files."""
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in self._batches():
            pending.append(batch)
            held += batch.num_rows
            while held >= self.rows_per_chunk:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, self.rows_per_chunk).to_pandas()
                rest = table.slice(self.rows_per_chunk)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending).to_pandas()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        mapping = dict(self.name_mapping)
        for piece in self.pieces:
            try:
                deleted = _deleted_positions(self.filesystem, piece)
                for batch in _read_piece(self.filesystem, piece, self.target, mapping, deleted, self.rows_per_chunk):
                    if self.filter is not None and piece.filtered:
                        batch = pa.Table.from_batches([batch]).filter(self.filter).combine_chunks()
                        batch = batch.to_batches()[0] if batch.num_rows else None
                    if batch is not None and batch.num_rows:
                        yield batch.select(list(self.columns))
            except (OSError, pa.ArrowException) as err:
                raise DataSourceError(
                    f"cannot read the Iceberg data file '{piece.location}': {type(err).__name__}: {err}"
                ) from err


def _read_piece(
    fs: Any,
    piece: IcebergPiece,
    target: pa.Schema,
    mapping: dict[tuple[str, ...], int],
    deleted: np.ndarray | None,
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """The piece's row groups as batches of ``target``, deleted rows dropped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open_input_file(piece.path) as file:
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=_READ_BUFFER)
        file_schema = parquet.schema_arrow
        by_id = _ids(list(file_schema), (), mapping)
        constants = dict(piece.constants)
        sources = [by_id.get(_target_id(fld)) for fld in target]
        read = [file_schema.field(i).name for i in sorted({i for i in sources if i is not None})]
        for rg, first in piece.row_groups:
            start = first
            for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[rg], columns=read, use_threads=False):
                n = batch.num_rows
                if deleted is not None and deleted.size:
                    batch = batch.filter(pa.array(_keep(deleted, start, n)))
                start += n
                columns = []
                for fld, index in zip(target, sources, strict=True):
                    if index is None:
                        value = constants.get(_target_id(fld))
                        columns.append(pa.repeat(pa.scalar(value, fld.type), batch.num_rows))
                    else:
                        source = file_schema.field(index)
                        array = batch.column(source.name)
                        columns.append(_project(array, source, fld, (source.name,), mapping))
                yield pa.RecordBatch.from_arrays(columns, schema=target)


def _keep(deleted: np.ndarray, start: int, n: int) -> np.ndarray:
    """A mask of the rows ``start .. start + n`` of a file that ``deleted`` (sorted positions) keeps."""
    import numpy as np

    lo, hi = np.searchsorted(deleted, [start, start + n])
    keep = np.ones(n, dtype=bool)
    keep[deleted[lo:hi] - start] = False
    return keep


def _deleted_positions(fs: Any, piece: IcebergPiece) -> np.ndarray | None:
    """The sorted positions in ``piece`` that its delete files delete (None without delete files)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not piece.deletes:
        return None
    found: list[np.ndarray] = []
    target = pa.scalar(piece.location, pa.string())
    for path in piece.deletes:
        with fs.open_input_file(path) as file:
            parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=_READ_BUFFER)
            names = parquet.schema_arrow.names
            if "file_path" not in names or "pos" not in names:
                raise DataSourceError(
                    f"the positional delete file '{path}' has no file_path and pos columns (it has {names})"
                )
            groups = _groups_naming(parquet.metadata, names.index("file_path"), piece.location)
            if not groups:
                continue
            for batch in parquet.iter_batches(row_groups=groups, columns=["file_path", "pos"], use_threads=False):
                paths = batch.column(0)
                if not pa.types.is_string(paths.type):
                    paths = paths.cast(pa.string())
                hits = batch.column(1).filter(pc.equal(paths, target))
                if len(hits):
                    found.append(hits.to_numpy(zero_copy_only=False).astype(np.int64, copy=False))
    if not found:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(found))


def _groups_naming(meta: Any, column: int, location: str) -> list[int]:
    """The row groups of a delete file whose ``file_path`` statistics allow ``location``."""
    keep = []
    for rg in range(meta.num_row_groups):
        stats = meta.row_group(rg).column(column).statistics
        if stats is not None and stats.has_min_max and not (str(stats.min) <= location <= str(stats.max)):
            continue
        keep.append(rg)
    return keep


def _target_id(fld: pa.Field) -> int:
    return int((fld.metadata or {})[FIELD_ID])


def _field_id(fld: pa.Field, path: tuple[str, ...], mapping: dict[tuple[str, ...], int]) -> int | None:
    """A file column's Iceberg field id: its own, else the name mapping's for its path."""
    raw = (fld.metadata or {}).get(FIELD_ID)
    return int(raw) if raw is not None else mapping.get(path)


def _ids(fields: list[pa.Field], path: tuple[str, ...], mapping: dict[tuple[str, ...], int]) -> dict[int, int]:
    """Field id -> position among ``fields`` (fields without an id are left out)."""
    found = {}
    for i, fld in enumerate(fields):
        fid = _field_id(fld, (*path, fld.name), mapping)
        if fid is not None:
            found[fid] = i
    return found


def _project(
    array: pa.Array, source: pa.Field, target: pa.Field, path: tuple[str, ...], mapping: dict[tuple[str, ...], int]
) -> pa.Array:
    """``array`` (the file's ``source`` column) as the table's ``target`` field: nested fields
    matched by id and renamed, missing ones as nulls, types cast where the table promoted them."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t, s = target.type, source.type
    if pa.types.is_struct(t) and pa.types.is_struct(s):
        by_id = _ids([s.field(i) for i in range(s.num_fields)], path, mapping)
        children = []
        for j in range(t.num_fields):
            child = t.field(j)
            i = by_id.get(_target_id(child))
            if i is None:
                children.append(pa.nulls(len(array), child.type))
            else:
                src = s.field(i)
                children.append(_project(array.field(i), src, child, (*path, src.name), mapping))
        return pa.StructArray.from_arrays(children, fields=list(t), mask=array.is_null() if array.null_count else None)
    if pa.types.is_map(t) and pa.types.is_map(s):
        keys = _project(array.keys, s.key_field, t.key_field, (*path, "key"), mapping)
        items = _project(array.items, s.item_field, t.item_field, (*path, "value"), mapping)
        return pa.MapArray.from_arrays(array.offsets, keys, items, type=t, mask=_mask(array))
    if _is_list(t) and _is_list(s):
        values = _project(array.values, s.value_field, t.value_field, (*path, "element"), mapping)
        kind = pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray
        offsets = (
            array.offsets
            if pa.types.is_large_list(t) == pa.types.is_large_list(s)
            else array.offsets.cast(pa.int64() if pa.types.is_large_list(t) else pa.int32())
        )
        return kind.from_arrays(offsets, values, type=t, mask=_mask(array))
    return array if array.type.equals(t) else array.cast(t)


def _is_list(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _mask(array: pa.Array) -> pa.Array | None:
    return array.is_null() if array.null_count else None
