"""Least squares by an orthogonal (QR) merge (RevoScaleR's rxLinMod)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparkdist.errors import EmptyDataError, InvalidArgumentError
from sparkdist.pema._model import RegressionResult, check_terms, design, inverse_rtr_diagonal, solve_upper, term_names
from sparkdist.pema._numerics import Moments, QRAccumulator, collinear
from sparkdist.pema.base import DataInfo, PemaAlgorithm


@dataclass
class LinearRegressionResult(RegressionResult):
    """Adds R², the residual standard error and its degrees of freedom."""

    r_squared: float
    residual_std_error: float


class LinearRegression(PemaAlgorithm[LinearRegressionResult]):
    """Ordinary least squares of ``y`` on the columns ``x``.

    Each chunk's rows are folded into the R factor of ``[X | y]`` and partial R factors merge by
    QR, so X'X is never formed: accuracy does not depend on the split, and ill-conditioned
    designs keep about twice the correct digits of a normal-equations solver.

    >>> import numpy as np, pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 3.1, 4.9, 7.0]})
    >>> fit = pema_compute(LinearRegression("y", ["x"]), df)
    >>> fit.coefficients.round(3).tolist(), fit.n
    ([1.03, 1.98], 4)
    """

    requires_values = True

    def __init__(self, y: str, x: Sequence[str], intercept: bool = True) -> None:
        self.x = check_terms("LinearRegression", y, x, intercept)
        self.y, self.intercept = y, intercept
        self.initialize()

    def vars_to_use(self) -> list[str]:
        return list(dict.fromkeys([*self.x, self.y]))

    def check_data(self, info: DataInfo) -> None:
        info.require_numeric(self.vars_to_use(), "LinearRegression")

    def initialize(self) -> None:
        self.qr = QRAccumulator(len(self.x) + int(self.intercept) + 1)
        self.y_moments = Moments.empty(1)

    def process_data(self, chunk: pd.DataFrame) -> None:
        xs, ys = design(chunk, self.y, self.x, self.intercept)
        self.qr.add(np.column_stack([xs, ys]))
        self.y_moments.add(ys[:, None])

    def update_results(self, other: LinearRegression) -> None:
        self.qr.merge(other.qr)
        self.y_moments.merge(other.y_moments)

    def process_results(self) -> LinearRegressionResult:
        names = term_names(self.x, self.intercept)
        p = len(names)
        n = self.qr.rows
        if n == 0:
            raise EmptyDataError(f"LinearRegression: no complete rows in columns {self.vars_to_use()}")
        r = self.qr.square()
        rxx, rxy, ryy = r[:p, :p], r[:p, p], r[p, p]
        bad = collinear(rxx, names)
        if bad:
            desc = "; ".join(
                f"'{c}' is a linear combination of {before or 'nothing (it is all zeros)'}" for c, before in bad
            )
            raise InvalidArgumentError(
                f"LinearRegression: the design is singular: {desc}. Drop or change those columns."
            )
        if n <= p:
            raise InvalidArgumentError(f"LinearRegression: {n} complete rows are too few for {p} coefficients")
        beta = solve_upper(rxx, rxy)
        rss = float(ryy * ryy)
        df = n - p
        sigma2 = rss / df
        se = np.sqrt(sigma2 * inverse_rtr_diagonal(rxx))
        tss = float(self.y_moments.m2[0]) if self.intercept else float(np.sum(r[:, p] ** 2))
        index = pd.Index(names)
        return LinearRegressionResult(
            coefficients=pd.Series(beta, index=index),
            std_errors=pd.Series(se, index=index),
            t_values=pd.Series(beta / se, index=index),
            n=int(n),
            df_residual=int(df),
            r_squared=1.0 - rss / tss if tss > 0 else float("nan"),
            residual_std_error=float(np.sqrt(sigma2)),
        )
