"""Arrow and polars inputs: a ``pyarrow.Table``, a ``RecordBatchReader`` (read once, on the driver),
a ``pyarrow.dataset.Dataset`` and a polars ``DataFrame`` / ``LazyFrame`` (collected on the driver).

A Parquet ``FileSystemDataset`` is planned as ParquetData plans its files -- whole row groups from
the footers, on the dataset's own file system, with its partitioning and its filter -- and each
split is read where it runs. Any other dataset is read into a table on the driver.

>>> import pyarrow as pa
>>> from_input(pa.table({"x": [1, 2, 3]})).validate().n_rows
3
"""

from __future__ import annotations

import concurrent.futures
import copy
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist import _compat_libs
from sparkdist._checks import check_positive_int
from sparkdist.errors import DataSourceError
from sparkdist.sources.base import (
    DataSource,
    KeyGroup,
    LocalSplit,
    ReadingContext,
    ValidationReport,
    frame_skew,
    schema_pairs,
    select_schema,
)
from sparkdist.sources.discovery import Discovery, File, RowGroup
from sparkdist.sources.frames import DEFAULT_ROWS_PER_CHUNK
from sparkdist.sources.planning import all_null, group_row_groups, hive_groups
from sparkdist.sources.reading import ParquetSplit, Piece

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads

__all__ = ["ArrowData", "ArrowDatasetData", "ArrowSplit", "from_input"]

log = logging.getLogger("sparkdist")

#: Upper bound of a planned split of a Parquet dataset (as ParquetData's default).
_SPLIT_BYTES = 128 * 1024 * 1024


def from_input(data: Any) -> DataSource | None:
    """``data`` as a source when it is a pyarrow Table, RecordBatchReader or Dataset, or a polars
    DataFrame or LazyFrame (the inputs registry), else None. polars is imported only for its frames."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if isinstance(data, pa.Table):
        return ArrowData(data)
    if isinstance(data, pa.RecordBatchReader):
        return ArrowData(data.read_all())  # a stream is read once: every pass needs the rows again
    if isinstance(data, pads.Dataset):
        return ArrowDatasetData.from_dataset(data)
    kind = type(data)
    if kind.__module__.split(".")[0] == "polars" and kind.__name__ in ("DataFrame", "LazyFrame"):
        return ArrowData(_polars_table(data))
    return None


def _polars_table(frame: Any) -> pa.Table:
    import polars as pl

    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    # the oldest Arrow layout (large_string, no string_view): what every pyarrow on the executors reads
    table: pa.Table = collected.to_arrow(compat_level=pl.CompatLevel.oldest())
    return table


@dataclass(frozen=True)
class ArrowSplit(LocalSplit):
    """Consecutive rows of an Arrow table; pickled as an IPC stream of just those rows (a pickled
    slice would carry the whole table's buffers)."""

    table: pa.Table
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK

    def chunks(self) -> Iterator[pd.DataFrame]:
        for start in range(0, self.table.num_rows, self.rows_per_chunk):
            yield self.table.slice(start, self.rows_per_chunk).to_pandas()

    def __reduce__(self) -> tuple[Any, tuple[bytes, int]]:
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return _split_from_ipc, (sink.getvalue().to_pybytes(), self.rows_per_chunk)


def _split_from_ipc(data: bytes, rows_per_chunk: int) -> ArrowSplit:
    import pyarrow as pa

    return ArrowSplit(pa.ipc.open_stream(data).read_all(), rows_per_chunk)


class ArrowData(DataSource):
    """An in-memory Arrow table (internal; pass the table, reader or polars frame itself as ``data``).
    Its splits are contiguous runs of rows, shipped with the task as pandas frames are."""

    def __init__(self, table: pa.Table, *, columns: Sequence[str] | None = None) -> None:
        self.table = table
        self.columns = self._check_columns(columns)

    def column_names(self) -> list[str]:
        return list(self.table.column_names)

    def with_columns(self, columns: Sequence[str] | None) -> ArrowData:
        return ArrowData(self.table, columns=columns if columns is not None else self.columns)

    def selected(self) -> pa.Table:
        return self.table if self.columns is None else self.table.select(list(self.columns))

    def arrow_schema(self) -> pa.Schema:
        return self.selected().schema

    def known_rows(self) -> int | None:
        return int(self.table.num_rows)

    def all_null_columns(self, columns: Sequence[str]) -> list[str]:
        return [c for c in columns if self.table.column(c).null_count == self.table.num_rows]

    def plan(self, slots: int) -> list[LocalSplit]:
        table, rows = self.selected(), self.table.num_rows
        n = max(1, min(slots, rows))
        bounds = [rows * i // n for i in range(n + 1)]
        return [ArrowSplit(table.slice(a, b - a)) for a, b in itertools.pairwise(bounds) if b > a]

    def describe(self, slots: int) -> ValidationReport:
        splits = self.plan(slots)
        return ValidationReport(
            source=f"Arrow table ({self.table.num_rows:,} rows)",
            n_splits=len(splits),
            n_rows=int(self.table.num_rows),
            n_bytes=int(self.selected().nbytes),
            empty_splits=0,
            skew=frame_skew([s.table.num_rows for s in splits if isinstance(s, ArrowSplit)]),
            schema=schema_pairs(self.arrow_schema()),
        )

    def __repr__(self) -> str:
        return f"ArrowData({self.table.num_rows} rows, columns={self.columns})"


class ArrowDatasetData(DataSource):
    """A Parquet ``pyarrow.dataset.FileSystemDataset``: splits are runs of whole row groups planned
    from the footers (as ParquetData plans them), read on the dataset's file system with its
    partition values; its filter (``dataset.filter(...)``) skips row groups by their statistics and
    filters the rows. Where the executors cannot open its files, the driver reads it into a table."""

    def __init__(self, discovery: Discovery, filter: Any, *, columns: Sequence[str] | None = None) -> None:
        self.discovery, self.filter = discovery, filter
        self.rows_per_chunk, self.split_bytes = DEFAULT_ROWS_PER_CHUNK, _SPLIT_BYTES
        self.columns = self._check_columns(columns)

    @classmethod
    def from_dataset(cls, dataset: pads.Dataset, *, rows_per_chunk: int | None = None) -> DataSource:
        """The dataset planned from its footers when it is a Parquet FileSystemDataset, else read
        into a table on the driver (filter applied)."""
        import pyarrow.dataset as pads

        fragments, expression = _fragments_and_filter(dataset)
        if not isinstance(dataset, pads.FileSystemDataset) or fragments is None:
            return ArrowData(dataset.to_table())
        if not isinstance(dataset.format, pads.ParquetFileFormat):
            return ArrowData(dataset.to_table())
        new = cls(_discovery(dataset, fragments), expression)
        new.rows_per_chunk = check_positive_int(rows_per_chunk, "rows_per_chunk") or DEFAULT_ROWS_PER_CHUNK
        return new

    def column_names(self) -> list[str]:
        return list(self.discovery.schema.names)

    def with_columns(self, columns: Sequence[str] | None) -> ArrowDatasetData:
        new = copy.copy(self)
        new.columns = new._check_columns(columns) if columns is not None else self.columns  # noqa: SLF001 - a copy of self
        return new

    def arrow_schema(self) -> pa.Schema:
        schema = self.discovery.schema
        return schema if self.columns is None else select_schema(schema, self.columns)

    def known_rows(self) -> int | None:
        return None if self.filter is not None else sum(rg.rows for rg in self.discovery.row_groups)

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        if self.filter is not None:
            return None
        return all_null(self.discovery, [c for c in columns if c not in self.discovery.partition_names])

    def prepare(self, context: ReadingContext) -> DataSource:
        """In a Spark context the executors read the files when they can open them; else the driver
        reads the dataset into a table (saying why)."""
        if not context.is_distributed or not self.discovery.files:
            return self
        paths = [f.path for f in self.discovery.files[:2]]
        ok, reason = context.executors_can_open(self.discovery.filesystem, paths)
        if ok:
            return self
        log.warning("sparkdist: the executors cannot open the dataset's files (%s): the driver reads it", reason)
        return ArrowData(self._to_table(), columns=self.columns)

    def _to_table(self) -> pa.Table:
        import pyarrow.dataset as pads

        disc = self.discovery
        dataset = pads.FileSystemDataset.from_paths(
            [f.path for f in disc.files],
            schema=disc.schema,
            format=pads.ParquetFileFormat(),
            filesystem=disc.filesystem,
            partitions=[f.partition_expression for f in disc.files],
        )
        return dataset.to_table(filter=self.filter)

    def readable_on(self, session: Any) -> bool:
        return True

    def key_groups(self, keys: Sequence[str]) -> list[KeyGroup] | None:
        """One group per value of ``keys`` when they are the dataset's partition columns (no filter)."""
        if self.filter is not None or not keys or not set(keys) <= set(self.discovery.partition_names):
            return None
        return hive_groups(self.discovery, list(keys), self.columns, self.rows_per_chunk)

    def plan(self, slots: int) -> list[LocalSplit]:
        disc = self.discovery
        splits: list[LocalSplit] = []
        for group in group_row_groups(self._pruned(), slots, self.split_bytes):
            pieces: list[Piece] = []
            for rg in group:
                f = disc.files[rg.file]
                if pieces and pieces[-1].path == f.path:
                    pieces[-1] = pieces[-1]._replace(row_groups=(*pieces[-1].row_groups, rg.id))
                else:
                    pieces.append(Piece(f.path, (rg.id,), _partition_values(f.partition_expression)))
            splits.append(
                ParquetSplit(
                    disc.filesystem, tuple(pieces), disc.schema, self.columns, self.filter, self.rows_per_chunk
                )
            )
        return splits

    def _pruned(self) -> list[RowGroup]:
        """The row groups whose statistics do not rule the dataset's filter out."""
        disc = self.discovery
        if self.filter is None:
            return disc.row_groups
        import pyarrow.dataset as pads

        fmt = pads.ParquetFileFormat()
        keep: dict[int, set[int]] = {}
        for index, f in enumerate(disc.files):
            frag = fmt.make_fragment(f.path, filesystem=disc.filesystem, partition_expression=f.partition_expression)
            try:
                pieces = frag.split_by_row_group(filter=self.filter, schema=disc.schema)
            except Exception as err:
                raise DataSourceError(
                    f"the dataset's filter {self.filter} cannot be applied to '{f.path}': {err}"
                ) from err
            keep[index] = {piece.row_groups[0].id for piece in pieces}
        return [rg for rg in disc.row_groups if rg.id in keep[rg.file]]

    def describe(self, slots: int) -> ValidationReport:
        rgs = self._pruned()
        sizes = [sum(rg.bytes for rg in g) for g in group_row_groups(rgs, slots, self.split_bytes)]
        warnings = [] if sizes else ["no rows to process" + (" after the dataset's filter" if self.filter else "")]
        return ValidationReport(
            source=f"pyarrow Parquet dataset ({len(self.discovery.files)} files"
            + (f", filter {self.filter})" if self.filter is not None else ")"),
            n_splits=len(sizes),
            n_rows=sum(rg.rows for rg in rgs),
            n_bytes=sum(sizes),
            empty_splits=0,
            skew=frame_skew(sizes),
            schema=schema_pairs(self.arrow_schema()),
            files=len(self.discovery.files),
            warnings=warnings + list(self.discovery.warnings),
        )

    def __repr__(self) -> str:
        return f"ArrowDatasetData({len(self.discovery.files)} files, columns={self.columns}, filter={self.filter})"


def _fragments_and_filter(dataset: pads.Dataset) -> tuple[list[Any] | None, Any]:
    """The dataset's fragments and the filter given with ``dataset.filter(...)`` (None: none).
    pyarrow keeps that filter in the dataset's scan options and refuses ``get_fragments()`` on a
    filtered dataset; it has no public accessor for either, so they are read where pyarrow keeps
    them, and a pyarrow that keeps them elsewhere gets the dataset read as a table."""
    options = getattr(dataset, "_scan_options", None) or {}
    expression = options.get("filter") if isinstance(options, dict) else None
    if expression is None:
        try:
            return list(dataset.get_fragments()), None
        except (ValueError, NotImplementedError):
            return None, None
    unfiltered = getattr(dataset, "_get_fragments", None)
    if unfiltered is None:
        return None, None
    return list(unfiltered(None)), expression


def _discovery(dataset: pads.FileSystemDataset, fragments: list[Any]) -> Discovery:
    """What the driver knows of the dataset, as ParquetData's discovery tells it: files with their
    partition expressions and footers (read in parallel), and their row groups."""
    partitioning = getattr(dataset, "partitioning", None)
    partition_names = list(partitioning.schema.names) if partitioning is not None else []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(16, len(fragments)))) as pool:
        footers = list(pool.map(_footer, fragments))
    files: list[File] = []
    row_groups: list[RowGroup] = []
    empty: list[str] = []
    for i, (fragment, meta) in enumerate(zip(fragments, footers, strict=True)):
        files.append(File(fragment.path, fragment.partition_expression, meta))
        kept = [
            RowGroup(i, rg, meta.row_group(rg).num_rows, meta.row_group(rg).total_byte_size)
            for rg in range(meta.num_row_groups)
            if meta.row_group(rg).num_rows > 0
        ]
        row_groups += kept
        if not kept:
            empty.append(fragment.path)
    return Discovery(dataset.filesystem, dataset.schema, partition_names, files, row_groups, empty)


def _footer(fragment: Any) -> Any:
    try:
        return fragment.metadata
    except (OSError, ValueError) as err:  # unreadable, or not Parquet (ArrowInvalid)
        raise DataSourceError(f"cannot read the footer of the dataset's file '{fragment.path}': {err}") from err


def _partition_values(expression: Any) -> dict[str, Any] | None:
    """A file's partition values (column -> value) from its partition expression, None for none."""
    return None if str(expression) == "true" else _compat_libs.partition_keys(expression)
