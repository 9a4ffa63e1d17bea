"""Counts of value pairs of two columns (RevoScaleR's rxCrossTabs)."""

from __future__ import annotations

from collections import Counter
from typing import cast

import pandas as pd

from sparkdist.errors import ArgumentTypeError
from sparkdist.pema.base import PemaAlgorithm


class Crosstab(PemaAlgorithm[pd.DataFrame]):
    """A counts table: one row per value of ``row``, one column per value of ``col``
    (missing values are left out).

    >>> import pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> df = pd.DataFrame({"a": ["x", "y", "x"], "b": [1, 1, 2]})
    >>> table = pema_compute(Crosstab("a", "b"), df)
    >>> table.loc["x"].tolist(), table.loc["y"].tolist(), table.columns.tolist()
    ([1, 1], [1, 0], [1, 2])
    """

    requires_values = True

    def __init__(self, row: str, col: str) -> None:
        for name, value in (("row", row), ("col", col)):
            if not isinstance(value, str):
                raise ArgumentTypeError(f"Crosstab({name}=...) must be a column name (str), got {value!r}")
        self.row, self.col = row, col
        self.counts: Counter[tuple[object, object]] = Counter()

    def vars_to_use(self) -> list[str]:
        return [self.row, self.col] if self.row != self.col else [self.row]

    def initialize(self) -> None:
        self.counts = Counter()

    def process_data(self, chunk: pd.DataFrame) -> None:
        pairs = chunk[[self.row, self.col]].dropna()
        if len(pairs):
            sizes = pairs.groupby([self.row, self.col], sort=False, observed=True).size()
            for key, n in sizes.items():
                self.counts[key] += int(n)

    def update_results(self, other: Crosstab) -> None:
        self.counts.update(other.counts)

    def process_results(self) -> pd.DataFrame:
        if not self.counts:
            return cast(pd.DataFrame, pd.DataFrame(dtype="int64"))
        series = pd.Series(self.counts, dtype="int64")
        series.index = series.index.set_names([self.row, self.col])
        table = series.unstack(fill_value=0).sort_index().sort_index(axis=1)
        return cast(pd.DataFrame, table.astype("int64"))
