"""Data sources: what ``data=`` can be, how it is split, and how it is validated.

``data`` may be a :class:`DataSource`, a pyspark DataFrame (classic or Connect), a pandas
DataFrame, or a path (``str`` / ``os.PathLike``, or a list of them) naming Parquet data.

- ``base``: the DataSource protocol every kind answers for itself (``prepare``, ``plan``,
  ``spark_frame``, ``describe``);
- ``frames``: pandas and Spark DataFrames; ``parquet``: Parquet data, planned from footers;
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

import os
from collections.abc import Sequence
from typing import Any

from sparkdist import _compat
from sparkdist.errors import ArgumentTypeError
from sparkdist.sources.base import DataSource, KeyGroup, LocalSplit, ValidationReport
from sparkdist.sources.frames import FrameSplit, PandasData, SparkData
from sparkdist.sources.parquet import ParquetData

__all__ = [
    "DataSource",
    "FrameSplit",
    "KeyGroup",
    "LocalSplit",
    "PandasData",
    "ParquetData",
    "SparkData",
    "ValidationReport",
    "as_data_source",
]


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
