"""What a split of a Delta table carries to whoever reads it: its deletion vectors and the table's
column mapping. Only pyarrow and numpy here (executors have no ``deltalake``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sparkdist import _compat_libs
from sparkdist.errors import DataSourceError
from sparkdist.sources.roaring import RoaringFormatError, decode_delta_dv, delta_dv_block, z85_decode

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = ["ColumnMapping", "DeletionVector", "MappedField"]


@dataclass(frozen=True)
class DeletionVector:
    """A data file's deletion vector as the log describes it: inline (Z85 text), or at ``offset`` of
    a deletion vector file; decoded by whoever reads the file."""

    storage: str  # "i" inline, "u" a file named by a UUID under the table, "p" a file at an absolute path
    location: str  # the Z85 text, or the DV file's path on the table's file system
    offset: int | None
    size: int
    cardinality: int
    data_file: str  # the data file it belongs to, for messages

    @classmethod
    def from_descriptor(cls, desc: Mapping[str, Any], root: str, data_file: str = "") -> DeletionVector:
        """From an add action's ``deletionVector`` (``root``: the table's folder on its file system)."""
        storage = str(desc.get("storageType") or desc.get("storage_type"))
        text = str(desc.get("pathOrInlineDv") or desc.get("path_or_inline_dv"))
        size = int(desc["sizeInBytes"] if desc.get("sizeInBytes") is not None else desc["size_in_bytes"])
        offset = desc.get("offset")
        cardinality = int(desc["cardinality"])
        if storage == "i":
            location = text
        elif storage == "u":
            if len(text) < 20:
                raise DataSourceError(f"the deletion vector of '{data_file}' names no file: {text!r}")
            prefix, ident = text[:-20], uuid.UUID(bytes=z85_decode(text[-20:]))
            location = "/".join(p for p in (root.rstrip("/"), prefix, f"deletion_vector_{ident}.bin") if p)
        elif storage == "p":
            parts = urlsplit(text)
            location = unquote(parts.path if parts.scheme in ("file", "") else parts.netloc + parts.path)
        else:
            raise DataSourceError(f"the deletion vector of '{data_file}' has an unknown storage type {storage!r}")
        return cls(storage, location, None if offset is None else int(offset), size, cardinality, data_file)

    def rows(self, filesystem: pafs.FileSystem | None) -> np.ndarray:
        """The deleted row positions (sorted int64), read and checked against the log's cardinality."""
        import numpy as np

        where = f"the deletion vector of '{self.data_file}'"
        try:
            if self.storage == "i":
                rows = decode_delta_dv(z85_decode(self.location)[: self.size])
            else:
                rows = decode_delta_dv(self._read_file(filesystem, where))
        except RoaringFormatError as err:
            raise DataSourceError(f"{where} cannot be decoded: {err}") from err
        if len(rows) != self.cardinality:
            raise DataSourceError(f"{where} deletes {len(rows)} rows where the log says {self.cardinality}")
        return np.asarray(rows, dtype=np.int64)

    def _read_file(self, filesystem: pafs.FileSystem | None, where: str) -> memoryview:
        import pyarrow as pa
        import pyarrow.fs as pafs

        fs = filesystem if filesystem is not None else pafs.LocalFileSystem()
        offset = 1 if self.offset is None else self.offset
        try:
            with fs.open_input_file(self.location) as f:
                version = f.read_at(1, 0)
                block = f.read_at(8 + self.size, offset)
        except (OSError, pa.ArrowException) as err:
            raise DataSourceError(
                f"{where} is in '{self.location}', which cannot be read: {type(err).__name__}: {err}"
            ) from err
        if version != b"\x01":
            raise DataSourceError(f"'{self.location}' is not a version 1 deletion vector file")
        return delta_dv_block(block, self.size, f"'{self.location}'")


@dataclass(frozen=True)
class MappedField:
    """A column (or a nested field) of a column-mapped table: its logical name, the name and field id
    its Parquet files use, and its mapped children (of a struct, or of a list's struct elements)."""

    logical: str
    physical: str
    id: int | None
    children: tuple[MappedField, ...] = ()


@dataclass(frozen=True)
class ColumnMapping:
    """A table's column mapping ("name" or "id" mode): which file column holds a logical column, and
    the file's batches renamed to logical names (nested fields too)."""

    mode: str
    fields: tuple[MappedField, ...]

    @classmethod
    def from_schema(cls, mode: str, schema: pa.Schema) -> ColumnMapping:
        """From the table's Arrow schema whose fields carry ``delta.columnMapping.*`` metadata."""
        return cls(mode, tuple(_mapped(f) for f in schema))

    def physical_names(self) -> dict[str, str]:
        return {f.logical: f.physical for f in self.fields}

    def file_columns(self, file_schema: pa.Schema, wanted: Sequence[str]) -> dict[str, str]:
        """For each of ``wanted`` (logical names) the file's column that holds it, if the file has one."""
        by_field = {f.logical: f for f in self.fields}
        ids = _field_ids(file_schema) if self.mode == "id" else {}
        names = set(file_schema.names)
        found: dict[str, str] = {}
        for name in wanted:
            mapped = by_field.get(name)
            if mapped is None:
                continue
            column = ids.get(mapped.id) if mapped.id is not None else None
            column = column if column is not None else mapped.physical
            if column in names:
                found[name] = column
        return found

    def to_logical(self, batch: pa.RecordBatch, found: Mapping[str, str]) -> pa.RecordBatch:
        """``batch`` (the file's columns ``found.values()``) with logical names, nested fields too."""
        import pyarrow as pa

        by_field = {f.logical: f for f in self.fields}
        arrays, names = [], []
        for logical, column in found.items():
            arrays.append(_rename(batch.column(column), by_field[logical].children, self.mode))
            names.append(logical)
        return pa.RecordBatch.from_arrays(arrays, names=names) if names else _compat_libs.select_columns(batch, [])


def _mapped(fld: pa.Field) -> MappedField:
    import pyarrow as pa

    meta = fld.metadata or {}
    physical = meta.get(b"delta.columnMapping.physicalName", fld.name.encode()).decode()
    ident = meta.get(b"delta.columnMapping.id")
    typ = fld.type
    while pa.types.is_list(typ) or pa.types.is_large_list(typ):
        typ = typ.value_type
    children = tuple(_mapped(typ.field(i)) for i in range(typ.num_fields)) if pa.types.is_struct(typ) else ()
    return MappedField(fld.name, physical, None if ident is None else int(ident), children)


def _field_ids(schema: pa.Schema | pa.StructType) -> dict[int, str]:
    found: dict[int, str] = {}
    for fld in schema:
        raw = (fld.metadata or {}).get(b"PARQUET:field_id")
        if raw is not None:
            found[int(raw)] = fld.name
    return found


def _rename(array: Any, children: tuple[MappedField, ...], mode: str) -> Any:
    """A file's (nested) array with its struct fields named as the table names them."""
    import pyarrow as pa

    if not children:
        return array
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([_rename(c, children, mode) for c in array.chunks], type=None)
    typ = array.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        values = _rename(array.values, children, mode)
        cls = pa.ListArray if pa.types.is_list(typ) else pa.LargeListArray
        return cls.from_arrays(array.offsets, values, mask=array.is_null() if array.null_count else None)
    if not pa.types.is_struct(typ):
        return array
    ids = _field_ids(pa.schema(list(typ))) if mode == "id" else {}
    by_physical = {c.physical: c for c in children}
    by_id = {c.id: c for c in children if c.id is not None}
    fields = array.flatten()
    arrays, names = [], []
    for i in range(typ.num_fields):
        name = typ.field(i).name
        ident = next((k for k, v in ids.items() if v == name), None)
        mapped = by_id.get(ident) if ident is not None else None
        mapped = mapped if mapped is not None else by_physical.get(name)
        arrays.append(_rename(fields[i], mapped.children, mode) if mapped is not None else fields[i])
        names.append(mapped.logical if mapped is not None else name)
    return pa.StructArray.from_arrays(arrays, names=names, mask=array.is_null() if array.null_count else None)
