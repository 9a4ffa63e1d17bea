"""Planning Parquet splits on the driver, from footers only: runs of whole row groups sized toward a
number of bytes and balanced over the task slots, and the split that whoever runs it reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkdist.errors import DataSourceError
from sparkdist.sources.base import KeyGroup, LocalSplit
from sparkdist.sources.discovery import Discovery, RowGroup

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["MIN_SPLIT_BYTES", "READAHEAD", "ParquetSplit", "all_null", "group_row_groups", "hive_groups"]

#: No split is planned below this size unless the data is that small.
MIN_SPLIT_BYTES = 1024 * 1024


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
        """Chunks of exactly ``rows_per_chunk`` rows (the last one fewer), across the split's files:
        one scan of all its pieces, so a split of many small files costs one pandas conversion per
        chunk, not one per file. Read-ahead is kept to :data:`READAHEAD` batches (and files), so a
        worker holds a few chunks' worth of data whatever the size of the split."""
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        held = 0
        try:
            for batch in self._scanner().to_batches():
                if not batch.num_rows:
                    continue
                pending.append(batch)
                held += batch.num_rows
                while held >= self.rows_per_chunk:
                    table = pa.Table.from_batches(pending)
                    yield _to_pandas(table.slice(0, self.rows_per_chunk))
                    rest = table.slice(self.rows_per_chunk)
                    pending, held = rest.to_batches(), rest.num_rows
                    del table, rest
            if held:
                yield _to_pandas(pa.Table.from_batches(pending))
        except (OSError, pa.ArrowException) as err:
            raise DataSourceError(
                f"cannot read Parquet file '{self._failing_path(err)}': {type(err).__name__}: {err}"
            ) from err

    def _scanner(self) -> Any:
        import pyarrow.dataset as pads

        fmt = pads.ParquetFileFormat()
        fragments = [
            fmt.make_fragment(path, filesystem=self.filesystem, partition_expression=pexpr, row_groups=list(ids))
            if pexpr is not None
            else fmt.make_fragment(path, filesystem=self.filesystem, row_groups=list(ids))
            for path, ids, pexpr in self.pieces
        ]
        dataset = pads.FileSystemDataset(fragments, self.schema, fmt, self.filesystem)
        return dataset.scanner(
            columns=list(self.columns) if self.columns is not None else None,
            filter=self.filter,
            batch_size=self.rows_per_chunk,
            batch_readahead=READAHEAD,
            fragment_readahead=READAHEAD,
        )

    def _failing_path(self, err: BaseException) -> str:
        """The file an Arrow error is about: named in its message, else the first whose footer fails."""
        import pyarrow as pa
        import pyarrow.dataset as pads

        for path, _, _ in self.pieces:
            if path in str(err):
                return path
        fmt = pads.ParquetFileFormat()
        for path, _, _ in self.pieces:
            try:
                fmt.make_fragment(path, filesystem=self.filesystem).ensure_complete_metadata()
            except (OSError, pa.ArrowException):
                return path
        return self.pieces[0][0] if len(self.pieces) == 1 else f"{self.pieces[0][0]}' (or another of the split's files"


#: Batches (and files) a split's scan reads ahead of the one being converted; pyarrow's defaults
#: (16 batches, 4 files) would hold up to 64 chunks at once.
READAHEAD = 1


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()
    return frame


def all_null(disc: Discovery, columns: list[str]) -> list[str]:
    """Which of ``columns`` hold only nulls, from the footers' null counts (a column without statistics
    counts as having values)."""
    nulls = {c: 0 for c in columns}
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


def hive_groups(
    disc: Discovery, keys: list[str], columns: tuple[str, ...] | None, rows_per_chunk: int
) -> list[KeyGroup]:
    """exec_by groups straight from hive folders: the files whose partition values of ``keys`` agree
    form one group (a folder missing a key's value, ``__HIVE_DEFAULT_PARTITION__``, has null there)."""
    import pyarrow.dataset as pads

    files: dict[tuple[Any, ...], list[int]] = {}
    for index, f in enumerate(disc.files):
        values = pads.get_partition_keys(f.partition_expression)
        files.setdefault(tuple(values.get(k) for k in keys), []).append(index)
    by_file: dict[int, list[RowGroup]] = {}
    for rg in disc.row_groups:
        by_file.setdefault(rg.file, []).append(rg)
    groups: list[KeyGroup] = []
    for key, members in files.items():
        pieces = tuple(
            (disc.files[i].path, tuple(rg.id for rg in by_file[i]), disc.files[i].partition_expression)
            for i in members
            if by_file.get(i)
        )
        rows = sum(rg.rows for i in members for rg in by_file.get(i, []))
        if rows:
            groups.append(
                KeyGroup(key, ParquetSplit(disc.filesystem, pieces, disc.schema, columns, None, rows_per_chunk), rows)
            )
    return groups
