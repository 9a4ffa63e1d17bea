"""Mean of one numeric column (RevoPemaR's PemaMean, with an exact pairwise merge)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparkdist.errors import ArgumentTypeError, EmptyDataError
from sparkdist.pema._numerics import Moments
from sparkdist.pema.base import DataInfo, PemaAlgorithm


class Mean(PemaAlgorithm[float]):
    """The mean of ``column``, ignoring missing values.

    >>> import pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> pema_compute(Mean("x"), pd.DataFrame({"x": [1.0, 2.0, None, 6.0]}))
    3.0
    """

    requires_values = True

    def __init__(self, column: str) -> None:
        if not isinstance(column, str):
            raise ArgumentTypeError(f"Mean(column): column must be a column name (str), got {column!r}")
        self.column = column
        self.moments = Moments.empty(1)

    def vars_to_use(self) -> list[str]:
        return [self.column]

    def check_data(self, info: DataInfo) -> None:
        info.require_numeric([self.column], "Mean")

    def initialize(self) -> None:
        self.moments = Moments.empty(1)

    def process_data(self, chunk: pd.DataFrame) -> None:
        self.moments.add(chunk[[self.column]].to_numpy(dtype=np.float64, na_value=np.nan))

    def update_results(self, other: Mean) -> None:
        self.moments.merge(other.moments)

    def process_results(self) -> float:
        if not self.moments.count[0]:
            raise EmptyDataError(f"Mean: column '{self.column}' has no non-missing values")
        return float(self.moments.mean[0])
