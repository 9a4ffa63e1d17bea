"""Apache Iceberg tables: planned on the driver with pyiceberg (``scan(...).plan_files()`` on a pinned
snapshot, then the data files' footers), read where each split runs with pyarrow alone
(:mod:`sparkdist.sources.iceberg_read`): executors need no pyiceberg.

The snapshot is pinned the first time the source is checked or read (``validate()``, a job): every
split of a job, and every pass of an iterative PEMA algorithm, reads that snapshot even if the table
is written meanwhile. Make a new ``IcebergData`` to read later commits.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from sparkdist._checks import check_positive_int
from sparkdist.errors import ArgumentTypeError, DataSourceError, InvalidArgumentError
from sparkdist.sources.base import DataSource, LocalSplit, ReadingContext, ValidationReport, frame_skew, schema_pairs
from sparkdist.sources.filters import select_columns
from sparkdist.sources.frames import DEFAULT_ROWS_PER_CHUNK
from sparkdist.sources.iceberg_plan import (
    INSTALL,
    PlannedFile,
    check_table,
    filesystem,
    has_pyiceberg,
    load,
    name_mapping,
    plan_files,
    planned_files,
    require_pyiceberg,
    row_groups,
    small,
    snapshot_text,
    spark_catalog_check,
)
from sparkdist.sources.iceberg_read import IcebergPiece, IcebergSplit
from sparkdist.sources.paths import one_line
from sparkdist.sources.planning import group_row_groups

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["IcebergData"]

_SPLIT_BYTES = 128 * 1024 * 1024


class IcebergData(DataSource):
    """An Apache Iceberg table, read at one snapshot.

    Parameters
    ----------
    table : pyiceberg.table.Table or str
        A pyiceberg ``Table``, or its identifier (``"db.orders"``) with ``catalog``.
    snapshot_id : int, optional
        The snapshot to read (time travel); default: the table's current snapshot, pinned when the
        source is first checked or read.
    columns : list of str, optional
        Read only these columns (the table's current names).
    row_filter : str or pyiceberg BooleanExpression, optional
        pyiceberg's row filter (``"year >= 2020 and kind == 'a'"``): it prunes files by partition
        values and column statistics, and the remaining rows are filtered exactly.
    catalog : pyiceberg Catalog, str or dict, optional
        For an identifier: a pyiceberg ``Catalog``, a catalog name (pyiceberg's configuration), or
        the properties of one (``load_catalog(**properties)``).
    engine : {"auto", "arrow", "spark"}
        "arrow": splits planned with pyiceberg and read with pyarrow where they run (positional
        deletes applied there). "spark": ``spark.table`` through the session's Iceberg catalog (named
        as the pyiceberg catalog is; ``spark.sql.catalog.<name>`` must be set). "auto": "arrow" when
        pyiceberg is installed, else "spark".
    rows_per_chunk, split_bytes : int, optional
        As in :class:`ParquetData`.

    Examples
    --------
    >>> IcebergData("db.orders", catalog={"type": "sql", "uri": "sqlite:///:memory:"}).engine
    'auto'
    """

    def __init__(
        self,
        table: Any,
        *,
        snapshot_id: int | None = None,
        columns: Sequence[str] | None = None,
        row_filter: Any = None,
        catalog: Any = None,
        engine: Literal["auto", "arrow", "spark"] = "auto",
        rows_per_chunk: int | None = None,
        split_bytes: int | None = None,
    ) -> None:
        self._table = check_table(table, catalog)
        self.identifier = table if isinstance(table, str) else ".".join(table.name())
        self.catalog = catalog
        if snapshot_id is not None and (isinstance(snapshot_id, bool) or not isinstance(snapshot_id, int)):
            raise ArgumentTypeError(f"snapshot_id must be an int (a snapshot's id) or None, got {snapshot_id!r}")
        if engine not in ("auto", "arrow", "spark"):
            raise InvalidArgumentError(f"engine must be 'auto', 'arrow' or 'spark', got {engine!r}")
        if (
            row_filter is not None
            and not isinstance(row_filter, str)
            and "pyiceberg" not in type(row_filter).__module__
        ):
            raise ArgumentTypeError(
                f"row_filter must be a str or a pyiceberg BooleanExpression, got {type(row_filter).__name__}"
            )
        self.snapshot_id, self.row_filter, self.engine = snapshot_id, row_filter, engine
        self.rows_per_chunk = check_positive_int(rows_per_chunk, "rows_per_chunk") or DEFAULT_ROWS_PER_CHUNK
        self.split_bytes = check_positive_int(split_bytes, "split_bytes") or _SPLIT_BYTES
        self._pinned: tuple[int | None, Any] | None = None  # (snapshot id, pyiceberg Schema)
        self._files: tuple[Any, list[PlannedFile]] | None = None  # (pyarrow file system, planned files)
        self._spark_df: DataFrame | None = None  # engine "spark": the table as the context's session reads it
        self.columns = None
        if columns is not None:
            self.columns = tuple(columns) if engine == "spark" else self._check_columns(columns)

    @classmethod
    def from_input(cls, data: Any) -> IcebergData | None:
        """``data`` as a source when it is a pyiceberg Table (the inputs registry), else None."""
        kind = type(data)
        if kind.__module__.startswith("pyiceberg.") and hasattr(data, "scan") and hasattr(data, "metadata"):
            return cls(data)
        return None

    # -- the table, its snapshot and its files ---------------------------------------------------

    def table(self) -> Any:
        """The pyiceberg Table (loaded from the catalog once)."""
        if self._table is None:
            self._table = load(self.identifier, self.catalog)
        return self._table

    def _pin(self) -> tuple[int | None, Any]:
        if self._pinned is None:
            table = self.table()
            if self.snapshot_id is not None:
                if table.snapshot_by_id(self.snapshot_id) is None:
                    known = [s.snapshot_id for s in table.metadata.snapshots][-10:]
                    raise DataSourceError(
                        f"the Iceberg table {self.identifier!r} has no snapshot {self.snapshot_id}; its latest: {known}"
                    )
                sid: int | None = self.snapshot_id
            else:
                current = table.current_snapshot()
                sid = None if current is None else current.snapshot_id
            schema = table.scan(snapshot_id=sid).projection() if sid is not None else table.schema()
            self._pinned = (sid, schema)
        return self._pinned

    def pinned_snapshot(self) -> int | None:
        """The snapshot this source reads (None: the table has none yet, so no rows)."""
        return self._pin()[0]

    def _bound_filter(self) -> Any:
        """The row filter bound to the pinned schema (None without one)."""
        if self.row_filter is None:
            return None
        from pyiceberg.expressions import visitors
        from pyiceberg.table import _parse_row_filter

        try:
            return visitors.bind(self._pin()[1], _parse_row_filter(self.row_filter), case_sensitive=True)
        except Exception as err:  # a parse error, an unknown column, a type mismatch
            raise InvalidArgumentError(f"row_filter {self.row_filter!r} cannot be used: {one_line(err)}") from err

    def _planned(self) -> tuple[Any, list[PlannedFile]]:
        """The data files of the pinned snapshot the filter leaves, their deletes and footers."""
        if self._files is None:
            sid, _ = self._pin()
            self._bound_filter()  # a bad row filter is named here, before pyiceberg plans with it
            table = self.table()
            tasks = [] if sid is None else plan_files(table, sid, self.row_filter, self.identifier)
            fs = filesystem(table, tasks[0].file.file_path) if tasks else None
            self._files = (fs, planned_files(table, tasks, fs))
        return self._files

    # -- what the driver knows -------------------------------------------------------------------

    def column_names(self) -> list[str]:
        if self._spark_df is not None:
            return list(self._spark_df.columns)
        return [f.name for f in self._pin()[1].fields]

    def with_columns(self, columns: Sequence[str] | None) -> IcebergData:
        new = copy.copy(self)
        if columns is not None:
            new.columns = tuple(columns) if self.engine == "spark" else new._check_columns(columns)  # noqa: SLF001 - a copy of self
        return new

    def _target(self, names: Sequence[str]) -> pa.Schema:
        """The Arrow schema of ``names`` with their field ids (the types pyiceberg's reader gives)."""
        import pyarrow as pa
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        full = schema_to_pyarrow(self._pin()[1], include_field_ids=True)
        return pa.schema([small(full.field(n)) for n in names])

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        if self._spark_df is not None:
            from pyspark.sql.pandas.types import to_arrow_schema

            return to_arrow_schema(select_columns(self._spark_df, self.columns).schema)
        names = list(self.columns) if self.columns is not None else self.column_names()
        return pa.schema([f.remove_metadata() for f in self._target(names)])

    def known_rows(self) -> int | None:
        if self.row_filter is not None or any(f.deletes for f in self._planned()[1]):
            return None
        return int(sum(f.footer.num_rows for f in self._planned()[1]))

    # -- how a compute context reads it ------------------------------------------------------------

    def prepare(self, context: ReadingContext) -> IcebergData:
        """Settle the engine for ``context``; pin the snapshot and plan the files ("arrow")."""
        engine = self.engine
        if engine == "auto":
            engine = "arrow" if has_pyiceberg() or not context.is_distributed else "spark"
        if engine == "spark":
            return self._spark_copy(context)
        require_pyiceberg()
        fs, files = self._planned()
        if context.is_distributed and files:
            ok, reason = context.executors_can_open(fs, [f.path for f in files[:2]])
            if not ok:
                raise DataSourceError(
                    f"the executors cannot open the Iceberg table {self.identifier!r}'s data files with pyarrow "
                    f"({reason}); read it with engine='spark' through Spark's Iceberg catalog"
                )
        new = copy.copy(self)
        new.engine = "arrow"
        return new

    def _spark_copy(self, context: ReadingContext) -> IcebergData:
        session = context.spark_session if context.is_distributed else None
        if session is None:
            raise DataSourceError(
                f"engine='spark' reads the Iceberg table {self.identifier!r} through a Spark session's Iceberg "
                f"catalog: use a SparkComputeContext, or engine='arrow' ({INSTALL})"
            )
        spark_catalog_check(session, self._spark_name())
        new = copy.copy(self)
        new.engine = "spark"
        new._spark_df = new._read_spark(session)  # noqa: SLF001 - a copy of self
        if new.columns is not None:
            new.columns = new._check_columns(new.columns)  # noqa: SLF001 - a copy of self
        return new

    def _spark_name(self) -> str:
        """The table's name in Spark's catalog: the pyiceberg catalog's name, then the identifier."""
        catalog = self.catalog
        if self._table is not None and catalog is None:
            catalog = getattr(self._table, "catalog", None)
        name = catalog if isinstance(catalog, str) else getattr(catalog, "name", None)
        if isinstance(catalog, dict):
            name = catalog.get("name")
        return f"{name}.{self.identifier}" if name else self.identifier

    def readable_on(self, session: SparkSession | None) -> bool:
        return self.engine != "spark" or session is not None

    def spark_frame(self, session: SparkSession) -> DataFrame | None:
        """The table through Spark's Iceberg catalog (engine "spark"), else None."""
        if self._spark_df is None:
            return None
        return select_columns(self._spark_df, self.columns)

    def _read_spark(self, session: SparkSession) -> DataFrame:
        """``spark.table`` at the pinned snapshot (when pyiceberg can pin it, or one was given)."""
        if self.row_filter is not None and not isinstance(self.row_filter, str):
            raise InvalidArgumentError("engine='spark' needs row_filter as a str (a SQL condition)")
        reader = session.read
        sid = self._pin()[0] if has_pyiceberg() else self.snapshot_id
        if sid is not None:
            reader = reader.option("snapshot-id", str(sid))
        name = self._spark_name()
        try:
            df = reader.table(name)
            return df.filter(self.row_filter) if self.row_filter is not None else df
        except Exception as err:
            raise DataSourceError(f"Spark cannot read the Iceberg table {name!r}: {one_line(err)}") from err

    def plan(self, slots: int) -> list[LocalSplit]:
        """Splits of whole row groups of the planned data files, for ``slots`` task slots."""
        fs, files = self._planned()
        names = list(self.columns) if self.columns is not None else self.column_names()
        bound = self._bound_filter()
        wanted = list(names)
        arrow_filter = None
        if bound is not None:
            from pyiceberg.expressions.visitors import extract_field_ids
            from pyiceberg.io.pyarrow import expression_to_pyarrow

            schema = self._pin()[1]
            wanted += [n for n in (schema.find_column_name(i) for i in extract_field_ids(bound)) if n not in wanted]
            try:
                arrow_filter = expression_to_pyarrow(bound, schema)  # pyiceberg >= 0.11 takes the schema
            except TypeError:
                arrow_filter = expression_to_pyarrow(bound)
        target = self._target(wanted)
        mapping = name_mapping(self.table())
        splits: list[LocalSplit] = []
        for group in group_row_groups(row_groups(files), slots, self.split_bytes):
            pieces: list[IcebergPiece] = []
            for rg in group:
                f = files[rg.file]
                first = f.starts[rg.id]
                if pieces and pieces[-1].location == f.location:
                    last = pieces[-1]
                    pieces[-1] = IcebergPiece(
                        last.path, last.location, (*last.row_groups, (rg.id, first)), f.deletes, f.constants, f.filtered
                    )
                else:
                    pieces.append(
                        IcebergPiece(f.path, f.location, ((rg.id, first),), f.deletes, f.constants, f.filtered)
                    )
            splits.append(
                IcebergSplit(fs, tuple(pieces), target, tuple(names), arrow_filter, self.rows_per_chunk, mapping)
            )
        return splits

    def describe(self, slots: int) -> ValidationReport:
        if self.engine == "spark":
            return self._describe_spark()
        sid, _ = self._pin()
        _, files = self._planned()
        rgs = row_groups(files)
        sizes = [sum(rg.bytes for rg in g) for g in group_row_groups(rgs, slots, self.split_bytes)]
        deletes = {d for f in files for d in f.deletes}
        warnings = []
        if deletes or self.row_filter is not None:
            warnings.append(
                "rows counts the planned files' rows before "
                + " and ".join(
                    ([f"{len(deletes)} positional delete file(s) (applied on the executors)"] if deletes else [])
                    + ([f"the row filter {self.row_filter!r}"] if self.row_filter is not None else [])
                )
            )
        if not sizes:
            warnings.append("no rows to process" + ("" if sid is not None else ": the table has no snapshot"))
        return ValidationReport(
            source=f"Iceberg table {self.identifier} at {snapshot_text(self.table(), sid)}",
            n_splits=len(sizes),
            n_rows=sum(rg.rows for rg in rgs),
            n_bytes=sum(sizes),
            empty_splits=0,
            skew=frame_skew(sizes),
            schema=schema_pairs(self.arrow_schema()),
            files=len(files),
            warnings=warnings,
        )

    def _describe_spark(self) -> ValidationReport:
        sid = self._pin()[0] if has_pyiceberg() else self.snapshot_id
        at = f"snapshot {sid}" if sid is not None else "Spark's current snapshot at each read (pyiceberg not installed)"
        return ValidationReport(
            source=f"Iceberg table {self._spark_name()} at {at} (Spark's Iceberg catalog)",
            n_splits=None,
            n_rows=None,
            n_bytes=None,
            empty_splits=None,
            skew=None,
            schema=[],
            warnings=["Spark reads the table (engine='spark'): its partitions are the splits"],
        )

    def __repr__(self) -> str:
        return f"IcebergData({self.identifier!r}, snapshot_id={self.snapshot_id}, columns={self.columns}, engine={self.engine!r})"
