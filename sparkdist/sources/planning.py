"""Planning Parquet splits on the driver, from footers only: runs of whole row groups sized toward a
number of bytes and balanced over the task slots, pruned by the filters and the footers' statistics
(ParquetData and DeltaData plan alike; :mod:`sparkdist.sources.reading` reads the splits)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sparkdist import _compat_libs
from sparkdist.sources.base import KeyGroup, LocalSplit, ValidationReport, frame_skew, schema_pairs
from sparkdist.sources.discovery import Discovery, File, RowGroup
from sparkdist.sources.reading import ParquetSplit, Piece

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from sparkdist.sources.delta_files import ColumnMapping
    from sparkdist.sources.filters import Filters

__all__ = [
    "MIN_SPLIT_BYTES",
    "all_null",
    "by_file",
    "group_row_groups",
    "hive_groups",
    "plan_report",
    "planned_frame",
    "plan_splits",
    "prune_row_groups",
    "unplanned_report",
]

#: No split is planned below this size unless the data is that small.
MIN_SPLIT_BYTES = 1024 * 1024


def all_null(disc: Discovery, columns: list[str], physical: dict[str, str] | None = None) -> list[str]:
    """Which of ``columns`` hold only nulls, from the footers' null counts (a column without statistics
    counts as having values); ``physical``: the name each column has in the files, where it differs."""
    physical = physical or {}
    nulls = {physical.get(c, c): 0 for c in columns}
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
    return [c for c in columns if rows and nulls[physical.get(c, c)] == rows]


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


def by_file(rgs: Sequence[RowGroup]) -> dict[int, list[RowGroup]]:
    """Row groups by the index of their file."""
    found: dict[int, list[RowGroup]] = {}
    for rg in rgs:
        found.setdefault(rg.file, []).append(rg)
    return found


def prune_row_groups(
    disc: Discovery, expression: Any, rgs: Sequence[RowGroup], on_error: Callable[[File, Exception], bool]
) -> list[RowGroup]:
    """The row groups of ``rgs`` whose footer statistics do not rule ``expression`` out (pyarrow's
    reading of the statistics); a file whose statistics cannot be read so keeps its row groups when
    ``on_error`` returns True (else it raises)."""
    import pyarrow.dataset as pads

    fmt = pads.ParquetFileFormat()
    keep: list[RowGroup] = []
    for index, found in by_file(rgs).items():
        f = disc.files[index]
        frag = fmt.make_fragment(f.path, filesystem=disc.filesystem, partition_expression=f.partition_expression)
        try:
            kept = {piece.row_groups[0].id for piece in frag.split_by_row_group(filter=expression, schema=disc.schema)}
        except Exception as err:
            if not on_error(f, err):
                raise
            kept = {rg.id for rg in found}
        keep += [rg for rg in found if rg.id in kept]
    return keep


def plan_splits(
    disc: Discovery,
    rgs: list[RowGroup],
    slots: int,
    split_bytes: int,
    *,
    columns: tuple[str, ...] | None,
    filters: Filters | None,
    rows_per_chunk: int,
    mapping: ColumnMapping | None = None,
) -> list[LocalSplit]:
    """Splits of the row groups ``rgs`` for ``slots`` task slots (runs of whole row groups, each
    file's partition values and deletion vector with it)."""
    arrow_filter = None if filters is None else filters.to_arrow()
    filter_columns = tuple(filters.columns) if filters is not None and filters.disjuncts else None
    values = _SharedValues()
    splits: list[LocalSplit] = []
    for group in group_row_groups(rgs, slots, split_bytes):
        pieces: list[Piece] = []
        for rg in group:
            f = disc.files[rg.file]
            if pieces and pieces[-1].path == f.path:
                pieces[-1] = pieces[-1]._replace(row_groups=(*pieces[-1].row_groups, rg.id))
            else:
                pieces.append(Piece(f.path, (rg.id,), values(f), f.deletes))
        splits.append(
            ParquetSplit(
                disc.filesystem,
                tuple(pieces),
                disc.schema,
                columns,
                arrow_filter,
                rows_per_chunk,
                filter_columns,
                mapping,
            )
        )
    return splits


class _SharedValues:
    """A file's partition values as its split carries them: None for none, else one dict per distinct
    set of values, so that pickling a split of many files of one folder writes it once."""

    def __init__(self) -> None:
        self._seen: dict[Any, dict[str, Any] | None] = {}

    def __call__(self, f: File) -> dict[str, Any] | None:
        if f.partition_values is not None:
            key: Any = tuple(sorted((k, repr(v)) for k, v in f.partition_values.items()))
            return self._seen.setdefault(key, f.partition_values or None)
        key = str(f.partition_expression)
        if key not in self._seen:
            self._seen[key] = None if key == "true" else _compat_libs.partition_keys(f.partition_expression)
        return self._seen[key]


def hive_groups(
    disc: Discovery,
    keys: list[str],
    columns: tuple[str, ...] | None,
    rows_per_chunk: int,
    mapping: ColumnMapping | None = None,
) -> list[KeyGroup]:
    """exec_by groups straight from the partition folders: the files whose partition values of
    ``keys`` agree form one group (a folder missing a key's value, ``__HIVE_DEFAULT_PARTITION__``,
    has null there). Rows are counted from footers, less the rows deletion vectors delete."""
    values = _SharedValues()
    files: dict[tuple[Any, ...], list[int]] = {}
    for index, f in enumerate(disc.files):
        found = values(f) or {}
        files.setdefault(tuple(found.get(k) for k in keys), []).append(index)
    rgs = by_file(disc.row_groups)
    groups: list[KeyGroup] = []
    for key, members in files.items():
        pieces = tuple(
            Piece(disc.files[i].path, tuple(rg.id for rg in rgs[i]), values(disc.files[i]), disc.files[i].deletes)
            for i in members
            if rgs.get(i)
        )
        rows = sum(rg.rows for i in members for rg in rgs.get(i, [])) - sum(
            disc.files[i].deleted for i in members if rgs.get(i)
        )
        if rows:
            split = ParquetSplit(disc.filesystem, pieces, disc.schema, columns, None, rows_per_chunk, None, mapping)
            groups.append(KeyGroup(key, split, rows))
    return groups


def plan_report(
    source: str,
    disc: Discovery,
    rgs: list[RowGroup],
    slots: int,
    split_bytes: int,
    schema: pa.Schema,
    warnings: list[str],
    filtered: bool,
) -> ValidationReport:
    """What :meth:`DataSource.validate` says of planned splits (rows less those deletion vectors delete)."""
    groups = group_row_groups(rgs, slots, split_bytes)
    sizes = [sum(rg.bytes for rg in g) for g in groups]
    warnings = list(warnings)
    if 0 < len(groups) < slots:
        warnings.append(
            f"fewer splits than task slots ({len(groups)} < {slots}): the data has only {len(rgs)} row group(s); "
            "write it with smaller row groups or more files to use every slot"
        )
    if not groups:
        warnings.append("no rows to process" + (" after filters" if filtered else ""))
    deleted = sum(f.deleted for f in disc.files)
    return ValidationReport(
        source=source,
        n_splits=len(groups),
        n_rows=sum(rg.rows for rg in rgs) - deleted,
        n_bytes=sum(sizes),
        empty_splits=0,
        skew=frame_skew(sizes),
        schema=schema_pairs(schema),
        files=len(disc.files),
        warnings=warnings,
    )


def unplanned_report(source: str, schema: pa.Schema, warning: str) -> ValidationReport:
    """The report of a source that Spark's reader reads (its partitions are the splits)."""
    return ValidationReport(
        source=source, n_splits=None, n_rows=None, n_bytes=None, empty_splits=None, skew=None,
        schema=schema_pairs(schema), warnings=[warning],
    )  # fmt: skip


def planned_frame(session: SparkSession, splits: list[ParquetSplit], schema: pa.Schema) -> DataFrame:
    """Planned splits as a DataFrame of ``session`` whose task i reads split i with pyarrow (DataFrame
    operations only), for work that regroups rows (exec_by by columns the layout does not separate)."""
    import functools

    from pyspark.sql.pandas.types import from_arrow_schema

    from sparkdist import _serde
    from sparkdist.sources.reading import read_planned_splits

    n = max(1, len(splits))
    read = functools.partial(read_planned_splits, _serde.dumps(splits))
    return session.range(0, len(splits), 1, numPartitions=n).mapInArrow(read, from_arrow_schema(schema))
