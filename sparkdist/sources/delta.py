"""Delta Lake tables: a snapshot resolved once on the driver (``deltalake``), planned from its active
files and their footers as Parquet data is, read by whoever runs a split with pyarrow alone (deletion
vectors applied, column mapping undone), or read by Spark's Delta reader (engine "spark")."""

from __future__ import annotations

import copy
import datetime
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sparkdist._checks import check_positive_int
from sparkdist.errors import DataSourceError, InvalidArgumentError
from sparkdist.sources.base import (
    DataSource,
    KeyGroup,
    LocalSplit,
    ReadingContext,
    ValidationReport,
    select_schema,
)
from sparkdist.sources.delta_log import (
    Snapshot,
    check_version_args,
    has_deltalake,
    is_delta_table,
    load_snapshot,
    missing_deltalake,
)
from sparkdist.sources.delta_stats import guarantee, skip_files
from sparkdist.sources.discovery import Discovery, File, RowGroup, read_footers
from sparkdist.sources.filters import Filters, select_columns
from sparkdist.sources.frames import DEFAULT_ROWS_PER_CHUNK
from sparkdist.sources.paths import normalize_paths, one_line, spark_uri
from sparkdist.sources.planning import (
    all_null,
    hive_groups,
    plan_report,
    plan_splits,
    planned_frame,
    prune_row_groups,
    unplanned_report,
)
from sparkdist.sources.reading import ParquetSplit

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["DeltaData"]

#: Upper bound of a planned split, as for Parquet data.
DEFAULT_SPLIT_BYTES = 128 * 1024 * 1024


@dataclass
class _Pinned:
    """What a DeltaData and its copies share: the snapshot, once resolved, and its planned files."""

    snapshot: Snapshot | None = None
    discovery: Discovery | None = None
    skipped: int = 0
    spark_schema: pa.Schema | None = None  # engine "spark": the schema Spark's reader gives
    spark_version: int | None = None  # engine "spark": the version pinned with deltalake, if installed
    lock: threading.RLock = field(default_factory=threading.RLock)


class DeltaData(DataSource):
    """A Delta Lake table, read at one version.

    The driver resolves the snapshot once, the first time the source is used (``validate()`` or a
    job), and keeps it: the job, every pass of an iterative PEMA algorithm, and later jobs on the same
    object read that version, whatever is committed meanwhile. Splits are planned from the snapshot's
    active files (never a listing) and their footers; executors read them with pyarrow, deletion
    vectors applied and column-mapped names undone, so they need neither ``deltalake`` nor Delta's
    Spark connector.

    Parameters
    ----------
    path : str or os.PathLike
        The table's folder (local, ``file://``, ``s3://``, ...).
    version : int, optional
        The version to read (default: the latest when first used).
    timestamp : datetime or ISO 8601 str, optional
        Read the version current at this time (naive datetimes are UTC). Not with ``version``.
    columns : list of str, optional
        Read only these columns.
    filters : list of tuples, list of lists of tuples, or pyarrow Expression, optional
        As for :class:`ParquetData` (exact rows); files that the log's partition values and
        statistics rule out are not opened, row groups that footers rule out are not read.
    storage_options : dict, optional
        Options of the table's storage for ``deltalake`` on the driver (credentials, endpoint).
    engine : {"auto", "arrow", "spark"}
        "arrow": executors read the files with pyarrow (``deltalake`` on the driver). "spark":
        ``spark.read.format("delta")`` with ``versionAsOf`` / ``timestampAsOf`` (Spark must read
        Delta: delta-spark or Databricks). "auto": "arrow" when ``deltalake`` is installed (and the
        executors can open the files), else "spark".
    rows_per_chunk, split_bytes : int, optional
        As for :class:`ParquetData`.

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> from deltalake import write_deltalake
    >>> d = tempfile.mkdtemp()
    >>> write_deltalake(d, pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> report = DeltaData(d).validate()
    >>> report.source.endswith("(version 0)"), report.n_rows
    (True, 3)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        version: int | None = None,
        timestamp: datetime.datetime | str | None = None,
        columns: Sequence[str] | None = None,
        filters: Any = None,
        storage_options: dict[str, str] | None = None,
        engine: Literal["auto", "arrow", "spark"] = "auto",
        rows_per_chunk: int | None = None,
        split_bytes: int | None = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgumentError(f"path must be a str or os.PathLike naming one Delta table, got {path!r}")
        self.path = normalize_paths(path)[0]
        check_version_args(version, timestamp)
        if engine not in ("auto", "arrow", "spark"):
            raise InvalidArgumentError(f"engine must be 'auto', 'arrow' or 'spark', got {engine!r}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise InvalidArgumentError(f"storage_options must be a dict of str or None, got {storage_options!r}")
        self.version, self.timestamp, self.engine = version, timestamp, engine
        self.storage_options = storage_options
        self.rows_per_chunk = check_positive_int(rows_per_chunk, "rows_per_chunk") or DEFAULT_ROWS_PER_CHUNK
        self.split_bytes = check_positive_int(split_bytes, "split_bytes") or DEFAULT_SPLIT_BYTES
        self.filters = filters
        self._filters = None if filters is None else Filters.parse(filters)
        self._pin = _Pinned()
        if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
            raise InvalidArgumentError(f"columns must be a list of column names, got {columns!r}")
        self.columns = None if columns is None else tuple(columns)  # checked when the snapshot is known

    @classmethod
    def from_input(cls, data: Any) -> DeltaData | None:
        """``data`` as a source when it is a path to a Delta table's folder and ``deltalake`` is
        installed (the inputs registry), else None."""
        if not isinstance(data, (str, os.PathLike)) or not has_deltalake():
            return None
        return cls(data) if is_delta_table(normalize_paths(data)[0]) else None

    # -- the pinned snapshot ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The table's snapshot, resolved on the first call and kept (by this object and its copies)."""
        with self._pin.lock:
            if self._pin.snapshot is None:
                snap = load_snapshot(self.path, self.version, self.timestamp, self.storage_options)
                if self._filters is not None:
                    self._filters.check_columns(snap.schema.names)
                self._pin.snapshot = snap
            return self._pin.snapshot

    @property
    def pinned_version(self) -> int:
        """The version this source reads (the snapshot is resolved if it was not yet)."""
        return self.snapshot().version

    def _discover(self) -> Discovery:
        """The snapshot's files that the filters leave, their footers and row groups."""
        snap = self.snapshot()
        with self._pin.lock:
            if self._pin.discovery is None:
                self._pin.discovery, self._pin.skipped = _discover(snap, self._filters)
            return self._pin.discovery

    # -- what the driver knows -------------------------------------------------------------------

    def column_names(self) -> list[str]:
        if self._pin.spark_schema is not None:
            return list(self._pin.spark_schema.names)
        return list(self.snapshot().schema.names)

    def arrow_schema(self) -> pa.Schema:
        schema = self._pin.spark_schema if self._pin.spark_schema is not None else self.snapshot().schema
        return schema if self.columns is None else select_schema(schema, self._check_columns(self.columns) or ())

    def with_columns(self, columns: Sequence[str] | None) -> DeltaData:
        new = copy.copy(self)
        new.columns = new._check_columns(columns) if columns is not None else self.columns  # noqa: SLF001 - a copy of self
        return new

    def known_rows(self) -> int | None:
        if self.engine == "spark" or self._filters is not None:
            return None
        files = self.snapshot().files
        if any(f.rows is None for f in files):
            return sum(rg.rows for rg in self._discover().row_groups) - sum(f.deleted for f in self._discover().files)
        return sum(int(f.rows or 0) - (f.deletes.cardinality if f.deletes else 0) for f in files)

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        if self.engine == "spark" or self._filters is not None:
            return None
        snap, disc = self.snapshot(), self._discover()
        names = [c for c in columns if c not in snap.partition_names]
        physical = snap.mapping.physical_names() if snap.mapping is not None else None
        return all_null(disc, names, physical)

    # -- how a compute context reads it -----------------------------------------------------------

    def prepare(self, context: ReadingContext) -> DeltaData:
        """Settle the reader for ``context`` (see ``engine``); a table that cannot be read fails here."""
        arrow_ok = has_deltalake()
        if self.columns is not None and (arrow_ok or self.engine != "spark"):
            self.columns = self._check_columns(self.columns)
        if not context.is_distributed or self.engine == "arrow" or (self.engine == "auto" and arrow_ok):
            if not arrow_ok:
                raise missing_deltalake(self.path)
            disc = self._discover()
            if context.is_distributed and self.engine == "auto" and disc.files:
                ok, reason = context.executors_can_open(disc.filesystem, [f.path for f in disc.files[:2]])
                if not ok:
                    new = self._engine_copy("spark")
                    new._spark_schema(context, reason)  # noqa: SLF001 - a copy of self
                    return new
            return self._engine_copy("arrow")
        new = self._engine_copy("spark")
        new._spark_schema(context, None if arrow_ok else "deltalake is not installed")  # noqa: SLF001 - a copy of self
        return new

    def _engine_copy(self, engine: str) -> DeltaData:
        new = copy.copy(self)
        new.engine = engine  # type: ignore[assignment]
        return new

    def _spark_schema(self, context: ReadingContext, why: str | None) -> None:
        """Check that Spark reads the table (its schema, on the driver), and keep that schema."""
        session = context.spark_session
        assert session is not None
        try:
            struct = self._spark_read(session).schema
        except Exception as err:
            because = f"{why}, so " if why else ""
            raise DataSourceError(
                f"cannot read the Delta table '{self.path}': {because}Spark's Delta reader was tried and failed: "
                f"{one_line(err)}. Install deltalake on the driver (pip install 'sparkdist[delta]') to read it "
                "with pyarrow, or give Spark Delta's connector (delta-spark)."
            ) from err
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(struct)
        if self._filters is not None:
            self._filters.check_columns(schema.names)
        pinned = self._pin.snapshot.version if self._pin.snapshot is not None else _latest_version(self)
        self._pin = _Pinned(spark_schema=schema, spark_version=pinned)
        if self.columns is not None:
            self.columns = self._check_columns(self.columns)

    def _spark_read(self, session: SparkSession) -> DataFrame:
        reader = session.read.format("delta")
        if self.version is not None:
            reader = reader.option("versionAsOf", self.version)
        elif self.timestamp is not None:
            ts = self.timestamp
            reader = reader.option("timestampAsOf", ts.isoformat() if isinstance(ts, datetime.datetime) else ts)
        elif self._pin.spark_version is not None:
            reader = reader.option("versionAsOf", self._pin.spark_version)
        for key, value in (self.storage_options or {}).items():
            reader = reader.option(key, value)
        return reader.load(spark_uri(self.path))

    def readable_on(self, session: SparkSession | None) -> bool:
        return True

    def spark_frame(self, session: SparkSession) -> DataFrame | None:
        """The table through Spark's Delta reader when that is the reader (engine "spark"), else None."""
        if self.engine != "spark":
            return None
        df = self._spark_read(session)
        if self._filters is not None:
            df = df.filter(self._filters.to_spark())
        return select_columns(df, self.columns)

    def shuffle_frame(self, session: SparkSession) -> DataFrame | None:
        """The table's rows for work that regroups them: Spark's Delta reader (engine "spark"), else the
        planned splits read by the executors with pyarrow (deletion vectors applied)."""
        if self.engine == "spark":
            return self.spark_frame(session)
        splits = [s for s in self.plan(1) if isinstance(s, ParquetSplit)]
        return planned_frame(session, splits, self.arrow_schema()) if splits and self.columns != () else None

    def key_groups(self, keys: Sequence[str]) -> list[KeyGroup] | None:
        """One group per value of ``keys`` when they are partition columns (read where they lie, no
        shuffle); None otherwise, or with filters."""
        if self.engine != "arrow" or self._filters is not None:
            return None
        snap = self.snapshot()
        if not keys or not set(keys) <= set(snap.partition_names):
            return None
        return hive_groups(self._discover(), list(keys), self.columns, self.rows_per_chunk, snap.mapping)

    def plan(self, slots: int) -> list[LocalSplit]:
        """Splits for ``slots`` task slots, planned from the snapshot's files and their footers."""
        return plan_splits(
            self._discover(),
            self._pruned_row_groups(),
            slots,
            self.split_bytes,
            columns=self.columns,
            filters=self._filters,
            rows_per_chunk=self.rows_per_chunk,
            mapping=self.snapshot().mapping,
        )

    def _pruned_row_groups(self) -> list[RowGroup]:
        """Row groups whose footers do not rule the filters out (all of them on a column-mapped table,
        whose footers name columns otherwise; a footer pyarrow cannot match keeps its row groups)."""
        disc = self._discover()
        if self._filters is None or self.snapshot().mapping is not None:
            return disc.row_groups
        return prune_row_groups(disc, self._filters.to_arrow(), disc.row_groups, lambda f, err: True)

    def describe(self, slots: int) -> ValidationReport:
        if self.engine == "spark":
            return unplanned_report(
                f"Delta {self.path} ({self._version_text()}, Spark's Delta reader)",
                self.arrow_schema(),
                "Spark's Delta reader (spark.read.format('delta')) reads it; its partitions are the splits",
            )
        snap, disc = self.snapshot(), self._discover()
        warnings = []
        if self._pin.skipped:
            warnings.append(f"{self._pin.skipped} of {len(snap.files)} file(s) skipped: the log rules the filters out")
        deleted = sum(f.deleted for f in disc.files)
        if deleted:
            with_dv = sum(1 for f in disc.files if f.deletes is not None)
            warnings.append(f"{deleted:,} row(s) of {with_dv} file(s) deleted by deletion vectors (not counted)")
        source = f"Delta {self.path} (version {snap.version})"
        rgs, schema = self._pruned_row_groups(), self.arrow_schema()
        return plan_report(source, disc, rgs, slots, self.split_bytes, schema, warnings, self._filters is not None)

    def _version_text(self) -> str:
        pinned = self._pin.snapshot.version if self._pin.snapshot is not None else self._pin.spark_version
        if pinned is not None or self.version is not None:
            return f"version {pinned if pinned is not None else self.version}"
        return f"as of {self.timestamp}" if self.timestamp is not None else "latest version"

    def __repr__(self) -> str:
        return (
            f"DeltaData({self.path!r}, {self._version_text()}, columns={self.columns}, filters={self.filters!r}, "
            f"engine={self.engine!r})"
        )


def _discover(snap: Snapshot, filters: Filters | None) -> tuple[Discovery, int]:
    """The files the filters leave (by the log's partition values and statistics), with footers."""
    guarantees = [guarantee(f, snap.schema, filters) for f in snap.files]
    kept = list(range(len(snap.files)))
    if filters is not None and snap.files:
        try:
            kept = skip_files(snap.files, guarantees, filters.to_arrow(), snap.schema, snap.filesystem)
        except Exception as err:  # e.g. a value that cannot be compared with the column's type
            raise InvalidArgumentError(
                f"filters cannot be applied to the Delta table '{snap.uri}' (schema {snap.schema.to_string()!r}): "
                f"{one_line(err)}"
            ) from err
    files = [snap.files[i] for i in kept]
    footers = read_footers(
        snap.filesystem,
        [f.path for f in files],
        listed_by=f"the log of the Delta table '{snap.uri}' (version {snap.version})",
    )
    found: list[File] = []
    row_groups: list[RowGroup] = []
    for index, (i, meta) in enumerate(zip(kept, footers, strict=True)):
        f = snap.files[i]
        found.append(File(f.path, guarantees[i], meta, dict(f.partition), f.deletes))
        groups = (meta.row_group(rg) for rg in range(meta.num_row_groups))
        row_groups += [RowGroup(index, rg, g.num_rows, g.total_byte_size) for rg, g in enumerate(groups) if g.num_rows]
    disc = Discovery(snap.filesystem, snap.schema, list(snap.partition_names), found, row_groups)
    return disc, len(snap.files) - len(kept)


def _latest_version(source: DeltaData) -> int | None:
    """The table's latest version, from deltalake when installed (to pin Spark's reader to it)."""
    if source.version is not None or source.timestamp is not None or not has_deltalake():
        return None
    import deltalake

    try:
        return int(deltalake.DeltaTable(source.path, storage_options=source.storage_options).version())
    except Exception:  # noqa: BLE001 - Spark's reader reads what it finds; nothing to pin
        return None
