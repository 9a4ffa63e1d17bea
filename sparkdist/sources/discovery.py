"""Finding Parquet data on the driver with ``pyarrow.dataset``: the files, their footers, the hive
partition columns and the schema.

pyarrow.dataset parses ``key=value`` folders (URL-decoded, ``__HIVE_DEFAULT_PARTITION__`` as null)
and gives each file its partition expression and row groups. sparkdist adds what it does not do:

- partition column types inferred as Spark's reader infers them (int, bigint, double, date, else
  string), so a dataset reads the same with engine "arrow" and "spark";
- a check that the files agree on each column's type, naming the files that differ (pyarrow alone
  takes the first file's schema); ``string`` and ``large_string`` (and the other "large" twins) count
  as one type, as pandas 2 and 3 write one or the other.
"""

from __future__ import annotations

import concurrent.futures
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sparkdist import _compat_libs
from sparkdist.errors import DataNotFoundError, DataSourceError, SchemaConflictError
from sparkdist.sources.paths import Entry, arrow_filesystem, expand

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

__all__ = ["Discovery", "File", "RowGroup", "discover", "partition_type", "read_footers"]


@dataclass(frozen=True)
class RowGroup:
    file: int  # index into Discovery.files
    id: int
    rows: int
    bytes: int


@dataclass(frozen=True)
class File:
    path: str
    partition_expression: Any  # pyarrow.compute.Expression: what holds for all its rows
    metadata: Any  # pyarrow.parquet.FileMetaData, read once at discovery
    partition_values: dict[str, Any] | None = None  # None: from partition_expression (hive folders)
    deletes: Any = None  # the rows a table's deletion vector deletes (a DeletedRows), or None

    @property
    def deleted(self) -> int:
        """How many of its rows the deletion vector deletes."""
        return int(getattr(self.deletes, "cardinality", 0)) if self.deletes is not None else 0


@dataclass
class Discovery:
    """What the driver knows of a Parquet dataset from its listing and footers."""

    filesystem: pafs.FileSystem
    schema: pa.Schema
    partition_names: list[str]
    files: list[File]
    row_groups: list[RowGroup]
    empty_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def discover(
    paths: Sequence[str],
    *,
    filesystem: pafs.FileSystem | None = None,
    partitioning: str | pads.Partitioning | None = "hive",
    schema: pa.Schema | None = None,
    read_table_files: bool = False,
) -> Discovery:
    """List the files of ``paths``, read their footers (in parallel) and work out the schema. A
    Delta Lake, Hudi or Iceberg table folder is refused unless ``read_table_files``."""
    fs: pafs.FileSystem | None = None
    entries: list[Entry] = []
    for path in paths:
        path_fs, on_fs = arrow_filesystem(path, filesystem)
        if fs is None:
            fs = path_fs
        elif type(fs) is not type(path_fs):
            raise DataSourceError(f"all paths must be on one file system; '{path}' is on another than '{paths[0]}'")
        entries += expand(path, path_fs, on_fs, read_table_files=read_table_files)
    assert fs is not None
    entries = list({e.path: e for e in reversed(entries)}.values())[::-1]  # each file once, first mention wins
    footers = read_footers(fs, [e.path for e in entries])
    partitioning, part_schema = _partitioning(entries, partitioning)
    # a schema given is what the files are read with: their own types need not agree (it widens them)
    full = (
        schema
        if schema is not None
        else _merge(_file_schema([e.path for e in entries], footers, part_schema.names), part_schema)
    )
    fragments = _fragments(fs, entries, partitioning, full)
    files: list[File] = []
    row_groups: list[RowGroup] = []
    empty: list[str] = []
    for i, (fragment, meta) in enumerate(zip(fragments, footers, strict=True)):
        files.append(File(fragment.path, fragment.partition_expression, meta))
        groups = (meta.row_group(rg) for rg in range(meta.num_row_groups))
        kept = [RowGroup(i, rg, g.num_rows, g.total_byte_size) for rg, g in enumerate(groups) if g.num_rows > 0]
        row_groups += kept
        if not kept:
            empty.append(fragment.path)
    warnings = _partial_columns(footers, part_schema.names)
    return Discovery(fs, full, list(part_schema.names), files, row_groups, empty, warnings)


def _fragments(fs: pafs.FileSystem, entries: list[Entry], partitioning: Any, schema: pa.Schema) -> list[Any]:
    """One ParquetFileFragment per file (in the given order), with its partition expression; files
    are grouped by the folder their hive folders count from. The schema is given, so pyarrow opens
    no file here."""
    import pyarrow.dataset as pads

    by_base: dict[str, list[str]] = {}
    for e in entries:
        by_base.setdefault(e.base, []).append(e.path)
    found: dict[str, Any] = {}
    for base, files in by_base.items():
        dataset = pads.dataset(
            files, schema=schema, filesystem=fs, format="parquet", partitioning=partitioning, partition_base_dir=base
        )
        found.update({f.path: f for f in dataset.get_fragments()})
    return [found[e.path] for e in entries]


def _partitioning(entries: list[Entry], partitioning: Any) -> tuple[Any, pa.Schema]:
    """The partitioning to read the files with, and its columns. "hive": ``key=value`` folders between
    each file and its base folder, typed from all their values as Spark types them."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if partitioning is None:
        return None, pa.schema([])
    if partitioning != "hive":
        schema = getattr(partitioning, "schema", None)
        return partitioning, schema if schema is not None else pa.schema([])
    values: dict[str, list[str]] = {}
    for e in entries:
        folders = e.path[len(e.base) :].strip("/").split("/")[:-1]
        for folder in folders:
            key, eq, raw = folder.partition("=")
            if eq and key:
                found = values.setdefault(unquote(key), [])
                if raw != _HIVE_NULL:
                    found.append(unquote(raw))
    schema = pa.schema([pa.field(name, partition_type(raw)) for name, raw in values.items()])
    return pads.HivePartitioning(schema, null_fallback=_HIVE_NULL), schema


_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def partition_type(values: Sequence[str]) -> pa.DataType:
    """The type Spark's reader gives a partition column with these (non-null) values: int when all
    fit 32 bits, bigint, double, date (``yyyy-MM-dd``), else string.

    >>> [str(partition_type(v)) for v in (["1", "2"], ["1", "5000000000"], ["1", "1.5"], ["2024-01-31"], ["a", "1"])]
    ['int32', 'int64', 'double', 'date32[day]', 'string']
    """
    import pyarrow as pa

    kinds = {_kind(v) for v in values}
    if kinds == {"date"}:
        return pa.date32()
    if not kinds or not kinds <= {"int", "long", "double"}:  # strings, or dates mixed with numbers
        return pa.string()
    if "double" in kinds:
        return pa.float64()
    return pa.int64() if "long" in kinds else pa.int32()


def _kind(value: str) -> str:
    try:
        number = int(value)
        return "int" if -(2**31) <= number < 2**31 else "long" if -(2**63) <= number < 2**63 else "string"
    except ValueError:
        pass
    try:
        float(value)
        return "double"
    except ValueError:
        pass
    try:
        if len(value) == 10:
            datetime.date.fromisoformat(value)
            return "date"
    except ValueError:
        pass
    return "string"


#: Threads reading footers, and files per batch handed to one.
FOOTER_THREADS = 16
FOOTER_BATCH = 64


def read_footers(fs: pafs.FileSystem, paths: list[str], listed_by: str | None = None) -> list[Any]:
    """Every file's footer, read in parallel; a DataSourceError naming the files that are not Parquet
    (and, for files a table's log lists, ``listed_by`` naming it, a DataNotFoundError for missing ones)."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    fmt = pads.ParquetFileFormat()

    def read(batch: list[str]) -> list[Any]:
        found: list[Any] = []
        for path in batch:
            try:
                found.append(fmt.make_fragment(path, filesystem=fs).metadata)
            except (pa.ArrowInvalid, OSError) as err:
                found.append(err)
        return found

    # Threads, as pyarrow releases the GIL while it reads; files go to them in batches, as a future
    # per file costs about as much as reading a small local footer.
    n_threads = max(1, min(FOOTER_THREADS, len(paths)))
    size = max(1, min(FOOTER_BATCH, -(-len(paths) // n_threads)))
    batches = [paths[i : i + size] for i in range(0, len(paths), size)]
    if len(batches) == 1:
        footers = read(batches[0])
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=n_threads) as pool:
            footers = [m for found in pool.map(read, batches) for m in found]
    bad = [(p, m) for p, m in zip(paths, footers, strict=True) if isinstance(m, BaseException)]
    missing = [p for p, m in bad if isinstance(m, FileNotFoundError)]
    if missing and listed_by is not None:
        shown = ", ".join(f"'{p}'" for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataNotFoundError(
            f"{listed_by} lists {len(missing)} data file(s) that do not exist: {shown}. They were deleted outside "
            "the table (e.g. VACUUM with a short retention, or by hand); nothing was read, as fewer rows would be wrong."
        )
    if bad:
        listed = "; ".join(f"'{p}' ({type(e).__name__}: {str(e).splitlines()[0]})" for p, e in bad[:10])
        raise DataSourceError(
            f"{len(bad)} file(s) are not Parquet or are truncated: {listed}"
            + (" ..." if len(bad) > 10 else "")
            + ". Remove them, or point path at the Parquet files only (names starting with '_' or '.' are ignored)."
        )
    return footers


_LARGE = {"large_string": "string", "large_binary": "binary", "large_utf8": "string"}


def _logical(t: pa.DataType) -> str:
    name = str(t)
    for large, small in _LARGE.items():
        name = name.replace(large, small)
    return name.replace("large_list", "list")


class _ArrowSchemas:
    """A footer's Arrow schema, converted once for the footers that agree with it (Parquet schema and
    key-value metadata, which holds pyarrow's own schema): the files of a data set mostly share one."""

    def __init__(self) -> None:
        self._known: list[tuple[Any, Any, pa.Schema]] = []  # the last few distinct ones, newest first

    def __call__(self, meta: Any) -> pa.Schema:
        kv = meta.metadata
        for parquet, known_kv, arrow in self._known:
            if known_kv == kv and parquet.equals(meta.schema):
                return arrow
        arrow = meta.schema.to_arrow_schema()
        self._known = [(meta.schema, kv, arrow), *self._known[:7]]
        return arrow


def _file_schema(paths: list[str], footers: list[Any], partition_names: Sequence[str]) -> pa.Schema:
    """The files' columns, each with one type: a SchemaConflictError names the files that differ."""
    import pyarrow as pa

    converted = _ArrowSchemas()
    by_schema: dict[int, tuple[pa.Schema, list[str]]] = {}  # each distinct schema (one object each) and its files
    for path, meta in zip(paths, footers, strict=True):
        schema = converted(meta)
        by_schema.setdefault(id(schema), (schema, []))[1].append(path)
    types: dict[str, dict[str, list[str]]] = {}
    for schema, files in by_schema.values():
        twice = sorted({n for n in schema.names if schema.names.count(n) > 1})
        if twice:
            raise SchemaConflictError(
                f"the Parquet file '{files[0]}' has more than one column named {', '.join(repr(n) for n in twice)}; "
                "rename them where the file is written (pyarrow and Spark cannot tell such columns apart)"
            )
        for fld in schema:
            if fld.name not in partition_names:
                types.setdefault(fld.name, {}).setdefault(_logical(fld.type), []).extend(files)
    conflicts = {c: t for c, t in types.items() if len(t) > 1}
    if conflicts:
        desc = "; ".join(
            f"column '{c}' is "
            + " but ".join(f"{typ} in {', '.join(repr(p) for p in ps[:3])}" for typ, ps in t.items())
            for c, t in conflicts.items()
        )
        raise SchemaConflictError(f"the Parquet files disagree on column types: {desc}")
    unified = _compat_libs.unify_schemas([schema for schema, _ in by_schema.values()])
    return pa.schema([f for f in unified if f.name not in partition_names])


def _merge(file_schema: pa.Schema, part_schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(list(file_schema) + list(part_schema))


def _partial_columns(footers: list[Any], partition_names: Sequence[str]) -> list[str]:
    counts: dict[str, int] = {}
    for meta in footers:
        for name in meta.schema.names:
            counts[name] = counts.get(name, 0) + 1
    partial = [c for c, n in counts.items() if n < len(footers) and c not in partition_names]
    return [f"columns {partial} are missing from some files and read as nulls there"] if partial else []
