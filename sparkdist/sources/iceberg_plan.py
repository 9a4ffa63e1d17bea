"""Planning an Iceberg table on the driver with pyiceberg: loading it, its scan tasks at a snapshot,
the data files' footers, delete files and partition values, and the file system its FileIO opens."""

from __future__ import annotations

import concurrent.futures
import datetime
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist.errors import ArgumentTypeError, DataSourceError, InvalidArgumentError
from sparkdist.sources.discovery import RowGroup
from sparkdist.sources.paths import one_line

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

__all__ = [
    "INSTALL",
    "PlannedFile",
    "check_table",
    "filesystem",
    "has_pyiceberg",
    "load",
    "name_mapping",
    "plan_files",
    "planned_files",
    "require_pyiceberg",
    "row_groups",
    "small",
    "snapshot_text",
    "spark_catalog_check",
]

INSTALL = "pip install 'sparkdist[iceberg]' (pyiceberg, on the driver only)"


@dataclass(frozen=True)
class PlannedFile:
    """A planned data file: where it is, its footer, and what applies to it."""

    location: str
    path: str  # on the table's pyarrow file system
    footer: Any
    starts: tuple[int, ...]  # each row group's first row in the file
    deletes: tuple[str, ...]
    constants: tuple[tuple[int, Any], ...]
    filtered: bool


def has_pyiceberg() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyiceberg") is not None


def require_pyiceberg() -> None:
    if not has_pyiceberg():
        raise DataSourceError(
            f"IcebergData reads tables with pyiceberg on the driver, which is not installed: {INSTALL}"
        )


def check_table(table: Any, catalog: Any) -> Any:
    """The pyiceberg Table given, or None for an identifier (loaded later from ``catalog``)."""
    if isinstance(table, str):
        if not table or catalog is None:
            raise InvalidArgumentError(
                f"IcebergData({table!r}) names a table: pass catalog= (a pyiceberg Catalog, a catalog name, or a dict "
                "of catalog properties), or pass a pyiceberg Table"
            )
        if not isinstance(catalog, (str, dict)) and not hasattr(catalog, "load_table"):
            raise ArgumentTypeError(
                f"catalog must be a pyiceberg Catalog, a catalog name or a dict of properties, got {type(catalog).__name__}"
            )
        return None
    if type(table).__module__.startswith("pyiceberg.") and hasattr(table, "scan") and hasattr(table, "name"):
        return table
    raise ArgumentTypeError(
        f"IcebergData expects a pyiceberg Table or a table identifier (str) with catalog=, got {type(table).__name__}"
    )


def load(identifier: str, catalog: Any) -> Any:
    require_pyiceberg()
    from pyiceberg.catalog import load_catalog

    try:
        if isinstance(catalog, str):
            catalog = load_catalog(catalog)
        elif isinstance(catalog, dict):
            catalog = load_catalog(**catalog)
        return catalog.load_table(identifier)
    except Exception as err:  # NoSuchTableError, a catalog that cannot be reached or configured...
        raise DataSourceError(f"cannot load the Iceberg table {identifier!r}: {one_line(err)}") from err


def plan_files(table: Any, snapshot_id: int, row_filter: Any, identifier: str) -> list[Any]:
    """pyiceberg's scan tasks of the snapshot; equality deletes and formats other than Parquet are
    refused with what to do."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.manifest import FileFormat

    try:
        tasks = list(table.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot_id).plan_files())
    except ValueError as err:
        if "equality delete" in str(err).lower():
            raise DataSourceError(
                f"the Iceberg table {identifier!r} has equality delete files at snapshot {snapshot_id}, which pyiceberg "
                "cannot plan: read it with engine='spark' (Spark's Iceberg catalog), or compact the table first"
            ) from err
        raise DataSourceError(f"pyiceberg cannot plan the Iceberg table {identifier!r}: {one_line(err)}") from err
    for task in tasks:
        if task.file.file_format != FileFormat.PARQUET:
            raise DataSourceError(
                f"the Iceberg data file '{task.file.file_path}' is {task.file.file_format.name}: sparkdist reads "
                "Parquet data files; read this table with engine='spark'"
            )
        for d in task.delete_files:
            if d.file_format != FileFormat.PARQUET:
                raise DataSourceError(
                    f"the Iceberg table {identifier!r} has {d.file_format.name} delete files ('{d.file_path}': "
                    "deletion vectors of format v3) that sparkdist does not read yet: read it with engine='spark'"
                )
    return tasks


def filesystem(table: Any, location: str) -> Any:
    """The pyarrow file system of the table's files, configured as its FileIO is (credentials, endpoint)."""
    import pyarrow.fs as pafs

    io = table.io
    if hasattr(io, "fs_by_scheme") and hasattr(io, "parse_location"):
        scheme, netloc, _ = io.parse_location(location)
        return io.fs_by_scheme(scheme, netloc)
    return pafs.FileSystem.from_uri(location)[0]


def _on_fs(table: Any, location: str) -> str:
    io = table.io
    if hasattr(io, "parse_location"):
        return str(io.parse_location(location)[2])
    import pyarrow.fs as pafs

    return str(pafs.FileSystem.from_uri(location)[1])


def planned_files(table: Any, tasks: list[Any], fs: Any) -> list[PlannedFile]:
    """Each task's data file with its footer (read in parallel), delete files and partition values."""
    import pyarrow.parquet as pq
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.transforms import IdentityTransform

    def footer(location: str) -> Any:
        try:
            with fs.open_input_file(_on_fs(table, location)) as f:
                return pq.ParquetFile(f).metadata
        except (OSError, ValueError) as err:  # missing, unreadable, not Parquet
            raise DataSourceError(f"cannot read the Iceberg data file '{location}': {one_line(err)}") from err

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(16, len(tasks)))) as pool:
        footers = list(pool.map(footer, [t.file.file_path for t in tasks]))
    specs = table.specs()
    out = []
    for task, meta in zip(tasks, footers, strict=True):
        spec = specs[task.file.spec_id]
        constants = tuple(
            (pf.source_id, task.file.partition[i])
            for i, pf in enumerate(spec.fields)
            if isinstance(pf.transform, IdentityTransform)
        )
        deletes = tuple(sorted(_on_fs(table, d.file_path) for d in task.delete_files))
        location = task.file.file_path
        rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        starts = tuple(sum(rows[:i]) for i in range(len(rows))) if len(rows) < 64 else _cumulative(rows)
        filtered = task.residual != AlwaysTrue()
        out.append(PlannedFile(location, _on_fs(table, location), meta, starts, deletes, constants, filtered))
    return out


def _cumulative(rows: list[int]) -> tuple[int, ...]:
    return (0, *itertools.accumulate(rows[:-1]))


def row_groups(files: list[PlannedFile]) -> list[RowGroup]:
    return [
        RowGroup(i, rg, f.footer.row_group(rg).num_rows, f.footer.row_group(rg).total_byte_size)
        for i, f in enumerate(files)
        for rg in range(f.footer.num_row_groups)
        if f.footer.row_group(rg).num_rows > 0
    ]


def name_mapping(table: Any) -> tuple[tuple[tuple[str, ...], int], ...]:
    """The table's name mapping (for files written without field ids) as (path of names, id) pairs."""
    mapping = table.name_mapping()
    if mapping is None:
        return ()
    out: list[tuple[tuple[str, ...], int]] = []

    def walk(fields: Any, prefix: tuple[str, ...]) -> None:
        for mf in fields:
            for name in mf.names:
                if mf.field_id is not None:
                    out.append(((*prefix, name), mf.field_id))
                walk(mf.fields, (*prefix, name))

    walk(mapping, ())
    return tuple(out)


def small(field: pa.Field) -> pa.Field:
    """``field`` with pyarrow's "large" types as their plain twins (as pyiceberg's to_arrow gives)."""
    import pyarrow as pa

    t = field.type
    if pa.types.is_large_string(t):
        t = pa.string()
    elif pa.types.is_large_binary(t):
        t = pa.binary()
    elif pa.types.is_large_list(t) or pa.types.is_list(t):
        t = pa.list_(small(t.value_field))
    elif pa.types.is_map(t):
        t = pa.map_(small(t.key_field), small(t.item_field))
    elif pa.types.is_struct(t):
        t = pa.struct([small(t.field(i)) for i in range(t.num_fields)])
    return pa.field(field.name, t, field.nullable, field.metadata)


def snapshot_text(table: Any, sid: int | None) -> str:
    if sid is None:
        return "no snapshot (empty table)"
    snapshot = table.snapshot_by_id(sid)
    when = datetime.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=datetime.timezone.utc)
    return f"snapshot {sid} ({when.isoformat(timespec='seconds')})"


def spark_catalog_check(session: SparkSession, name: str) -> None:
    """The session must have the Iceberg catalog that ``name`` starts with (when it names one)."""
    parts = name.split(".")
    if len(parts) < 3:
        return  # db.table: the session's current catalog
    key = f"spark.sql.catalog.{parts[0]}"
    try:
        configured = session.conf.get(key, None)
    except Exception:  # noqa: BLE001 - a conf that cannot be read counts as not set
        configured = None
    if not configured:
        raise DataSourceError(
            f"engine='spark' reads the Iceberg table '{name}' through Spark's catalog '{parts[0]}', which this session "
            f"does not have ({key} is not set): configure an Iceberg catalog (e.g. {key}="
            "org.apache.iceberg.spark.SparkCatalog with the iceberg-spark-runtime package), or use engine='arrow' "
            f"({INSTALL})"
        )
