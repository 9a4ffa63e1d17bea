"""In-memory and Spark DataFrames as data sources."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sparkdist import _compat
from sparkdist._current import get_compute_context
from sparkdist.errors import ArgumentTypeError, DataNotFoundError, DataSourceError, InvalidArgumentError
from sparkdist.sources.base import DataSource, LocalSplit, ReadingContext, ValidationReport, frame_skew, schema_pairs
from sparkdist.sources.filters import select_columns
from sparkdist.sources.paths import one_line

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "DEFAULT_ROWS_PER_CHUNK",
    "TABLE_NAME",
    "FrameSplit",
    "PandasData",
    "SparkData",
    "check_table_name",
    "frame_splits",
    "read_table",
]

#: Rows per chunk handed to a ``chunked=True`` function (and per Arrow batch read from Parquet).
DEFAULT_ROWS_PER_CHUNK = 65_536


@dataclass(frozen=True)
class FrameSplit(LocalSplit):
    """Consecutive rows of a pandas DataFrame. Chunks are copies, so a function that changes its
    chunk in place never changes the caller's DataFrame."""

    frame: pd.DataFrame
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK

    def chunks(self) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.frame), self.rows_per_chunk):
            yield self.frame.iloc[start : start + self.rows_per_chunk].copy()


def frame_splits(frame: pd.DataFrame, n: int) -> list[LocalSplit]:
    """Contiguous, nearly equal pieces; none when the frame is empty."""
    rows = len(frame)
    n = max(1, min(n, rows))
    bounds = [rows * i // n for i in range(n + 1)]
    return [FrameSplit(frame.iloc[bounds[i] : bounds[i + 1]]) for i in range(n) if bounds[i + 1] > bounds[i]]


class PandasData(DataSource):
    """An in-memory pandas DataFrame (internal; pass the DataFrame itself as ``data``)."""

    def __init__(self, frame: pd.DataFrame, *, columns: Sequence[str] | None = None) -> None:
        self.frame = frame
        self.columns = self._check_columns(columns)

    @classmethod
    def from_input(cls, data: Any) -> PandasData | None:
        """``data`` as a source when it is a pandas DataFrame (the inputs registry), else None."""
        import pandas as pd

        return cls(data) if isinstance(data, pd.DataFrame) else None

    def column_names(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def with_columns(self, columns: Sequence[str] | None) -> PandasData:
        return PandasData(self.frame, columns=columns if columns is not None else self.columns)

    def selected(self) -> pd.DataFrame:
        if self.columns is None:
            return self.frame
        by_name = {str(c): c for c in self.frame.columns}  # column labels need not be str
        return cast("pd.DataFrame", self.frame[[by_name[c] for c in self.columns]])

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.Schema.from_pandas(self.selected(), preserve_index=False)

    def known_rows(self) -> int | None:
        return len(self.frame)

    def all_null_columns(self, columns: Sequence[str]) -> list[str] | None:
        by_name = {str(c): c for c in self.frame.columns}
        return [c for c in columns if not self.frame[by_name[c]].notna().any()]

    def plan(self, slots: int) -> list[LocalSplit]:
        return frame_splits(self.selected(), slots)

    def describe(self, slots: int) -> ValidationReport:
        splits = self.plan(slots)
        sizes = [len(s.frame) for s in splits if isinstance(s, FrameSplit)]
        return ValidationReport(
            source=f"pandas DataFrame ({len(self.frame):,} rows)",
            n_splits=len(splits),
            n_rows=len(self.frame),
            n_bytes=int(self.selected().memory_usage(deep=False).sum()),
            empty_splits=0,
            skew=frame_skew(sizes),
            schema=schema_pairs(self.arrow_schema()),
        )

    def __repr__(self) -> str:
        return f"PandasData({len(self.frame)} rows, columns={self.columns})"


class SparkData(DataSource):
    """A pyspark DataFrame (classic or Spark Connect), or a table of the Spark catalog by name: each
    partition is one split.

    Parameters
    ----------
    df : pyspark.sql.DataFrame or str
        The data. It is never collected to the driver in a Spark compute context. A str names a
        table (``"sales"``, ``"db.sales"``, ``"main.sales.orders"``), read as ``spark.table(name)``
        in the session of the compute context the source is used in (in a local context: the active
        SparkSession's, brought to this process).
    columns : list of str, optional
        Read only these columns.

    Examples
    --------
    >>> SparkData("main.sales.orders").table
    'main.sales.orders'
    """

    def __init__(self, df: DataFrame | str, *, columns: Sequence[str] | None = None) -> None:
        self.table: str | None = None
        self._df: DataFrame | None = None
        if isinstance(df, str):
            self.table = check_table_name(df)
            self.columns = None if columns is None else tuple(columns)  # checked once the table is read
            return
        if not _compat.is_spark_dataframe(df):
            raise ArgumentTypeError(
                f"SparkData expects a pyspark DataFrame or a table name (str) as df, got {type(df).__name__}"
            )
        self._df = df
        self.columns = self._check_columns(columns)

    @property
    def df(self) -> DataFrame:
        """The DataFrame (a named table is read in the current compute context's session)."""
        if self._df is None:
            assert self.table is not None
            self._df = read_table(_table_session(get_compute_context(), self.table), self.table)
        return self._df

    @classmethod
    def from_input(cls, data: Any) -> SparkData | None:
        """``data`` as a source when it is a pyspark DataFrame, classic or Connect (the inputs
        registry), else None."""
        return cls(data) if _compat.is_spark_dataframe(data) else None

    def column_names(self) -> list[str]:
        return list(self.df.columns)

    def with_columns(self, columns: Sequence[str] | None) -> SparkData:
        if self._df is None:
            assert self.table is not None
            return SparkData(self.table, columns=columns if columns is not None else self.columns)
        new = SparkData(self._df, columns=columns if columns is not None else self.columns)
        new.table = self.table
        return new

    def frame(self) -> DataFrame:
        """The DataFrame with the selected columns (names quoted: dots and spaces are kept as they are)."""
        return select_columns(self.df, self.columns)

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema

        return pa.schema([]) if self.columns == () else to_arrow_schema(self.frame().schema)

    def prepare(self, context: ReadingContext) -> SparkData:
        if self._df is None:  # a table name: read in the context's session
            assert self.table is not None
            read = SparkData(read_table(_table_session(context, self.table), self.table), columns=self.columns)
            read.table = self.table  # named in reports
            return read.prepare(context)
        if _compat.is_stopped(_compat.session_of(self.df)):
            raise DataSourceError(
                "the Spark DataFrame passed as data belongs to a SparkSession that has been stopped; "
                "create it again from a running session (or pass it as a pandas DataFrame)"
            )
        return self

    def readable_on(self, session: SparkSession | None) -> bool:
        return session is not None and _same_session(_compat.session_of(self.df), session)

    def spark_frame(self, session: SparkSession) -> DataFrame:
        if not self.readable_on(session):
            raise DataSourceError(
                "the DataFrame belongs to another SparkSession than the compute context's; "
                "create it from the context's session, or pass compute_context for its session"
            )
        return self.frame()

    def plan(self, slots: int) -> list[LocalSplit]:
        # A local context processes a Spark DataFrame in this process: bring it over once.
        return frame_splits(self.frame().toPandas(), slots)

    def describe(self, slots: int) -> ValidationReport:
        df = self.frame()
        n_splits = _compat.known_partitions(df)
        warnings = []
        if n_splits is not None and n_splits < slots:
            warnings.append(f"fewer splits than task slots ({n_splits} < {slots}): consider df.repartition({slots})")
        kind = "Spark Connect" if _compat.is_connect(df) else "classic"
        return ValidationReport(
            source=f"Spark table '{self.table}' ({kind})" if self.table else f"Spark DataFrame ({kind})",
            n_splits=n_splits,
            n_rows=None,
            n_bytes=None,
            empty_splits=None,
            skew=None,
            schema=[(f.name, f.dataType.simpleString()) for f in df.schema.fields],
            warnings=warnings,
        )

    def __repr__(self) -> str:
        return (
            f"SparkData({self.table!r}, columns={self.columns})" if self.table else f"SparkData(columns={self.columns})"
        )


#: A table name as Spark's catalog takes it: up to four dot-separated parts (catalog.schema.table, or a
#: nested namespace), each a plain identifier or a backtick-quoted one.
_NAME_PART = r"(?:[A-Za-z0-9_$]+|`(?:[^`]|``)+`)"
TABLE_NAME = re.compile(rf"^{_NAME_PART}(?:\.{_NAME_PART}){{0,3}}$")


def check_table_name(name: str) -> str:
    """``name`` when it has the form of a table name, else InvalidArgumentError."""
    if not TABLE_NAME.match(name):
        raise InvalidArgumentError(
            f"SparkData expects a table name such as 'sales', 'db.sales' or 'main.sales.orders' (backticks around "
            f"parts with other characters), got {name!r}"
        )
    return name


def _table_session(context: ReadingContext, name: str) -> SparkSession:
    """The session a named table is read in: the Spark context's, else the active SparkSession."""
    session = context.spark_session if context.is_distributed else _compat.active_session()
    if session is None:
        raise DataSourceError(
            f"SparkData({name!r}) names a table of a Spark catalog: use it in a SparkComputeContext (or with an "
            "active SparkSession, whose table is brought to this process)"
        )
    return session


def read_table(session: SparkSession, name: str) -> DataFrame:
    """``spark.table(name)``; DataNotFoundError naming the table when the catalog has none such."""
    try:
        df = session.table(name)
        df.schema  # noqa: B018 - Spark Connect resolves the name only when asked: a missing table fails here
        return df
    except Exception as err:  # AnalysisException (classic or Connect): TABLE_OR_VIEW_NOT_FOUND, a bad name...
        raise DataNotFoundError(
            f"cannot read the table {name!r} with spark.table() in the session's catalog: {one_line(err)}"
        ) from err


def _same_session(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if _compat.is_connect(a) and _compat.is_connect(b):
        return bool(getattr(a, "session_id", None) == getattr(b, "session_id", 1))
    return False
