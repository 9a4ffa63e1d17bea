"""Logistic regression by Newton / IRLS passes, each solved by a QR merge (RevoScaleR's rxLogit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparkdist.errors import EmptyDataError, InvalidArgumentError
from sparkdist.pema._model import RegressionResult, check_terms, design, inverse_rtr_diagonal, solve_upper, term_names
from sparkdist.pema._numerics import QRAccumulator, collinear
from sparkdist.pema.base import DataInfo, PemaAlgorithm


@dataclass
class LogisticRegressionResult(RegressionResult):
    """Adds the deviance, the number of passes and whether they converged."""

    deviance: float
    iterations: int
    converged: bool


class LogisticRegression(PemaAlgorithm):
    """Logistic regression of a 0/1 column ``y`` on the columns ``x``.

    Each pass is one Newton step: the weighted least-squares problem of IRLS is accumulated as an
    R factor (merged by QR), then solved on the driver. Passes stop when the relative change of the
    deviance is below ``tol``, or after ``max_iters``.

    >>> import numpy as np, pandas as pd
    >>> from sparkdist.pema import pema_compute
    >>> df = pd.DataFrame({"x": [0, 1, 2, 3, 4, 5.0], "y": [0, 0, 1, 0, 1, 1]})
    >>> fit = pema_compute(LogisticRegression("y", ["x"]), df)
    >>> fit.converged, fit.coefficients.round(4).tolist()
    (True, [-3.0351, 1.214])
    """

    requires_values = True

    def __init__(
        self, y: str, x: Sequence[str], intercept: bool = True, max_iters: int = 25, tol: float = 1e-10
    ) -> None:
        self.x = check_terms("LogisticRegression", y, x, intercept)
        if not isinstance(max_iters, int) or isinstance(max_iters, bool) or max_iters < 1:
            raise InvalidArgumentError(f"LogisticRegression(max_iters=...) must be a positive int, got {max_iters!r}")
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not tol > 0:
            raise InvalidArgumentError(f"LogisticRegression(tol=...) must be a positive number, got {tol!r}")
        self.y, self.intercept, self.max_iters, self.tol = y, intercept, max_iters, float(tol)
        self.initialize()

    def vars_to_use(self) -> list[str]:
        return list(dict.fromkeys([*self.x, self.y]))

    def check_data(self, info: DataInfo) -> None:
        info.require_numeric(self.vars_to_use(), "LogisticRegression")

    def initialize(self) -> None:
        self.beta = np.zeros(len(self.x) + int(self.intercept))
        self.deviance = np.inf
        self.previous_deviance = np.inf
        self.iterations = 0
        self.initialize_iteration()

    def initialize_iteration(self) -> None:
        self.qr = QRAccumulator(len(self.beta) + 1)
        self.pass_deviance = 0.0

    def process_data(self, chunk: pd.DataFrame) -> None:
        xs, ys = design(chunk, self.y, self.x, self.intercept)
        if len(ys) and not np.isin(ys, (0.0, 1.0)).all():
            bad = ys[~np.isin(ys, (0.0, 1.0))][0]
            raise ValueError(f"column '{self.y}' must hold only 0 and 1, found {bad}")
        eta = xs @ self.beta
        p = 1.0 / (1.0 + np.exp(-eta))
        p = np.clip(p, 1e-15, 1 - 1e-15)
        w = p * (1.0 - p)
        sw = np.sqrt(w)
        # weighted least squares of the working response z = eta + (y - p) / w, rows scaled by sqrt(w)
        self.qr.add(np.column_stack([xs * sw[:, None], sw * eta + (ys - p) / sw]))
        self.pass_deviance += float(-2.0 * np.sum(ys * np.log(p) + (1.0 - ys) * np.log1p(-p)))

    def update_results(self, other: LogisticRegression) -> None:
        self.qr.merge(other.qr)
        self.pass_deviance += other.pass_deviance

    def process_results(self) -> LogisticRegressionResult:
        names = term_names(self.x, self.intercept)
        k = len(names)
        if self.qr.rows == 0:
            raise EmptyDataError(f"LogisticRegression: no complete rows in columns {self.vars_to_use()}")
        r = self.qr.square()
        bad = collinear(r[:k, :k], names)
        if bad:
            raise InvalidArgumentError(
                "LogisticRegression: the design is singular: "
                + "; ".join(f"'{c}' is a linear combination of {before}" for c, before in bad)
            )
        self.previous_deviance, self.deviance = self.deviance, self.pass_deviance
        self.cov_diagonal = inverse_rtr_diagonal(r[:k, :k])  # at the beta of this pass
        self.beta = solve_upper(r[:k, :k], r[:k, k])
        self.iterations += 1
        se = np.sqrt(self.cov_diagonal)
        index = pd.Index(names)
        return LogisticRegressionResult(
            coefficients=pd.Series(self.beta.copy(), index=index),
            std_errors=pd.Series(se, index=index),
            t_values=pd.Series(self.beta / se, index=index),
            n=int(self.qr.rows),
            df_residual=int(self.qr.rows - k),
            deviance=float(self.deviance),
            iterations=self.iterations,
            converged=self.has_converged(),
        )

    def has_converged(self) -> bool:
        if not np.isfinite(self.previous_deviance):
            return False
        return abs(self.deviance - self.previous_deviance) / (abs(self.deviance) + 0.1) < self.tol
