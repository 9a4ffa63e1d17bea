"""Data sources: what ``data=`` can be, how it is split, and how it is validated.

``data`` may be a :class:`DataSource`, a pyspark DataFrame (classic or Connect), a pandas
DataFrame, a pyarrow Table / RecordBatchReader / Dataset, a polars DataFrame / LazyFrame, a pyiceberg
Table, a table name of the Spark session's catalog, or a path (``str`` / ``os.PathLike``, or a list
of them) naming Parquet data.

- ``base``: the DataSource protocol every kind answers for itself (``prepare``, ``plan``,
  ``spark_frame``, ``describe``);
- ``frames``: pandas and Spark DataFrames (and Spark tables by name); ``parquet``: Parquet data,
  planned from footers; ``delta``: Delta Lake tables, a pinned snapshot planned as Parquet data (``delta_log``,
  ``delta_stats``, ``delta_files``: its log, file skipping, and what its splits carry);
- ``planning``: splits from footers, on the driver; ``reading``: a split read by whoever runs it;
  ``roaring``: deletion vectors' bitmaps;
- ``arrow``: Arrow tables, readers, datasets and polars frames; ``iceberg``:
  Iceberg tables through pyiceberg, read by ``iceberg_read`` on the executors; ``tables``: a name that
  is a path or a table, settled for the compute context;
- ``discovery``: finding Parquet files and their schema with pyarrow.dataset; ``paths``: local
  paths, URIs and globs; ``filters``: one parser of row filters for Arrow and Spark.

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

from collections.abc import Callable, Sequence
from typing import Any

from sparkdist.errors import ArgumentTypeError
from sparkdist.sources import arrow
from sparkdist.sources.base import DataSource, KeyGroup, LocalSplit, ValidationReport
from sparkdist.sources.delta import DeltaData
from sparkdist.sources.frames import FrameSplit, PandasData, SparkData
from sparkdist.sources.iceberg import IcebergData
from sparkdist.sources.parquet import ParquetData
from sparkdist.sources.tables import NamedData

__all__ = [
    "DataSource",
    "DeltaData",
    "FrameSplit",
    "IcebergData",
    "KeyGroup",
    "LocalSplit",
    "PandasData",
    "ParquetData",
    "SparkData",
    "ValidationReport",
    "as_data_source",
]


#: The one registry of inputs: each entry turns what it recognises into a DataSource and returns None
#: for anything else; the first that answers wins. A new kind of input is a module in ``sources/``
#: with its own ``from_input`` and one line here.
INPUTS: tuple[Callable[[Any], DataSource | None], ...] = (
    lambda data: data if isinstance(data, DataSource) else None,
    SparkData.from_input,
    PandasData.from_input,
    DeltaData.from_input,
    arrow.from_input,  # pyarrow Table / RecordBatchReader / Dataset, polars DataFrame / LazyFrame
    IcebergData.from_input,  # a pyiceberg Table
    NamedData.from_input,  # a table name that is not an existing path
    ParquetData.from_input,
)


def as_data_source(data: Any, *, columns: Sequence[str] | None = None) -> DataSource:
    """Turn anything accepted as ``data`` into a DataSource (columns checked when given).

    >>> import pandas as pd
    >>> as_data_source(pd.DataFrame({"a": [1]})).column_names()
    ['a']
    """
    for make in INPUTS:
        source = make(data)
        if source is not None:
            break
    else:
        raise ArgumentTypeError(
            f"data must be a sparkdist DataSource, a pyspark DataFrame, a pandas DataFrame, a pyarrow Table / "
            f"RecordBatchReader / Dataset, a polars DataFrame / LazyFrame, a pyiceberg Table, a table name, or a path "
            f"to Parquet data (str / os.PathLike / list of them); got {type(data).__module__}.{type(data).__name__}"
        )
    return source.with_columns(columns) if columns is not None else source
