"""The data source protocol: what every kind of ``data=`` answers for itself, so that compute
contexts and the API never switch on its type."""

from __future__ import annotations

import abc
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sparkdist._checks import check_columns
from sparkdist._current import get_compute_context

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs
    from pyspark.sql import DataFrame, SparkSession

    from sparkdist.context import ComputeContext

__all__ = ["DataSource", "KeyGroup", "LocalSplit", "ReadingContext", "ValidationReport"]


class ReadingContext(Protocol):
    """What a data source asks of the compute context it is read in (every context has these)."""

    @property
    def is_distributed(self) -> bool: ...

    @property
    def task_slots(self) -> int: ...

    @property
    def spark_session(self) -> SparkSession | None: ...

    def executors_can_open(self, filesystem: pafs.FileSystem, paths: list[str]) -> tuple[bool, str]: ...


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


class LocalSplit(abc.ABC):
    """One split as read by whoever runs it (this process, a pool worker, a Spark task): picklable,
    yields pandas chunks."""

    @abc.abstractmethod
    def chunks(self) -> Iterator[pd.DataFrame]:
        """The split's rows, chunk by chunk."""


class KeyGroup(NamedTuple):
    """One exec_by group the driver planned without reading rows: its keys, the split that holds
    exactly its rows, and how many rows that is."""

    keys: tuple[Any, ...]
    split: LocalSplit
    rows: int


class DataSource(abc.ABC):
    """Base of all data sources.

    A compute context reads a source in two ways: split by split from :meth:`plan` (in-process,
    pool workers, or Spark tasks that each read their own split), or, on Spark, by mapping over
    :meth:`spark_frame` when the source is a DataFrame there. :meth:`prepare` settles how, once per
    call, for the context the call runs in.
    """

    columns: tuple[str, ...] | None
    #: On the source a job with ``output=`` returns: what it wrote (a :class:`sparkdist.WriteReport`).
    report: Any = None

    @abc.abstractmethod
    def column_names(self) -> list[str]:
        """All columns the source offers (before ``columns`` selection)."""

    @abc.abstractmethod
    def with_columns(self, columns: Sequence[str] | None) -> DataSource:
        """A copy reading only ``columns`` (validated)."""

    @abc.abstractmethod
    def arrow_schema(self) -> pa.Schema:
        """The schema of what the source offers (selected columns only), known on the driver."""

    @abc.abstractmethod
    def plan(self, slots: int) -> list[LocalSplit]:
        """The splits, to be read by whoever runs them, for ``slots`` task slots."""

    @abc.abstractmethod
    def describe(self, slots: int) -> ValidationReport:
        """What the driver knows of the source, split for ``slots`` task slots."""

    def prepare(self, context: ReadingContext) -> DataSource:
        """The source as ``context`` will read it (e.g. which Parquet reader); bad paths fail here."""
        return self

    def spark_frame(self, session: SparkSession) -> DataFrame | None:
        """A DataFrame of ``session`` whose partitions are the splits, or None: read from :meth:`plan`."""
        return None

    def shuffle_frame(self, session: SparkSession) -> DataFrame | None:
        """A DataFrame of ``session`` with the source's rows, for work that regroups them (exec_by),
        or None when the executors cannot read the source that way."""
        return self.spark_frame(session)

    def key_groups(self, keys: Sequence[str]) -> list[KeyGroup] | None:
        """The groups of ``keys`` where the layout of the data already separates them (Parquet's hive
        folders), planned without reading rows; None otherwise."""
        return None

    def readable_on(self, session: SparkSession | None) -> bool:
        """Whether the executors of ``session`` (None: a session not started yet) can process the
        source split-wise, without it passing through the driver."""
        return False

    def known_rows(self) -> int | None:
        """The number of rows, when the driver knows it without reading data (None otherwise)."""
        return None

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        """Which of ``columns`` hold no non-missing value, when the driver can tell without a job."""
        return None

    def validate(self, compute_context: ComputeContext | None = None) -> ValidationReport:
        """Check the source on the driver and describe it as ``compute_context`` (default: the current
        one) would split it; raise a DataSourceError if it cannot be read there."""
        ctx = compute_context if compute_context is not None else get_compute_context()
        return self.prepare(ctx).describe(ctx.task_slots)

    def _check_columns(self, columns: Sequence[str] | None) -> tuple[str, ...] | None:
        return None if columns is None else check_columns(columns, self.column_names(), "columns")


def frame_skew(sizes: list[int]) -> float | None:
    """Largest / median of split sizes (None without splits or with a median of 0)."""
    if not sizes:
        return None
    med = statistics.median(sizes)
    return float(max(sizes) / med) if med else None


def schema_pairs(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in schema]


def select_schema(schema: pa.Schema, columns: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([schema.field(c) for c in columns])
