"""Data sources: what ``data=`` can be, how it is split, and how it is validated.

``data`` may be a :class:`DataSource`, a pyspark DataFrame (classic or Connect), a pandas
DataFrame, or a path (``str`` / ``os.PathLike``, or a list of them) naming Parquet data.

Parquet sources are planned on the driver from file footers only: a split is a run of whole
row groups, sized toward a target number of bytes and balanced over the task slots. Each
worker then reads its own row groups with pyarrow, chunk by chunk.

Examples
--------
>>> import pandas as pd, tempfile, os
>>> from sparkdist import ParquetData
>>> d = tempfile.mkdtemp()
>>> pd.DataFrame({"x": range(10)}).to_parquet(os.path.join(d, "part-0.parquet"))
>>> report = ParquetData(d).validate()
>>> report.n_rows, report.n_splits
(10, 1)
"""

from __future__ import annotations

import abc
import concurrent.futures
import fnmatch
import glob as globlib
import logging
import os
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sparkdist import _compat
from sparkdist.errors import (
    ArgumentTypeError,
    ColumnNotFoundError,
    DataNotFoundError,
    DataSourceError,
    InvalidArgumentError,
    SchemaConflictError,
    SparkDistError,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

    from sparkdist.context import ComputeContext

__all__ = ["DataSource", "ParquetData", "SparkData", "ValidationReport", "as_data_source"]

log = logging.getLogger("sparkdist")

#: Rows per chunk handed to a ``chunked=True`` function (and per Arrow batch read from Parquet).
DEFAULT_ROWS_PER_CHUNK = 65_536
#: Upper bound of a planned Parquet split, like Spark's ``spark.sql.files.maxPartitionBytes``.
DEFAULT_SPLIT_BYTES = 128 * 1024 * 1024
_MIN_SPLIT_BYTES = 1024 * 1024


@dataclass
class ValidationReport:
    """What :meth:`DataSource.validate` found. Fields that cannot be known without running a
    Spark job (row counts of an arbitrary DataFrame) are None."""

    source: str
    n_splits: int | None
    n_rows: int | None
    n_bytes: int | None
    empty_splits: int | None
    skew: float | None  # largest split / median split, by bytes (or rows)
    schema: list[tuple[str, str]]
    files: int | None = None
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def fmt(v: Any) -> str:
            return "unknown" if v is None else (f"{v:.2f}" if isinstance(v, float) else f"{v:,}")

        lines = [
            f"{self.source}",
            f"  splits: {fmt(self.n_splits)}   rows: {fmt(self.n_rows)}   bytes: {fmt(self.n_bytes)}"
            + (f"   files: {fmt(self.files)}" if self.files is not None else ""),
            f"  empty splits: {fmt(self.empty_splits)}   largest/median split: {fmt(self.skew)}",
            "  schema: " + ", ".join(f"{n}: {t}" for n, t in self.schema),
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


class DataSource(abc.ABC):
    """Base of all data sources."""

    columns: tuple[str, ...] | None

    @abc.abstractmethod
    def column_names(self) -> list[str]:
        """All columns the source offers (before ``columns`` selection)."""

    @abc.abstractmethod
    def with_columns(self, columns: Sequence[str] | None) -> DataSource:
        """A copy reading only ``columns`` (validated)."""

    @abc.abstractmethod
    def validate(self, compute_context: ComputeContext | None = None) -> ValidationReport:
        """Check the source on the driver and describe it; raise a DataSourceError if unusable."""

    @abc.abstractmethod
    def local_splits(self, slots: int) -> list[LocalSplit]:
        """The splits as read in this process or a local pool of ``slots`` workers."""

    def is_compatible_with(self, session: SparkSession) -> bool:
        """Whether the executors of ``session`` can process this source split-wise."""
        return False

    @abc.abstractmethod
    def arrow_schema(self) -> pa.Schema:
        """The schema of what the source offers (selected columns only), known on the driver."""

    def known_rows(self) -> int | None:
        """The number of rows, when the driver knows it without reading data (None otherwise)."""
        return None

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        """Which of ``columns`` hold no non-missing value, when the driver can tell without a job."""
        return None

    def _check_columns(self, columns: Sequence[str] | None) -> tuple[str, ...] | None:
        if columns is None:
            return None
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise ArgumentTypeError(f"columns must be a list of column names (str), got {columns!r}")
        available = self.column_names()
        missing = [c for c in columns if c not in available]
        if missing:
            raise ColumnNotFoundError(f"columns {missing} are not in the data; available columns: {available}")
        return tuple(columns)


class LocalSplit(abc.ABC):
    """One split as seen by a local worker: picklable, yields pandas chunks."""

    @abc.abstractmethod
    def chunks(self) -> Iterator[pd.DataFrame]:
        """The split's rows, chunk by chunk."""


@dataclass(frozen=True)
class FrameSplit(LocalSplit):
    frame: pd.DataFrame
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK

    def chunks(self) -> Iterator[pd.DataFrame]:
        n = len(self.frame)
        for start in range(0, n, self.rows_per_chunk):
            yield self.frame.iloc[start : start + self.rows_per_chunk]


def _frame_splits(frame: pd.DataFrame, n: int) -> list[LocalSplit]:
    """Contiguous, nearly equal pieces; none when the frame is empty."""
    rows = len(frame)
    n = max(1, min(n, rows))
    bounds = [rows * i // n for i in range(n + 1)]
    return [FrameSplit(frame.iloc[bounds[i] : bounds[i + 1]]) for i in range(n) if bounds[i + 1] > bounds[i]]


def _schema_pairs_from_arrow(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in schema]


# ---------------------------------------------------------------------------------------------
# pandas


class PandasData(DataSource):
    """An in-memory pandas DataFrame (internal; pass the DataFrame itself as ``data``)."""

    def __init__(self, frame: pd.DataFrame, *, columns: Sequence[str] | None = None) -> None:
        self.frame = frame
        self.columns = self._check_columns(columns)

    def column_names(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def with_columns(self, columns: Sequence[str] | None) -> PandasData:
        return PandasData(self.frame, columns=columns if columns is not None else self.columns)

    def selected(self) -> pd.DataFrame:
        return self.frame if self.columns is None else self.frame[list(self.columns)]

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.Schema.from_pandas(self.selected(), preserve_index=False)

    def known_rows(self) -> int | None:
        return len(self.frame)

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        return [c for c in columns if not self.frame[c].notna().any()]

    def validate(self, compute_context: ComputeContext | None = None) -> ValidationReport:
        import pyarrow as pa

        slots = _slots(compute_context)
        splits = _frame_splits(self.selected(), slots)
        sizes = [len(s.frame) for s in splits if isinstance(s, FrameSplit)]
        return ValidationReport(
            source=f"pandas DataFrame ({len(self.frame):,} rows)",
            n_splits=len(splits),
            n_rows=len(self.frame),
            n_bytes=int(self.selected().memory_usage(deep=False).sum()),
            empty_splits=0,
            skew=_skew(sizes),
            schema=_schema_pairs_from_arrow(pa.Schema.from_pandas(self.selected(), preserve_index=False)),
        )

    def local_splits(self, slots: int) -> list[LocalSplit]:
        return _frame_splits(self.selected(), slots)

    def __repr__(self) -> str:
        return f"PandasData({len(self.frame)} rows, columns={self.columns})"


# ---------------------------------------------------------------------------------------------
# Spark DataFrames


class SparkData(DataSource):
    """A pyspark DataFrame (classic or Spark Connect): each partition is one split.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The data. It is never collected to the driver in a Spark compute context.
    columns : list of str, optional
        Read only these columns.
    """

    def __init__(self, df: DataFrame, *, columns: Sequence[str] | None = None) -> None:
        if not _compat.is_spark_dataframe(df):
            raise ArgumentTypeError(f"SparkData expects a pyspark DataFrame as df, got {type(df).__name__}")
        self.df = df
        self.columns = self._check_columns(columns)

    def column_names(self) -> list[str]:
        return list(self.df.columns)

    def with_columns(self, columns: Sequence[str] | None) -> SparkData:
        return SparkData(self.df, columns=columns if columns is not None else self.columns)

    def frame(self) -> DataFrame:
        """The DataFrame with the selected columns."""
        return self.df if self.columns is None else self.df.select(*self.columns)

    def arrow_schema(self) -> pa.Schema:
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(self.frame().schema)

    def is_compatible_with(self, session: SparkSession) -> bool:
        return _same_session(_compat.session_of(self.df), session)

    def validate(self, compute_context: ComputeContext | None = None) -> ValidationReport:
        df = self.frame()
        n_splits = _compat.known_partitions(df)
        warnings = []
        slots = compute_context.task_slots if compute_context is not None else _compat.task_slots(df.sparkSession)
        if n_splits is not None and slots is not None and n_splits < slots:
            warnings.append(f"fewer splits than task slots ({n_splits} < {slots}): consider df.repartition({slots})")
        return ValidationReport(
            source=f"Spark DataFrame ({'Spark Connect' if _compat.is_connect(df) else 'classic'})",
            n_splits=n_splits,
            n_rows=None,
            n_bytes=None,
            empty_splits=None,
            skew=None,
            schema=[(f.name, f.dataType.simpleString()) for f in df.schema.fields],
            warnings=warnings,
        )

    def local_splits(self, slots: int) -> list[LocalSplit]:
        # A local context processes a Spark DataFrame in this process: bring it over once.
        return _frame_splits(self.frame().toPandas(), slots)

    def __repr__(self) -> str:
        return f"SparkData(columns={self.columns})"


def _same_session(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if _compat.is_connect(a) and _compat.is_connect(b):
        return bool(getattr(a, "session_id", None) == getattr(b, "session_id", 1))
    return False


# ---------------------------------------------------------------------------------------------
# Parquet


@dataclass(frozen=True)
class _RowGroup:
    file: int  # index into _Discovery.files
    id: int
    rows: int
    bytes: int


@dataclass(frozen=True)
class _File:
    path: str
    partition_expression: Any  # pyarrow.compute.Expression
    metadata: Any  # pyarrow.parquet.FileMetaData, read once at discovery


@dataclass
class _Discovery:
    filesystem: pafs.FileSystem
    schema: pa.Schema
    partition_names: list[str]
    files: list[_File]
    row_groups: list[_RowGroup]
    empty_files: list[str]
    warnings: list[str]


@dataclass(frozen=True)
class ParquetSplit(LocalSplit):
    """Whole row groups of one or more files, read with pyarrow by whoever runs the split."""

    filesystem: Any
    pieces: tuple[tuple[str, tuple[int, ...], Any], ...]  # (path, row group ids, partition expression)
    schema: Any
    columns: tuple[str, ...] | None
    filter: Any
    rows_per_chunk: int

    def chunks(self) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.dataset as pads

        fmt = pads.ParquetFileFormat()
        for path, ids, pexpr in self.pieces:
            try:
                frag = fmt.make_fragment(
                    path, filesystem=self.filesystem, partition_expression=pexpr, row_groups=list(ids)
                )
                batches = frag.to_batches(
                    schema=self.schema,
                    columns=list(self.columns) if self.columns is not None else None,
                    filter=self.filter,
                    batch_size=self.rows_per_chunk,
                )
                for batch in batches:
                    yield batch.to_pandas()
            except (OSError, pa.ArrowException) as err:
                raise DataSourceError(f"cannot read Parquet file '{path}': {type(err).__name__}: {err}") from err


class ParquetData(DataSource):
    """Parquet files: a file, a directory (hive-style ``key=value`` folders become columns),
    a glob, or a list of these; local paths (``/Volumes/...`` included), ``file://`` and other
    URIs. ``dbfs:/mnt/x`` is read as ``/dbfs/mnt/x`` where that mount exists (Databricks), else
    with Spark's reader.

    Parameters
    ----------
    path : str, os.PathLike or list of them
        Where the data is.
    columns : list of str, optional
        Read only these columns (the others are never read from disk).
    filters : list of tuples, list of lists of tuples, or pyarrow Expression, optional
        pyarrow's filter syntax, e.g. ``[("year", ">=", 2020)]``. Row groups whose statistics
        rule a filter out are skipped; the remaining rows are filtered.
    engine : {"auto", "arrow", "spark"}
        How Spark executors read: "arrow" lets each executor read its planned row groups
        with pyarrow; "spark" uses ``spark.read.parquet``; "auto" picks "arrow" when pyarrow
        can open the path, else "spark".
    rows_per_chunk : int, optional
        Rows per chunk given to ``chunked=True`` functions (default 65,536).
    split_bytes : int, optional
        Upper bound of a split's size in (uncompressed) bytes (default 128 MiB).

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
    ) -> None:
        self.paths = _normalize_paths(path)
        if engine not in ("auto", "arrow", "spark"):
            raise InvalidArgumentError(f"engine must be 'auto', 'arrow' or 'spark', got {engine!r}")
        for name, value in (("rows_per_chunk", rows_per_chunk), ("split_bytes", split_bytes)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        self.engine = engine
        self.rows_per_chunk = rows_per_chunk or DEFAULT_ROWS_PER_CHUNK
        self.split_bytes = split_bytes or DEFAULT_SPLIT_BYTES
        self.filters = filters
        self._filter_expr = _filters_to_expression(filters)
        self._discovery: _Discovery | None = None
        self._arrow_error: _ArrowOpenError | None = None  # pyarrow cannot open a path on the driver
        self._spark_schema: pa.Schema | None = None  # the schema from Spark's reader, when it stands in
        self.columns = None
        self.columns = self._check_columns(columns)

    # -- discovery ------------------------------------------------------------------------------

    def _discover(self) -> _Discovery:
        """Files, footers and schema, read with pyarrow on the driver."""
        if self._discovery is None:
            known = self._arrow_error
            if known is not None:  # pyarrow failed before: not again (a listing can take long to fail)
                raise _ArrowOpenError(str(known), path=known.path, reason=known.reason) from known.__cause__
            try:
                discovery = _discover(self.paths)
            except _ArrowOpenError as err:
                if self.engine == "arrow":  # the message says what engine="arrow" needs
                    self._arrow_error = _cannot_open(err.path, err.reason, "arrow")
                    raise self._arrow_error from err.__cause__
                self._arrow_error = err
                raise
            if self._filter_expr is not None:
                _check_filter_columns(self.filters, self._filter_expr, discovery.schema)
            self._discovery = discovery
        return self._discovery

    def arrow_failure(self) -> str | None:
        """None when pyarrow on the driver can list and open every path (its files are then
        discovered); otherwise why not, in one line."""
        try:
            self._discover()
        except _ArrowOpenError as err:
            return f"'{err.path}': {err.reason}"
        return None

    def _schema_in(self, compute_context: ComputeContext | None = None) -> pa.Schema:
        """The schema of all columns as the driver knows it: from the footers, read with pyarrow.
        When pyarrow cannot open a path and ``compute_context`` (default: the current one) is a Spark
        context, with engine "auto" or "spark": from Spark's reader. Bad paths fail here."""
        if self._spark_schema is not None:
            return self._spark_schema
        try:
            return self._discover().schema
        except _ArrowOpenError as err:
            if self.engine == "arrow":
                raise
            if compute_context is None:
                from sparkdist.context import get_compute_context

                compute_context = get_compute_context()
            if not compute_context.is_distributed:
                raise
            session = compute_context.session  # type: ignore[attr-defined]
            self._spark_schema = self._schema_from_spark(session, err)
            return self._spark_schema

    def _schema_from_spark(self, session: SparkSession, arrow_error: _ArrowOpenError) -> pa.Schema:
        where = ", ".join(self.paths)
        try:
            struct = self._spark_read(session).schema  # classic and Connect: lists the files, reads a footer
        except Exception as err:
            raise spark_reader_error(self.paths, err, arrow_error.reason) from err
        from pyspark.sql.pandas.types import to_arrow_schema

        try:
            schema = to_arrow_schema(struct)
        except Exception as err:
            raise DataSourceError(
                f"Spark's reader opens '{where}', but its schema ({struct.simpleString()[:300]}) has types "
                f"Arrow cannot hold: {_one_line(err)}"
            ) from err
        if self.filters is not None:
            if not isinstance(self.filters, (list, tuple)):
                raise InvalidArgumentError(
                    f"pyarrow cannot open {arrow_error.path!r} ({arrow_error.reason}), so Spark's reader reads it; "
                    "it needs filters as [(column, op, value), ...], not a pyarrow Expression"
                )
            _check_filter_columns(self.filters, self._filter_expr, schema)
        return schema

    def arrow_schema(self) -> pa.Schema:
        schema = self._schema_in()
        return schema if self.columns is None else _select_schema(schema, self.columns)

    def known_rows(self) -> int | None:
        if self._spark_schema is not None or self._filter_expr is not None:
            return None
        return sum(rg.rows for rg in self._pruned_row_groups())

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        """From the footers' null counts; a column without statistics counts as having values."""
        if self._spark_schema is not None or self._filter_expr is not None:
            return None
        disc = self._discover()
        nulls = {c: 0 for c in columns if c not in disc.partition_names}
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

    def column_names(self) -> list[str]:
        return list(self._schema_in().names)

    def with_columns(self, columns: Sequence[str] | None) -> ParquetData:
        new = object.__new__(ParquetData)
        new.__dict__.update(self.__dict__)
        new.columns = new._check_columns(columns) if columns is not None else self.columns
        return new

    # -- planning -------------------------------------------------------------------------------

    def _pruned_row_groups(self) -> list[_RowGroup]:
        disc = self._discover()
        if self._filter_expr is None:
            return disc.row_groups
        import pyarrow.dataset as pads

        fmt = pads.ParquetFileFormat()
        keep: list[_RowGroup] = []
        by_file: dict[int, list[_RowGroup]] = {}
        for rg in disc.row_groups:
            by_file.setdefault(rg.file, []).append(rg)
        for file_index, rgs in by_file.items():
            f = disc.files[file_index]
            frag = fmt.make_fragment(f.path, filesystem=disc.filesystem, partition_expression=f.partition_expression)
            try:
                kept_ids = {
                    piece.row_groups[0].id
                    for piece in frag.split_by_row_group(filter=self._filter_expr, schema=disc.schema)
                }
            except Exception as err:
                raise DataSourceError(f"filters {self.filters!r} cannot be applied to '{f.path}': {err}") from err
            keep += [rg for rg in rgs if rg.id in kept_ids]
        return keep

    def plan(self, slots: int) -> list[ParquetSplit]:
        """Plan splits for ``slots`` task slots from footers only (no data pages are read)."""
        disc = self._discover()
        groups = _group_row_groups(self._pruned_row_groups(), slots, self.split_bytes)
        splits = []
        for group in groups:
            pieces: list[tuple[str, tuple[int, ...], Any]] = []
            for rg in group:
                f = disc.files[rg.file]
                if pieces and pieces[-1][0] == f.path:
                    pieces[-1] = (f.path, (*pieces[-1][1], rg.id), pieces[-1][2])
                else:
                    pieces.append((f.path, (rg.id,), f.partition_expression))
            splits.append(
                ParquetSplit(
                    filesystem=disc.filesystem,
                    pieces=tuple(pieces),
                    schema=disc.schema,
                    columns=self.columns,
                    filter=self._filter_expr,
                    rows_per_chunk=self.rows_per_chunk,
                )
            )
        return splits

    def local_splits(self, slots: int) -> list[LocalSplit]:
        return list(self.plan(slots))

    def is_compatible_with(self, session: SparkSession) -> bool:
        return True

    def validate(self, compute_context: ComputeContext | None = None) -> ValidationReport:
        schema = self._schema_in(compute_context)
        if self._spark_schema is not None:
            assert self._arrow_error is not None
            return ValidationReport(
                source=f"Parquet {', '.join(self.paths)} (Spark's reader)",
                n_splits=None,
                n_rows=None,
                n_bytes=None,
                empty_splits=None,
                skew=None,
                schema=_schema_pairs_from_arrow(
                    schema if self.columns is None else _select_schema(schema, self.columns)
                ),
                warnings=[
                    f"pyarrow cannot open '{self._arrow_error.path}' on the driver ({self._arrow_error.reason}): "
                    "Spark's reader (spark.read.parquet) reads it, and its partitions are the splits"
                ],
            )
        disc = self._discover()
        slots = _slots(compute_context)
        rgs = self._pruned_row_groups()
        groups = _group_row_groups(rgs, slots, self.split_bytes)
        sizes = [sum(rg.bytes for rg in g) for g in groups]
        warnings = list(disc.warnings)
        if disc.empty_files:
            shown = ", ".join(disc.empty_files[:5]) + (" ..." if len(disc.empty_files) > 5 else "")
            warnings.append(f"{len(disc.empty_files)} file(s) have no rows: {shown}")
        if 0 < len(groups) < slots:
            warnings.append(
                f"fewer splits than task slots ({len(groups)} < {slots}): the data has only {len(rgs)} row group(s); "
                "write it with smaller row groups or more files to use every slot"
            )
        if not groups:
            warnings.append("no rows to process" + (" after filters" if self._filter_expr is not None else ""))
        schema = disc.schema if self.columns is None else _select_schema(disc.schema, self.columns)
        return ValidationReport(
            source=f"Parquet {', '.join(self.paths)}",
            n_splits=len(groups),
            n_rows=sum(rg.rows for rg in rgs),
            n_bytes=sum(sizes),
            empty_splits=0,
            skew=_skew(sizes),
            schema=_schema_pairs_from_arrow(schema),
            files=len(disc.files),
            warnings=warnings,
        )

    # -- Spark's own reader ---------------------------------------------------------------------

    def _spark_read(self, session: SparkSession) -> DataFrame:
        """All columns through ``spark.read.parquet``."""
        reader = session.read
        uris = [_spark_uri(p) for p in self.paths]
        if len(uris) == 1 and os.path.isdir(self.paths[0]):
            reader = reader.option("basePath", uris[0])
        return reader.parquet(*uris)

    def spark_frame(self, session: SparkSession) -> DataFrame:
        """The data through ``spark.read.parquet`` (engine="spark", or "auto" falling back)."""
        df = self._spark_read(session)
        if self.filters is not None:
            df = df.filter(_filters_to_spark(self.filters))
        if self.columns is not None:
            df = df.select(*self.columns)
        return df

    def __repr__(self) -> str:
        return f"ParquetData({self.paths!r}, columns={self.columns}, filters={self.filters!r}, engine={self.engine!r})"


def _select_schema(schema: pa.Schema, columns: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([schema.field(c) for c in columns])


def _normalize_paths(path: Any) -> list[str]:
    items = [path] if isinstance(path, (str, os.PathLike)) else path
    if not isinstance(items, (list, tuple)) or not items:
        raise ArgumentTypeError(
            f"path must be a str, an os.PathLike or a non-empty list of them, got {type(path).__name__}"
        )
    out = []
    for p in items:
        if not isinstance(p, (str, os.PathLike)):
            raise ArgumentTypeError(f"path entries must be str or os.PathLike, got {type(p).__name__}: {p!r}")
        s = os.fspath(p)
        if _scheme(s) is None:  # a local path (/Volumes/... included): made absolute
            s = os.path.abspath(os.path.expanduser(s))
        out.append(s)
    return out


# "scheme://..." or "scheme:/..." (dbfs:/mnt/x). A one-letter scheme would be a Windows drive (C:/data).
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):/")
#: Where Databricks mounts DBFS on its machines: dbfs:/mnt/x is /dbfs/mnt/x there.
_DBFS_MOUNT = "/dbfs"
#: Schemes Spark reads through Hadoop file systems (when their connector is installed).
_HADOOP_SCHEMES = frozenset(
    {"hdfs", "viewfs", "webhdfs", "swebhdfs", "har", "s3a", "s3n", "abfs", "abfss", "wasb", "wasbs", "adl", "gs",
     "oss", "cos", "cosn", "obs", "ofs", "o3fs", "jfs", "dbfs"}
)  # fmt: skip


def _scheme(path: str) -> str | None:
    """The URI scheme of ``path`` (lower case), None for a local path."""
    m = _URI.match(path)
    return m.group("scheme").lower() if m else None


def _dbfs_local(path: str) -> str | None:
    """``dbfs:/mnt/x`` as ``/dbfs/mnt/x`` when this machine has the DBFS mount, else None."""
    if not os.path.isdir(_DBFS_MOUNT):
        return None
    return os.path.join(_DBFS_MOUNT, path.split(":", 1)[1].lstrip("/"))


class _ArrowOpenError(DataSourceError):
    """pyarrow on the driver cannot list or open a path (unknown scheme, missing native library,
    credentials, ...). In a Spark context with engine "auto" Spark's reader is tried instead."""

    def __init__(self, message: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason


def _cannot_open(path: str, reason: str, engine: str = "auto") -> _ArrowOpenError:
    scheme = _scheme(path) or "file"
    native = ""
    if scheme in ("hdfs", "viewfs"):
        native = "; pyarrow's HDFS client needs libhdfs and a JVM (JAVA_HOME, HADOOP_HOME, CLASSPATH)"
    if engine == "arrow":
        message = (
            f"engine='arrow' reads '{path}' with pyarrow, which cannot open it: {reason}. Use engine='auto' or "
            f"'spark' in a Spark compute context to read it with Spark's reader, or set up pyarrow's file system "
            f"for '{scheme}' paths (pyarrow.fs: credentials, native libraries{native})."
        )
    elif scheme == "dbfs":
        message = (
            f"pyarrow cannot open '{path}': {reason}. pyarrow reads dbfs:/ paths through the {_DBFS_MOUNT} mount "
            f"(dbfs:/mnt/x is {_DBFS_MOUNT}/mnt/x); in a Spark compute context sparkdist reads them with Spark's "
            "reader instead."
        )
    elif scheme in _HADOOP_SCHEMES:
        message = (
            f"pyarrow cannot open '{path}': {reason}. '{scheme}' is a Hadoop file system scheme: in a Spark compute "
            f"context sparkdist reads it with Spark's reader (engine='auto' or 'spark'); outside Spark, pyarrow "
            f"needs a file system for it{native}."
        )
    else:
        message = (
            f"pyarrow cannot open '{path}': {reason}. Check the path (pyarrow opens local paths and the URIs "
            "pyarrow.fs knows: file://, s3://, gs://, abfss://, hdfs://) and, for remote storage, pyarrow's "
            "credentials; in a Spark compute context sparkdist tries Spark's reader when pyarrow cannot open a path."
        )
    return _ArrowOpenError(message, path=path, reason=reason)


# A Java class name opening a line, as in "org.apache.hadoop.fs.UnsupportedFileSystemException: ..."
# or Spark Connect's "(org.apache...Exception) ...": the line names its own type.
_JAVA_CLASS = re.compile(r"^\(?[a-z][\w$]*(?:\.[a-z][\w$]*)*\.[A-Z][\w$]*\)?[:\s]")


def _one_line(err: BaseException, limit: int = 300) -> str:
    """An error as one line: its type and the first line of its message, without Py4J's preamble
    or a JVM stack."""
    line = ""
    for raw in str(err).splitlines():
        text = raw.strip().lstrip(":").strip()
        if text and not text.startswith(("An error occurred while calling", "at ", "JVM stacktrace")):
            line = text
            break
    if not line:
        return type(err).__name__
    if not _JAVA_CLASS.match(line):
        line = f"{type(err).__name__}: {line}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def spark_reader_error(paths: Sequence[str], err: BaseException, arrow_reason: str | None = None) -> DataSourceError:
    """Spark's reader failed on ``paths`` (after pyarrow did, when ``arrow_reason`` is given): a
    DataSourceError (DataNotFoundError for a missing path) naming each attempt in one line."""
    where = ", ".join(paths)
    spark = _one_line(err)
    not_found = any(t in spark for t in ("PATH_NOT_FOUND", "Path does not exist", "FileNotFoundException"))
    cls = DataNotFoundError if not_found else DataSourceError
    if arrow_reason is None:
        return cls(
            f"Spark's reader (spark.read.parquet) cannot read the Parquet data at '{where}': {spark}. Check the "
            "path, and that Spark has a file system (and credentials) for its scheme."
        )
    return cls(
        f"cannot read the Parquet data at '{where}' with either reader:\n"
        f"  pyarrow (on the driver): {arrow_reason}\n"
        f"  Spark's reader (spark.read.parquet): {spark}\n"
        "Check the path. Spark's reader opens the schemes it has a Hadoop file system (and credentials) for; "
        "pyarrow the ones pyarrow.fs opens."
    )


def _arrow_filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system for ``path`` and the path on it; _ArrowOpenError when pyarrow has none."""
    import pyarrow.fs as pafs

    scheme = _scheme(path)
    if scheme is None:
        return pafs.LocalFileSystem(), path
    if scheme == "dbfs":
        local = _dbfs_local(path)
        if local is None:
            raise _cannot_open(path, f"no {_DBFS_MOUNT} mount on this machine")
        return pafs.LocalFileSystem(), local
    try:
        return pafs.FileSystem.from_uri(path)
    except Exception as err:  # a scheme pyarrow does not know, a native library missing, ...
        raise _cannot_open(path, _one_line(err)) from err


def _spark_uri(path: str) -> str:
    return path if _scheme(path) is not None else "file://" + path


def _is_hidden(rel: str) -> bool:
    # Like Spark: any path component starting with "_" or "." is ignored, except "key=value" folders.
    return any((part.startswith(("_", ".")) and "=" not in part) for part in rel.split("/") if part)


def _has_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _expand(path: str) -> tuple[pafs.FileSystem, list[tuple[str, str]]]:
    """(filesystem, [(file, base directory for hive partitions)]) for one user path."""
    fs, p = _arrow_filesystem(path)
    try:
        return fs, _expand_on(fs, p, path)
    except SparkDistError:
        raise
    except Exception as err:  # listing failed: credentials, network, permissions, ...
        raise _cannot_open(path, _one_line(err)) from err


def _expand_on(fs: pafs.FileSystem, p: str, shown: str) -> list[tuple[str, str]]:
    import pyarrow.fs as pafs

    if _has_glob(p):
        base = p[: min(p.index(c) for c in "*?[" if c in p)].rsplit("/", 1)[0] or "/"
        if isinstance(fs, pafs.LocalFileSystem):
            matches = sorted(globlib.glob(p, recursive=True))
        else:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
            matches = sorted(i.path for i in infos if fnmatch.fnmatch(i.path, p))
        if not matches:
            raise DataNotFoundError(f"no files match the pattern '{shown}'")
        return [(f, base) for m in matches for f, _ in _expand_on(fs, m, m)]
    info = fs.get_file_info(p)
    if info.type == pafs.FileType.NotFound:
        raise DataNotFoundError(f"path '{shown}' does not exist")
    if info.type == pafs.FileType.File:
        return [(p, os.path.dirname(p))]
    infos = fs.get_file_info(pafs.FileSelector(p, recursive=True))
    # Like Spark: hidden and "_" files are ignored, and so are 0-byte files (e.g. _SUCCESS markers).
    files = sorted(
        i.path for i in infos if i.type == pafs.FileType.File and i.size and not _is_hidden(i.path[len(p) :])
    )
    if not files:
        raise DataNotFoundError(f"directory '{shown}' holds no Parquet files")
    return [(f, p) for f in files]


def _discover(paths: list[str]) -> _Discovery:
    import pyarrow as pa
    import pyarrow.dataset as pads

    fs = None
    entries: list[tuple[str, str]] = []
    for p in paths:
        pfs, found = _expand(p)
        if fs is None:
            fs = pfs
        elif type(fs) is not type(pfs):
            raise DataSourceError(f"all paths must be on one file system; '{p}' is on another than '{paths[0]}'")
        entries += found
    assert fs is not None
    seen: set[str] = set()
    entries = [e for e in entries if not (e[0] in seen or seen.add(e[0]))]  # type: ignore[func-returns-value]

    def read_footer(entry: tuple[str, str]) -> tuple[str, Any, Any]:
        path, _base = entry
        try:
            frag = pads.ParquetFileFormat().make_fragment(path, filesystem=fs)
            return path, frag.metadata, frag.physical_schema
        except (pa.ArrowInvalid, OSError) as err:
            return path, err, None

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(entries))) as pool:
        footers = list(pool.map(read_footer, entries))
    bad = [(p, m) for p, m, _ in footers if isinstance(m, BaseException)]
    if bad:
        listed = "; ".join(f"'{p}' ({type(e).__name__}: {str(e).splitlines()[0]})" for p, e in bad[:10])
        raise DataSourceError(
            f"{len(bad)} file(s) are not Parquet or are truncated: {listed}"
            + (" ..." if len(bad) > 10 else "")
            + ". Remove them, or point path at the Parquet files only (names starting with '_' or '.' are ignored)."
        )

    # Hive partitions: key=value folders between each file and its base directory.
    part_values: list[dict[str, str]] = []
    for path, base in entries:
        rel = os.path.dirname(path)[len(base) :].strip("/")
        kv = dict(seg.split("=", 1) for seg in rel.split("/") if "=" in seg) if rel else {}
        part_values.append(kv)
    part_names = list(dict.fromkeys(k for kv in part_values for k in kv))
    partition_fields = [_infer_partition_field(name, [kv.get(name) for kv in part_values]) for name in part_names]

    # Schemas: every file must agree on the type of every column it has.
    types: dict[str, dict[str, list[str]]] = {}
    for path, _, schema in footers:
        for fld in schema:
            if fld.name in part_names:
                continue
            types.setdefault(fld.name, {}).setdefault(str(fld.type), []).append(path)
    conflicts = {c: t for c, t in types.items() if len(t) > 1}
    if conflicts:
        desc = "; ".join(
            f"column '{c}' is "
            + " but ".join(f"{typ} in {', '.join(repr(p) for p in ps[:3])}" for typ, ps in t.items())
            for c, t in conflicts.items()
        )
        raise SchemaConflictError(f"the Parquet files disagree on column types: {desc}")
    file_schema = pa.unify_schemas([s for _, _, s in footers])
    schema = pa.schema([f for f in file_schema if f.name not in part_names] + partition_fields)
    warnings = []
    partial = [c for c in types if sum(len(ps) for ps in types[c].values()) < len(entries)]
    if partial:
        warnings.append(f"columns {partial} are missing from some files and read as nulls there")

    files: list[_File] = []
    row_groups: list[_RowGroup] = []
    empty: list[str] = []
    for i, ((path, meta, _), kv) in enumerate(zip(footers, part_values, strict=False)):
        expr = _partition_expression(partition_fields, kv)
        files.append(_File(path=path, partition_expression=expr, metadata=meta))
        n_before = len(row_groups)
        for rg in range(meta.num_row_groups):
            g = meta.row_group(rg)
            if g.num_rows > 0:
                row_groups.append(_RowGroup(file=i, id=rg, rows=g.num_rows, bytes=g.total_byte_size))
        if len(row_groups) == n_before:
            empty.append(path)
    return _Discovery(fs, schema, part_names, files, row_groups, empty, warnings)


def _infer_partition_field(name: str, values: list[str | None]) -> pa.Field:
    import pyarrow as pa

    present = [v for v in values if v is not None and v != "__HIVE_DEFAULT_PARTITION__"]

    def all_int() -> bool:
        try:
            [int(v) for v in present]
            return True
        except ValueError:
            return False

    if present and all_int():
        return pa.field(name, pa.int32() if all(-(2**31) <= int(v) < 2**31 for v in present) else pa.int64())
    return pa.field(name, pa.string())


def _partition_expression(fields: list[pa.Field], kv: dict[str, str]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    expr = None
    for fld in fields:
        raw = kv.get(fld.name)
        if raw is None or raw == "__HIVE_DEFAULT_PARTITION__":
            term = pc.field(fld.name).is_null()
        else:
            from urllib.parse import unquote

            value = int(raw) if pa.types.is_integer(fld.type) else unquote(raw)
            term = pc.field(fld.name) == pa.scalar(value, type=fld.type)
        expr = term if expr is None else (expr & term)
    return expr if expr is not None else pc.scalar(True)


def _group_row_groups(rgs: list[_RowGroup], slots: int, split_bytes: int) -> list[list[_RowGroup]]:
    """Consecutive row groups packed into splits of at most ``split_bytes``, as many as a multiple of
    the task slots (so that no slot waits for a last, lone split), but none below 1 MiB unless the
    data is that small."""
    if not rgs:
        return []
    slots = max(1, slots)
    total = sum(rg.bytes for rg in rgs)
    wanted = max(slots, -(-total // split_bytes))
    wanted = -(-wanted // slots) * slots  # round up to whole waves
    wanted = min(wanted, max(slots, -(-total // _MIN_SPLIT_BYTES)))
    target = min(split_bytes, max(1, -(-total // wanted)))
    groups: list[list[_RowGroup]] = [[]]
    size = 0
    for rg in rgs:
        if groups[-1] and size + rg.bytes > target:
            groups.append([])
            size = 0
        groups[-1].append(rg)
        size += rg.bytes
    return groups


def _skew(sizes: list[int]) -> float | None:
    if not sizes:
        return None
    med = statistics.median(sizes)
    return float(max(sizes) / med) if med else None


def _filters_to_expression(filters: Any) -> Any:
    if filters is None:
        return None
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if isinstance(filters, pc.Expression):
        return filters
    if not isinstance(filters, (list, tuple)) or not filters:
        raise InvalidArgumentError(
            f"filters must be a non-empty list of (column, op, value) tuples, a list of such lists, "
            f"or a pyarrow Expression; got {filters!r}"
        )
    try:
        return pq.filters_to_expression(filters)
    except (TypeError, ValueError, IndexError, KeyError) as err:
        raise InvalidArgumentError(
            f"filters {filters!r} are not of the form [(column, op, value), ...] or [[(column, op, value), ...], ...] "
            f"with op one of =, ==, !=, <, >, <=, >=, in, not in: {err}"
        ) from err


def _filter_columns(filters: Any) -> list[str]:
    if not isinstance(filters, (list, tuple)):
        return []
    flat = [t for conj in filters for t in conj] if filters and isinstance(filters[0], list) else list(filters)
    return [t[0] for t in flat if isinstance(t, tuple) and t]


def _check_filter_columns(filters: Any, expr: Any, schema: pa.Schema) -> None:
    names = _filter_columns(filters)
    missing = [n for n in names if n not in schema.names]
    if missing:
        raise ColumnNotFoundError(
            f"filters name columns {missing} that are not in the data; available columns: {schema.names}"
        )


def _filters_to_spark(filters: Any) -> Any:
    from pyspark.sql import functions as F

    if not isinstance(filters, (list, tuple)):
        raise InvalidArgumentError("engine='spark' needs filters in list-of-tuples form, not a pyarrow Expression")
    disjuncts = [filters] if not isinstance(filters[0], list) else filters
    ops = {
        "=": lambda c, v: c == v, "==": lambda c, v: c == v, "!=": lambda c, v: c != v,
        "<": lambda c, v: c < v, ">": lambda c, v: c > v, "<=": lambda c, v: c <= v, ">=": lambda c, v: c >= v,
        "in": lambda c, v: c.isin(list(v)), "not in": lambda c, v: ~c.isin(list(v)),
    }  # fmt: skip
    result = None
    for conj in disjuncts:
        term = None
        for col, op, value in conj:
            t = ops[op](F.col(col), value)
            term = t if term is None else term & t
        result = term if result is None else result | term
    return result


# ---------------------------------------------------------------------------------------------


def _slots(compute_context: ComputeContext | None) -> int:
    from sparkdist.context import get_compute_context

    ctx = compute_context if compute_context is not None else get_compute_context()
    return ctx.task_slots


def as_data_source(data: Any, *, columns: Sequence[str] | None = None) -> DataSource:
    """Turn anything accepted as ``data`` into a DataSource (columns checked when given).

    >>> import pandas as pd
    >>> as_data_source(pd.DataFrame({"a": [1]})).column_names()
    ['a']
    """
    import pandas as pd

    source: DataSource
    if isinstance(data, DataSource):
        source = data
    elif _compat.is_spark_dataframe(data):
        source = SparkData(data)
    elif isinstance(data, pd.DataFrame):
        source = PandasData(data)
    elif isinstance(data, (str, os.PathLike)) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data)
    ):
        source = ParquetData(data)
    else:
        raise ArgumentTypeError(
            f"data must be a sparkdist DataSource, a pyspark DataFrame, a pandas DataFrame, or a path to Parquet data "
            f"(str / os.PathLike / list of them); got {type(data).__module__}.{type(data).__name__}"
        )
    return source.with_columns(columns) if columns is not None else source
