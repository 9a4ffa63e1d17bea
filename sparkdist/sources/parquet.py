"""Parquet data: discovered and planned on the driver from footers, read by whoever runs a split.

A split is a run of whole row groups, sized toward a target number of bytes and balanced over the
task slots. In a Spark context each executor reads its own row groups with pyarrow (engine
"arrow"), or Spark's reader reads the data (engine "spark"); "auto" picks "arrow" when the driver
and the executors can open the files with pyarrow.
"""

from __future__ import annotations

import copy
import logging
import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from sparkdist._checks import check_bool, check_positive_int
from sparkdist._current import get_compute_context
from sparkdist.errors import DataSourceError, InvalidArgumentError
from sparkdist.sources.base import (
    DataSource,
    KeyGroup,
    LocalSplit,
    ReadingContext,
    ValidationReport,
    select_schema,
)
from sparkdist.sources.discovery import Discovery, File, RowGroup, discover
from sparkdist.sources.filters import Filters, select_columns
from sparkdist.sources.frames import DEFAULT_ROWS_PER_CHUNK
from sparkdist.sources.paths import (
    ArrowOpenError,
    cannot_open,
    normalize_paths,
    one_line,
    refuse_table_folders,
    spark_reader_error,
    spark_uri,
)
from sparkdist.sources.planning import (
    all_null,
    hive_groups,
    plan_report,
    plan_splits,
    prune_row_groups,
    unplanned_report,
)
from sparkdist.sources.reading import ParquetSplit

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["DEFAULT_SPLIT_BYTES", "ParquetData", "ParquetSplit"]

log = logging.getLogger("sparkdist")

#: Upper bound of a planned Parquet split, like Spark's ``spark.sql.files.maxPartitionBytes``.
DEFAULT_SPLIT_BYTES = 128 * 1024 * 1024
#: Fallbacks to Spark's reader already logged, per compute context: each is said once.
_told: weakref.WeakKeyDictionary[Any, set[tuple[str, ...]]] = weakref.WeakKeyDictionary()


class ParquetData(DataSource):
    """Parquet files: a file, a directory (hive-style ``key=value`` folders become columns),
    a glob (``*`` within a folder, ``**`` across folders), or a list of these; local paths
    (``/Volumes/...`` included), ``file://`` and other URIs. ``dbfs:/mnt/x`` is read as
    ``/dbfs/mnt/x`` where that mount exists (Databricks), else with Spark's reader.

    Parameters
    ----------
    path : str, os.PathLike or list of them
        Where the data is. A path that exists is read as itself, glob characters or not.
    columns : list of str, optional
        Read only these columns (the others are never read from disk).
    filters : list of tuples, list of lists of tuples, or pyarrow Expression, optional
        pyarrow's filter syntax, e.g. ``[("year", ">=", 2020)]``. Row groups whose statistics
        rule a filter out are skipped; the remaining rows are filtered.
    engine : {"auto", "arrow", "spark"}
        How Spark executors read: "arrow" lets each executor read its planned row groups
        with pyarrow; "spark" uses ``spark.read.parquet``; "auto" picks "arrow" when pyarrow
        can open the path on the driver and the executors, else "spark" (saying why, once).
    rows_per_chunk : int, optional
        Rows per chunk given to ``chunked=True`` functions (default 65,536).
    split_bytes : int, optional
        Upper bound of a split's size in (uncompressed) bytes (default 128 MiB).
    filesystem : pyarrow.fs.FileSystem, optional
        The file system the paths are on (as in pyarrow); default: from the paths.
    partitioning : "hive", pyarrow Partitioning or None
        How folders become columns: "hive" (default) parses ``key=value`` folders and types their
        values as Spark does (int, bigint, double, date, else string); a pyarrow
        ``Partitioning`` is used as given; None reads no partition columns.
    schema : pyarrow.Schema, optional
        The schema to read the files with (default: the files' own, checked to agree).
    read_table_files : bool
        A folder of a Delta Lake, Apache Hudi or Apache Iceberg table is refused by default: its
        Parquet files include ones the table has removed. Read such a table with Spark
        (``spark.read.format("delta").load(path)``) and pass the DataFrame; True reads every
        Parquet file of the folder anyway.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> pd.DataFrame({"x": [1.0, 2.0], "y": [3, 4]}).to_parquet(os.path.join(d, "a.parquet"))
    >>> ParquetData(d, columns=["x"]).column_names()
    ['x', 'y']
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        columns: Sequence[str] | None = None,
        filters: Any = None,
        engine: Literal["auto", "arrow", "spark"] = "auto",
        rows_per_chunk: int | None = None,
        split_bytes: int | None = None,
        filesystem: pafs.FileSystem | None = None,
        partitioning: str | pads.Partitioning | None = "hive",
        schema: pa.Schema | None = None,
        read_table_files: bool = False,
    ) -> None:
        self.paths = normalize_paths(path) if filesystem is None else [os.fspath(p) for p in _as_list(path)]
        if engine not in ("auto", "arrow", "spark"):
            raise InvalidArgumentError(f"engine must be 'auto', 'arrow' or 'spark', got {engine!r}")
        self.engine = engine
        self.rows_per_chunk = check_positive_int(rows_per_chunk, "rows_per_chunk") or DEFAULT_ROWS_PER_CHUNK
        self.split_bytes = check_positive_int(split_bytes, "split_bytes") or DEFAULT_SPLIT_BYTES
        self.filesystem, self.partitioning, self.schema = filesystem, partitioning, schema
        self.read_table_files = check_bool(read_table_files, "read_table_files")
        _check_options(filesystem, partitioning, schema)
        self.filters = filters
        self._filters = None if filters is None else Filters.parse(filters)
        self._discovery: Discovery | None = None
        self._arrow_error: ArrowOpenError | None = None  # pyarrow cannot open a path on the driver
        self._spark_schema: pa.Schema | None = None  # the schema from Spark's reader, when it stands in
        self.columns = None
        self.columns = self._check_columns(columns)

    @classmethod
    def from_input(cls, data: Any) -> ParquetData | None:
        """``data`` as a source when it is a path or a non-empty list of paths (the inputs registry),
        else None."""
        if isinstance(data, (str, os.PathLike)) or (
            isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data)
        ):
            return cls(data)
        return None

    # -- what the driver knows -------------------------------------------------------------------

    def _discover(self) -> Discovery:
        """Files, footers and schema, read with pyarrow on the driver."""
        if self._discovery is None:
            known = self._arrow_error
            if known is not None:  # pyarrow failed before: not again (a listing can take long to fail)
                raise ArrowOpenError(str(known), path=known.path, reason=known.reason) from known.__cause__
            try:
                found = discover(
                    self.paths,
                    filesystem=self.filesystem,
                    partitioning=self.partitioning,
                    schema=self.schema,
                    read_table_files=self.read_table_files,
                )
            except ArrowOpenError as err:
                self._arrow_error = cannot_open(err.path, err.reason, "arrow") if self.engine == "arrow" else err
                raise self._arrow_error from err.__cause__
            if self._filters is not None:
                self._filters.check_columns(found.schema.names)
            self._discovery = found
        return self._discovery

    def _full_schema(self) -> pa.Schema:
        """The files' schema (pyarrow, on the driver); where pyarrow cannot open the path and the
        current context is a Spark one, the schema Spark's reader gives (engine not "arrow")."""
        if self._spark_schema is not None:
            return self._spark_schema
        try:
            return self._discover().schema
        except ArrowOpenError as err:
            ctx = get_compute_context()
            if self.engine == "arrow" or not ctx.is_distributed or ctx.spark_session is None:
                raise
            self._read_schema_with_spark(ctx.spark_session, err)
            assert self._spark_schema is not None
            return self._spark_schema

    def arrow_schema(self) -> pa.Schema:
        schema = self._full_schema()
        return schema if self.columns is None else select_schema(schema, self.columns)

    def column_names(self) -> list[str]:
        return list(self._full_schema().names)

    def known_rows(self) -> int | None:
        if self._spark_schema is not None or self._filters is not None:
            return None
        return sum(rg.rows for rg in self._discover().row_groups)

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        """From the footers' null counts; a column without statistics counts as having values."""
        if self._spark_schema is not None or self._filters is not None:
            return None
        disc = self._discover()
        return all_null(disc, [c for c in columns if c not in disc.partition_names])

    def with_columns(self, columns: Sequence[str] | None) -> ParquetData:
        new = copy.copy(self)
        new.columns = new._check_columns(columns) if columns is not None else self.columns  # noqa: SLF001 - a copy of self
        return new

    # -- how a compute context reads it -----------------------------------------------------------

    def prepare(self, context: ReadingContext) -> ParquetData:
        """Settle the reader for ``context``: pyarrow on the driver (and, with "auto" on a cluster, on
        an executor too) or Spark's reader. Paths that neither reader can open fail here."""
        if not context.is_distributed:
            self._discover()  # in this process pyarrow is the only reader (found once, kept on self)
            return self._engine_copy("arrow")
        session = context.spark_session
        assert session is not None
        if self.engine == "spark":
            if not self.read_table_files:
                refuse_table_folders(self.paths, self.filesystem)
            new = self._engine_copy("spark")
            new._read_schema_with_spark(session, None)  # noqa: SLF001 - a copy of self
            return new
        if self.engine == "arrow":
            self._discover()
            return self._engine_copy("arrow")
        try:
            disc = self._discover()
        except ArrowOpenError as err:
            new = self._engine_copy("spark")
            new._read_schema_with_spark(session, err)  # noqa: SLF001 - a copy of self
            _tell(context, self.paths, f"pyarrow cannot open '{err.path}' on the driver ({err.reason})")
            return new
        ok, reason = context.executors_can_open(disc.filesystem, [f.path for f in disc.files[:2]])
        if not ok:
            _tell(context, self.paths, reason)
        return self._engine_copy("arrow" if ok else "spark")

    def _engine_copy(self, engine: str) -> ParquetData:
        new = copy.copy(self)
        new.engine = engine  # type: ignore[assignment]
        return new

    def _read_schema_with_spark(self, session: SparkSession, arrow_error: ArrowOpenError | None) -> None:
        """The schema as Spark's reader gives it, read on the driver (it lists the files and reads a
        footer, on classic Spark and Connect alike); the columns and filters are checked against it."""
        try:
            struct = self._spark_read(session).schema
        except Exception as err:
            raise spark_reader_error(self.paths, err, None if arrow_error is None else arrow_error.reason) from err
        from pyspark.sql.pandas.types import to_arrow_schema

        try:
            schema = to_arrow_schema(struct)
        except Exception as err:
            raise DataSourceError(
                f"Spark's reader opens '{', '.join(self.paths)}', but its schema ({struct.simpleString()[:300]}) has "
                f"types Arrow cannot hold: {one_line(err)}"
            ) from err
        if self._filters is not None:
            if self._filters.expression is not None:
                why = (
                    "engine='spark'"
                    if arrow_error is None
                    else f"pyarrow cannot open {arrow_error.path!r} ({arrow_error.reason}), so Spark's reader reads it;"
                )
                raise InvalidArgumentError(
                    f"{why} it needs filters as [(column, op, value), ...], not a pyarrow Expression"
                )
            self._filters.check_columns(schema.names)
        self._spark_schema = schema
        if self.columns is not None:
            self.columns = self._check_columns(self.columns)

    def readable_on(self, session: SparkSession | None) -> bool:
        return True

    def spark_frame(self, session: SparkSession) -> DataFrame | None:
        """The data through ``spark.read.parquet`` when that is the reader (engine "spark"), else None."""
        if self.engine != "spark":
            return None
        df = self._spark_read(session)
        if self._filters is not None:
            df = df.filter(self._filters.to_spark())
        return select_columns(df, self.columns)

    def shuffle_frame(self, session: SparkSession) -> DataFrame | None:
        """Spark's reader, unless the files are on a pyarrow filesystem or the filters are an Arrow
        expression (Spark cannot take either)."""
        if self.engine == "spark":
            return self.spark_frame(session)
        if self.filesystem is not None or (self._filters is not None and self._filters.expression is not None):
            return None
        return self._engine_copy("spark").spark_frame(session)

    def key_groups(self, keys: Sequence[str]) -> list[KeyGroup] | None:
        """One group per value of ``keys`` when they are hive partition columns (each group: the files
        of its folders, rows counted from footers); None otherwise, or with row filters."""
        if self.engine != "arrow" or self._filters is not None or self._spark_schema is not None:
            return None
        disc = self._discover()
        if not keys or not set(keys) <= set(disc.partition_names):
            return None
        return hive_groups(disc, list(keys), self.columns, self.rows_per_chunk)

    def _spark_read(self, session: SparkSession) -> DataFrame:
        """All columns through ``spark.read.parquet``."""
        reader = session.read
        uris = [spark_uri(p) for p in self.paths]
        if len(uris) == 1 and os.path.isdir(self.paths[0]):
            reader = reader.option("basePath", uris[0])
        return reader.parquet(*uris)

    def plan(self, slots: int) -> list[LocalSplit]:
        """Splits for ``slots`` task slots, planned from footers only (no data pages are read)."""
        return plan_splits(
            self._discover(),
            self._pruned_row_groups(),
            slots,
            self.split_bytes,
            columns=self.columns,
            filters=self._filters,
            rows_per_chunk=self.rows_per_chunk,
        )

    def _pruned_row_groups(self) -> list[RowGroup]:
        """The row groups whose statistics do not rule the filters out."""
        disc = self._discover()
        if self._filters is None:
            return disc.row_groups

        def fail(f: File, err: Exception) -> bool:
            raise DataSourceError(f"filters {self.filters!r} cannot be applied to '{f.path}': {err}") from err

        return prune_row_groups(disc, self._filters.to_arrow(), disc.row_groups, fail)

    def describe(self, slots: int) -> ValidationReport:
        if self._spark_schema is not None:
            err = self._arrow_error
            why = f"pyarrow cannot open '{err.path}' on the driver ({err.reason}): " if err is not None else ""
            return unplanned_report(
                f"Parquet {', '.join(self.paths)} (Spark's reader)",
                self.arrow_schema(),
                why + "Spark's reader (spark.read.parquet) reads it, and its partitions are the splits",
            )
        disc = self._discover()
        warnings = list(disc.warnings)
        if disc.empty_files:
            shown = ", ".join(disc.empty_files[:5]) + (" ..." if len(disc.empty_files) > 5 else "")
            warnings.append(f"{len(disc.empty_files)} file(s) have no rows: {shown}")
        source = f"Parquet {', '.join(self.paths)}"
        rgs = self._pruned_row_groups()
        schema = self.arrow_schema()
        return plan_report(source, disc, rgs, slots, self.split_bytes, schema, warnings, self._filters is not None)

    def __repr__(self) -> str:
        return f"ParquetData({self.paths!r}, columns={self.columns}, filters={self.filters!r}, engine={self.engine!r})"


def _as_list(path: Any) -> list[Any]:
    return [path] if isinstance(path, (str, os.PathLike)) else list(path)


def _check_options(filesystem: Any, partitioning: Any, schema: Any) -> None:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    if filesystem is not None and not isinstance(filesystem, pafs.FileSystem):
        raise InvalidArgumentError(f"filesystem must be a pyarrow.fs.FileSystem or None, got {filesystem!r}")
    if partitioning not in ("hive", None) and not isinstance(
        partitioning, (pads.Partitioning, pads.PartitioningFactory)
    ):
        raise InvalidArgumentError(f"partitioning must be 'hive', a pyarrow Partitioning or None, got {partitioning!r}")
    if schema is not None and not isinstance(schema, pa.Schema):
        raise InvalidArgumentError(f"schema must be a pyarrow.Schema or None, got {schema!r}")


def _tell(context: Any, paths: list[str], reason: str) -> None:
    """Log, once per context and paths, that Spark's reader reads them and why."""
    told = _told.setdefault(context, set())
    if tuple(paths) not in told:
        told.add(tuple(paths))
        log.warning("sparkdist: reading %s with Spark's reader, not pyarrow: %s", ", ".join(paths), reason)
