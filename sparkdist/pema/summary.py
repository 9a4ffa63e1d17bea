"""Per-column summary statistics (RevoScaleR's rxSummary for numeric columns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from sparkdist.errors import ArgumentTypeError, EmptyDataError
from sparkdist.pema._numerics import Moments
from sparkdist.pema.base import DataInfo, PemaAlgorithm


class Summary(PemaAlgorithm[pd.DataFrame]):
    """count, missing, mean, std, var, min and max of numeric columns (all of them by default).

    One pass over the data. Each chunk is summarised by a corrected two-pass (its mean, then
    ``m2 = sum(d^2) - sum(d)^2 / n`` of the deviations ``d`` from it), and chunks and splits merge
    with Chan et al.'s pairwise formula, the means carried as double-doubles (TwoSum) so that the
    difference of two partial means is taken exactly. std and var therefore agree with numpy's
    two-pass over the whole column (``np.std(x, ddof=1)``) to within 0.5 digits on NIST's
    univariate reference sets, however the rows are split or merged (``benchmarks/accuracy_nist.py``),
    also where the mean is 10^8 times the standard deviation; the mean keeps all 15 digits.

    >>> import pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> pema_compute(Summary(), pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "b", "c"]}))
       count  missing  mean  std  var  min  max
    x      3        0   2.0  1.0  1.0  1.0  3.0
    """

    requires_values = True

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
            raise ArgumentTypeError(f"Summary(columns=...) takes a list of column names, got {columns!r}")
        self.columns = None if columns is None else list(columns)
        self.moments = Moments.empty(0)

    def check_data(self, info: DataInfo) -> None:
        if self.columns is None:
            self.columns = list(info.numeric)
            if not self.columns:
                raise ArgumentTypeError(f"Summary: the data has no numeric columns (columns: {info.types})")
        else:
            info.require_numeric(self.columns, "Summary")

    def vars_to_use(self) -> list[str] | None:
        return self.columns

    def initialize(self) -> None:
        self.moments = Moments.empty(len(self.columns or []))

    def process_data(self, chunk: pd.DataFrame) -> None:
        self.moments.add(chunk[self.columns].to_numpy(dtype=np.float64, na_value=np.nan))

    def update_results(self, other: Summary) -> None:
        self.moments.merge(other.moments)

    def process_results(self) -> pd.DataFrame:
        m = self.moments
        empty = [c for c, n in zip(self.columns or [], m.count, strict=True) if n == 0]
        if empty:
            raise EmptyDataError(f"Summary: columns {empty} have no non-missing values")
        var = m.variance()
        table = pd.DataFrame(
            {
                "count": m.count.astype(np.int64),
                "missing": m.missing.astype(np.int64),
                "mean": m.mean,
                "std": np.sqrt(var),
                "var": var,
                "min": m.minimum,
                "max": m.maximum,
            },
            index=pd.Index(list(self.columns or [])),
        )
        return cast(pd.DataFrame, table)
